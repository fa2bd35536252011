"""Teaching through AppTest: the case library, a case opened in the scan check with its outline, the
uncertainty answer, the report downloads, the quiz and the Model page's deferral and sanity sections, on a
model trained by brainscan.training.run (like one promoted from the Train page) with and without those files."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from brainscan.scans import cases as case_lib

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 240
LIBRARY = case_lib.load_library()


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption] + [m.value for m in at.subheader]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    parts += [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


@pytest.fixture(scope="module")
def taught_model(tiny_model, tiny_dataset, tmp_path_factory) -> str:
    """The tiny model with uncertainty.json and sanity.json/.npz computed by the commands."""
    folder = tmp_path_factory.mktemp("taught") / "model"
    shutil.copytree(tiny_model, folder)
    out = subprocess.run([sys.executable, "-m", "brainscan", "uncertainty", str(folder), "--data", tiny_dataset],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    out = subprocess.run([sys.executable, "-m", "brainscan", "sanity", str(folder)], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (folder / "uncertainty.json").is_file() and (folder / "sanity.npz").is_file()
    return str(folder)


def page(path: str, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    for k, v in state.items():
        at.session_state[k] = v
    at.switch_page(path)
    at.run()
    assert not at.exception, at.exception
    return at


def test_case_library_lists_every_case_with_licence(monkeypatch, tiny_model):
    monkeypatch.setenv("BRAINSCAN_MODEL", tiny_model)
    at = page("pages/cases.py")
    assert at.title[0].value == "Case library"
    assert len([b for b in at.button if b.key and b.key.startswith("open-")]) == len(LIBRARY)
    body = texts(at)
    assert "no meningioma or pituitary-tumour case" in body
    assert "Licence: CC BY-NC-SA 3.0" in body and "Licence: CC BY-SA 3.0" in body


@pytest.mark.parametrize("case_id", ["case01", "case22"])
def test_a_case_opens_in_the_scan_check_with_truth_and_outline(monkeypatch, tiny_model, case_id):
    monkeypatch.setenv("BRAINSCAN_MODEL", tiny_model)
    case = case_lib.by_id(LIBRARY, case_id)
    at = page("pages/scan.py", library_case=case_id)
    body = texts(at)
    assert f"Case library {case_id}: the truth is" in body
    assert f"Result for {case.name}" in body
    if case.tumour:
        assert "peaks **inside**" in body or "peaks **outside**" in body
        heat = [im for im in at.image if any("true outline" in c for c in im.captions)]
        assert len(heat) == 1
    else:
        assert "there is no outline" in body
    # The tiny model has no uncertainty.json: the views are compared, and the page says how to choose a threshold.
    assert "Stability check:" in body and "views give the same answer" in body
    assert "No deferral threshold was chosen for this model yet" in body and "python -m brainscan uncertainty" in body
    labels = [b.label for b in at.download_button]
    assert "Download the report (PDF)" in labels and "Download the panels (PNG, zip)" in labels


def test_uncertain_answer_reads_needs_a_human(monkeypatch, tiny_model, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    (folder / "uncertainty.json").write_text('{"signal": "tta_spread", "threshold": -1.0}')  # every answer defers
    monkeypatch.setenv("BRAINSCAN_MODEL", str(folder))
    at = page("pages/scan.py", library_case="case04")
    assert any("Uncertain: needs a human." in e.value for e in at.error)


def test_an_empty_grad_cam_gives_way_to_cam_with_a_note(monkeypatch, tiny_model, tmp_path):
    """A head whose every weight is negative: no position of the (non-negative) feature map adds to any class
    score, so Grad-CAM is empty and the page draws CAM instead, and says so. Predictions are untouched (the
    LiteRT file computes them; the heatmap reads head.npz)."""
    import numpy as np

    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    with np.load(folder / "head.npz") as f:
        head = {k: np.asarray(f[k]) for k in f.files}
    head["kernel"] = -np.abs(head["kernel"]) - 1e-3
    np.savez(folder / "head.npz", **head)
    monkeypatch.setenv("BRAINSCAN_MODEL", str(folder))
    at = page("pages/scan.py", library_case="case01")
    notes = [i.value for i in at.info]
    assert any(n.startswith("Grad-CAM is empty: no region of the scan added to the score for")
               and "Shown instead: CAM" in n for n in notes), notes
    assert any(c.startswith("Heatmap: CAM,") for im in at.image for c in im.captions)


def quiz_page() -> AppTest:
    """The page file itself: AppTest loses button clicks on a page reached by switch_page."""
    at = AppTest.from_file(str(ROOT / "pages" / "quiz.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def test_quiz_round_scores_learner_and_model(monkeypatch, tiny_model):
    monkeypatch.setenv("BRAINSCAN_MODEL", tiny_model)
    at = quiz_page()
    quiz = at.session_state["quiz"]
    assert quiz["ids"] == [c.id for c in case_lib.quiz_cases(LIBRARY, 8, 1)]  # the default n and seed
    first = case_lib.by_id(LIBRARY, quiz["ids"][0])
    assert "Case 1 of 8" in texts(at)
    at.radio(key="quiz_tumour_0").set_value("Yes").run()
    at.radio(key="quiz_kind_0").set_value("glioma").run()
    at.button(key="quiz_check_0").click().run()
    assert not at.exception, at.exception
    body = texts(at)
    assert f"Truth: {'Glioma' if first.tumour else 'No tumor'}" in body
    assert "The model said:" in body and "Score after 1 of 8 cases" in body
    you = at.session_state["quiz"]["results"][first.id]["you"]
    assert you["tumour"] == first.tumour
    at.button(key="quiz_next_0").click().run()
    assert "Case 2 of 8" in texts(at)


def test_teacher_seed_sets_the_same_cases(monkeypatch, tiny_model):
    monkeypatch.setenv("BRAINSCAN_MODEL", tiny_model)
    at = quiz_page()
    at.number_input(key="quiz_n").set_value(5).run()
    at.number_input(key="quiz_seed").set_value(42).run()
    assert at.session_state["quiz"]["ids"] == [c.id for c in case_lib.quiz_cases(LIBRARY, 5, 42)]


def test_model_page_without_and_with_the_teaching_files(monkeypatch, tiny_model, taught_model):
    monkeypatch.setenv("BRAINSCAN_MODEL", tiny_model)
    at = page("pages/model.py")
    body = texts(at)
    assert "Not computed for this model yet: run `python -m brainscan uncertainty" in body
    assert "Not computed for this model yet: run `python -m brainscan sanity" in body
    monkeypatch.setenv("BRAINSCAN_MODEL", taught_model)
    at = page("pages/model.py")
    body = texts(at)
    assert "Uncertainty and deferral" in body and "Heatmap sanity check" in body
    assert "Not computed for this model yet" not in body
    assert "with every layer randomised, the mean ρ is" in body


def test_report_pdf_from_the_scan_page(monkeypatch, tiny_model):
    """The PDF the button would download (built by the same callable) opens and names the case file."""
    pypdf = pytest.importorskip("pypdf")
    monkeypatch.setenv("BRAINSCAN_MODEL", tiny_model)
    at = page("pages/scan.py", library_case="case07")
    pdf = at.session_state["_report_pdf"]()
    text = " ".join(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text().split())
    assert "File: case07.png" in text and "not a medical device" in text


def test_teaching_scan_path_never_imports_tensorflow(tiny_model):
    """A library case checked with uncertainty, its outline and its PDF report: LiteRT only, no TensorFlow."""
    code = (
        "import sys\n"
        "from brainscan.runtime.inference import load_model\n"
        "from brainscan.app.case_check import check_case\n"
        "from brainscan.app import report\n"
        "from brainscan.scans import cases\n"
        "from brainscan.cam.overlay import gradcam_overlay\n"
        f"m = load_model({tiny_model!r})\n"
        "assert m.backend == 'litert'\n"
        "c = cases.load_library()[0]\n"
        "cc = check_case(m, c)\n"
        "assert cc.result.uncertainty is not None\n"
        "ov = cases.draw_outline(gradcam_overlay(cc.result.scan.pixels, cc.result.heatmap.original), cc.mask)\n"
        "pdf = report.build_pdf(cc.result, ov, 'x', m.card, m.path, cc.result.uncertainty)\n"
        "assert pdf.startswith(b'%PDF')\n"
        "print('TF' if 'tensorflow' in sys.modules else 'NO-TF')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "NO-TF"
