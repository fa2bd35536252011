"""One answer everywhere: a scan whose most probable class and whose answer (the decision at the operating
threshold) differ reads the same in the JSON, the results table and its CSV, the detail panel, the PDF report,
the quiz, a case opened from the case library and the pointing game."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from brainscan.runtime.answer import answer_words, class_label, class_phrase, heatmap_class
from brainscan.runtime.inference import decide, make_prediction
from brainscan.scans import cases as case_lib

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 240
P = {"glioma": 0.3, "meningioma": 0.1, "notumor": 0.42, "pituitary": 0.18}  # P(tumor) 0.58


# --- the decision and its words, by hand --------------------------------------------------------

def test_decision_at_the_threshold_and_the_top_class_are_kept_apart():
    assert decide(P, 0.46) == ("glioma", "notumor")  # 0.58 >= 0.46: a tumour, its most probable type
    assert decide(P, 0.60) == ("notumor", "notumor")
    assert decide({"glioma": 0.5, "notumor": 0.45, "pituitary": 0.05}, 0.6) == ("notumor", "glioma")
    assert decide(P, None) == ("notumor", "notumor")  # an old card without a threshold: the top class
    p = make_prediction(P, 0.46)
    assert (p.label, p.top_class, p.is_tumor, p.tumor_type, p.class_index) == ("glioma", "notumor", True, "glioma", 0)
    assert p.tumor_probability == pytest.approx(0.58)
    assert make_prediction({"a": 0.7, "b": 0.3}, 0.5).is_tumor is None  # no 'notumor' class: no decision


def test_words_name_the_answer_and_the_differing_top_class():
    w = answer_words(make_prediction(P, 0.46))
    assert w.label == "Glioma" and w.probability == pytest.approx(0.3)
    assert w.sentence == ("The model's answer: a glioma. Any tumor 58%, at or above its threshold of 46%; a glioma "
                          "is the most probable tumor type (30%).")
    assert w.top == "No tumor (42%)"
    assert w.top_note.startswith("The single most probable class is no tumor (42%)")
    w = answer_words(make_prediction({"glioma": 0.5, "notumor": 0.46, "pituitary": 0.04}, 0.6))
    assert w.sentence == "The model's answer: no tumor. Any tumor 54%, below its threshold of 60%."
    same = answer_words(make_prediction({"glioma": 0.8, "notumor": 0.2}, 0.5))
    assert same.top_note is None
    assert answer_words(make_prediction({"a": 0.7, "b": 0.3}, None)).sentence == "The model's answer: a (70%)."


def test_the_heatmap_class_is_chosen_in_one_place():
    tumour = make_prediction(P, 0.46)
    assert heatmap_class(tumour) == heatmap_class(tumour, tumor_evidence=True) == "glioma"
    free = make_prediction(P, 0.6)
    assert heatmap_class(free) == "notumor" and heatmap_class(free, tumor_evidence=True) == "glioma"


# --- one real scan through every consumer -----------------------------------------------------

@pytest.fixture(scope="module")
def disagreeing(tiny_model, tmp_path_factory):
    """The first quiz case and a copy of the tiny model whose threshold makes its answer differ from its most
    probable class on that case."""
    from brainscan.check import check_bytes
    from brainscan.runtime.inference import load_model

    library = case_lib.load_library()
    case = case_lib.by_id(library, case_lib.quiz_cases(library, 8, 1)[0].id)
    pred = check_bytes(load_model(tiny_model), case.data(), case.name, cam_method=None).prediction
    folder = tmp_path_factory.mktemp("disagreeing") / "model"
    shutil.copytree(tiny_model, folder)
    card = json.loads((folder / "card.json").read_text())
    # At P(tumor) itself the answer is a tumour; just above it, no tumour: pick the side the top class is not on.
    shift = -1e-6 if pred.top_class == "notumor" else 1e-6
    card["operating_threshold"] = {"tumor_probability": pred.tumor_probability + shift}
    (folder / "card.json").write_text(json.dumps(card))
    model = load_model(folder)
    result = check_bytes(model, case.data(), case.name)
    p = result.prediction
    assert p.label != p.top_class, (p.label, p.top_class, p.probabilities)
    return {"case": case, "folder": str(folder), "model": model, "result": result, "words": answer_words(p)}


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption] + [m.value for m in at.subheader]
    parts += [m.label for m in at.metric]
    return "\n".join(str(x) for x in parts)


def test_cli_json_gives_the_answer_and_the_top_class(disagreeing, tmp_path):
    case, p = disagreeing["case"], disagreeing["result"].prediction
    path = tmp_path / case.name
    path.write_bytes(case.data())
    out = subprocess.run([sys.executable, "-m", "brainscan", "predict", str(path), "--model", disagreeing["folder"]],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    line = json.loads(out.stdout.splitlines()[0])
    assert (line["label"], line["top_class"]) == (p.label, p.top_class)


def test_table_csv_and_detail_panel_agree(disagreeing, monkeypatch):
    from brainscan.app.results import results_csv

    monkeypatch.setenv("BRAINSCAN_MODEL", disagreeing["folder"])
    words, data = disagreeing["words"], disagreeing["case"].data()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/scan.py")
    at.run()
    at.file_uploader(key="uploads").set_value([("a.png", data, "image/png"), ("b.png", data, "image/png")])
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["Answer"]) == [words.label, words.label]
    assert list(table["Most probable class"]) == [words.top, words.top]
    csv = results_csv(table)
    assert csv.count(f",{words.label},") == 2 and words.top in csv
    body = texts(at)
    assert f"#### {words.sentence}" in body and f"Answer: {words.label}" in body and words.top_note in body
    assert "Most likely" not in body


def test_report_says_the_same(disagreeing):
    pypdf = pytest.importorskip("pypdf")
    from brainscan.app import report
    from brainscan.cam.overlay import gradcam_overlay

    result, model, p = disagreeing["result"], disagreeing["model"], disagreeing["result"].prediction
    overlay = gradcam_overlay(result.scan.pixels, result.heatmap.original, 0.4)
    pdf = report.build_pdf(result, overlay, "Heatmap", model.card, model.path, None, None,
                           when=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    text = " ".join(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text().split())
    assert f"The model's answer: {class_phrase(p.label)}" in text
    assert f"The single most probable class is {class_phrase(p.top_class)}" in text
    assert "Most likely" not in text


def test_quiz_case_library_and_pointing_game_agree(disagreeing, monkeypatch):
    from brainscan.app.case_check import check_case
    from brainscan.evaluation.pointing import PointingTally

    case, model, p = disagreeing["case"], disagreeing["model"], disagreeing["result"].prediction
    cc = check_case(model, case)
    assert cc.result.prediction.label == p.label
    assert cc.model_answer().tumour == (p.label != "notumor")
    assert cc.model_answer().kind == p.tumor_type
    assert cc.cam_class == heatmap_class(p, tumor_evidence=True)
    mask = case.mask()
    if mask is not None:
        tally = PointingTally()
        tally.add(model, cc.result.scan.pixels, cc.result.prepared, p, mask)
        assert tally.hits == [cc.peak_inside]  # the pointing game scores the heatmap the library case shows

    monkeypatch.setenv("BRAINSCAN_MODEL", disagreeing["folder"])
    at = AppTest.from_file(str(ROOT / "pages" / "quiz.py"), default_timeout=TIMEOUT)  # clicks are lost after
    at.run()  # switch_page in AppTest, so the page file itself
    at.radio(key="quiz_tumour_0").set_value("No").run()
    at.button(key="quiz_check_0").click().run()
    assert not at.exception, at.exception
    assert f"The model said:** {class_label(p.label)}" in texts(at)
    model_score = at.session_state["quiz"]["results"][case.id]["model"]
    assert model_score["tumour"] == (case.tumour == (p.label != "notumor"))

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)  # the case opened from the library
    at.run()
    at.session_state["library_case"] = case.id
    at.switch_page("pages/scan.py")
    at.run()
    assert not at.exception, at.exception
    assert f"#### {disagreeing['words'].sentence}" in texts(at)


def test_a_probability_next_to_its_threshold_is_not_rounded_into_a_contradiction():
    w = answer_words(make_prediction({"glioma": 0.25, "notumor": 0.254, "pituitary": 0.496}, 0.75))
    assert "Any tumor 74.6%, below its threshold of 75.0%" in w.sentence


def test_both_back_ends_and_the_test_fake_are_models(tiny_model):
    from brainscan.runtime.inference import Model, load_model

    assert isinstance(load_model(tiny_model, backend="litert"), Model)
    assert isinstance(load_model(tiny_model, backend="keras"), Model)
    assert not isinstance(object(), Model)
