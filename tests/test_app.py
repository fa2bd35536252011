"""The Streamlit app through streamlit.testing (AppTest): pages, the scan check, bad inputs, the model page."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from bad_inputs import catalogue
from streamlit.testing.v1 import AppTest

from brainscan.scans.io import ScanError, load_scan
from brainscan.scans.synthetic import phantom

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 240  # the first scan check waits for TensorFlow and the model to load


# --- inputs ------------------------------------------------------------------------------------

def png(size: int = 128, lesion: bool = True, seed: int = 1) -> bytes:
    img, _ = phantom(size, lesion=lesion, seed=seed)
    ok, buf = cv2.imencode(".png", np.rint(img * 255).astype(np.uint8))
    assert ok
    return buf.tobytes()


def dicom_slices(n: int = 3, size: int = 64) -> np.ndarray:
    return np.stack([np.rint(phantom(size, lesion=True, seed=10 + i)[0] * 1000).astype(np.uint16)
                     for i in range(n)])


# --- helpers -----------------------------------------------------------------------------------

def model_page() -> AppTest:
    """The app opened on the Model page, for the model that BRAINSCAN_MODEL names."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/model.py")
    at.run()
    return at


@pytest.fixture
def model_env(monkeypatch, tiny_model):
    monkeypatch.setenv("BRAINSCAN_MODEL", tiny_model)
    return tiny_model


def scan_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/scan.py")
    at.run()
    assert not at.exception
    return at


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="uploads").set_value([(name, data, "application/octet-stream") for name, data in files])
    at.run()
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption] + [m.value for m in at.subheader]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts)


def heatmap_image(at: AppTest):
    found = [im for im in at.image if any(c.startswith("Heatmap:") for c in im.captions)]
    assert len(found) == 1, [im.captions for im in at.image]
    return found[0].captions[0], found[0].value[0]


# --- pages -------------------------------------------------------------------------------------

def test_every_page_renders(model_env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert at.title[0].value == "BrainScan"
    assert "not a medical device" in at.warning[0].value
    assert any("tiny-test-model" in m.value for m in at.markdown)
    assert [m.label for m in at.metric][:2] == ["Accuracy (4 classes)", "Tumor vs no tumor: ROC AUC"]
    pages = ["pages/scan.py", "pages/model.py"]
    if (ROOT / "pages" / "train.py").exists():
        pages.append("pages/train.py")
    for page in pages:
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
    at.switch_page("pages/home.py")
    at.run()
    assert not at.exception


def test_home_and_model_pages_do_not_import_tensorflow(tiny_model):
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        "import brainscan.app.ui as ui\n"
        "ui.ModelHolder.start = lambda self: None  # no background warm-up: measure the pages alone\n"
        f"at = AppTest.from_file({APP!r}, default_timeout=60)\n"
        "at.run()\n"
        "assert not at.exception, at.exception\n"
        "at.switch_page('pages/model.py')\n"
        "at.run()\n"
        "assert not at.exception, at.exception\n"
        "print('TF' if 'tensorflow' in sys.modules else 'NO-TF')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=ROOT,
                         env={**__import__("os").environ, "BRAINSCAN_MODEL": tiny_model})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "NO-TF"


def test_model_page_shows_card_and_figures(model_env):
    at = model_page()
    assert not at.exception
    page = texts(at)
    assert "Model card" in page and "Training curves" in page
    assert len(at.image) >= 3  # confusion matrix, calibration curve, training curves (st.pyplot)
    assert at.segmented_control(key="metrics_split").value == "test_dedup"
    at.segmented_control(key="metrics_split").set_value("val").run()
    assert not at.exception


def test_model_page_without_metrics_files(monkeypatch, tiny_model, tmp_path):
    folder = tmp_path / "bare"
    folder.mkdir()
    shutil.copy(Path(tiny_model) / "card.json", folder / "card.json")
    monkeypatch.setenv("BRAINSCAN_MODEL", str(folder))
    at = model_page()
    assert not at.exception
    infos = " ".join(i.value for i in at.info)
    assert "no metrics.json" in infos and "no history.json" in infos


def test_model_page_shows_the_stored_comparison_with_the_previous_model(monkeypatch, tiny_model, tmp_path):
    from brainscan.evaluation import compare

    folder = tmp_path / "v4"
    folder.mkdir()
    card = json.loads((Path(tiny_model) / "card.json").read_text())
    (folder / "card.json").write_text(json.dumps({**card, "name": "v4"}))
    rows = [{"key": "yes_no_accuracy", "label": "navoneel yes/no without near-duplicates: accuracy", "goal": 0.9,
             "higher_is_better": True, "old": 0.847, "new": 0.92, "old_met": False, "new_met": True,
             "new_better": True}]
    compare.write({"old": {"name": "v3.1"}, "new": {"name": "v4"}, "rows": rows, "command": "python -m brainscan "
                   "compare a b"}, str(folder))
    monkeypatch.setenv("BRAINSCAN_MODEL", str(folder))
    at = model_page()
    assert not at.exception
    assert "Against v3.1" in [h.value for h in at.subheader]
    table = next(d.value for d in at.dataframe if "Goal" in d.value.columns)
    assert table.iloc[0].to_dict() == {"Measure": rows[0]["label"], "Goal": "≥ 90.0%", "v3.1": "84.7% ✗",
                                       "v4": "92.0% ✓", "Better": "v4"}


def test_no_model_is_explained(monkeypatch, tmp_path):
    monkeypatch.setenv("BRAINSCAN_MODEL", str(tmp_path / "missing"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    at.switch_page("pages/scan.py")
    at.run()
    upload(at, ("a.png", png()))
    assert not at.exception
    assert at.error and "not a model folder" in at.error[0].value


# --- the scan check --------------------------------------------------------------------------------

def test_png_gives_prediction_heatmap_and_downloads(model_env):
    at = upload(scan_page(), ("phantom.png", png()))
    assert not at.exception
    page = texts(at)
    assert "The model's answer: " in page
    assert "Result for phantom.png" in page
    assert [im.captions[0] for im in at.image][:1] == ["Original scan"]
    caption, _ = heatmap_image(at)
    assert caption.startswith("Heatmap: Grad-CAM, opacity 40%")
    assert len([im for im in at.image if im.captions[0][:2] in {f"{i}." for i in range(1, 7)}]) == 6  # steps
    labels = [b.label for b in at.download_button]
    assert "Download the overlay (PNG)" in labels and "Download the result (JSON)" in labels
    labels = [m.label for m in at.metric]
    assert labels[0].startswith("Answer: ") and labels[1] == "Probability of any tumor"
    assert at.metric[0].value.endswith("%") and at.metric[1].value.endswith("%")


def test_method_and_opacity_change_the_overlay(model_env):
    """Each control changes the caption; the overlay pixels change too unless that heatmap is empty
    (an empty map, which a barely trained model can give, leaves the scan as it is by design)."""
    at = upload(scan_page(), ("phantom.png", png()))

    def empty() -> bool:
        return any("heatmap is empty" in i.value for i in at.info)

    caption0, url0 = heatmap_image(at)
    empty0 = empty()
    at.slider(key="opacity").set_value(90).run()
    caption1, url1 = heatmap_image(at)
    assert "opacity 90%" in caption1 and caption1 != caption0
    assert url1 != url0 or empty0
    at.segmented_control(key="cam_method").set_value("scorecam").run()
    assert not at.exception
    caption2, url2 = heatmap_image(at)
    empty2 = empty()
    assert caption2.startswith("Heatmap: Score-CAM")
    assert url2 != url1 or (empty0 and empty2)
    at.selectbox(key="colormap").set_value("inferno").run()
    caption3, url3 = heatmap_image(at)
    assert "inferno" in caption3
    assert url3 != url2 or empty2
    assert not (empty0 and empty2), "both heatmaps empty: nothing about the overlay was tested"


def test_extensionless_multiframe_dicom(model_env, make_dicom):
    data = make_dicom(dicom_slices(3), WindowCenter=500, WindowWidth=1000)
    at = upload(scan_page(), ("IM0001", data))
    assert not at.exception
    page = texts(at)
    assert "The model's answer: " in page
    frame = at.slider(key=[s.key for s in at.slider if s.key and s.key.startswith("frame-")][0])
    assert (frame.min, frame.max, frame.value) == (0, 2, 1)
    tables = [t.value for t in at.table]
    meta = tables[0]
    assert "MR" in meta["Value"].tolist() and "Frames" in meta["Field"].tolist()
    everything = page + json.dumps([t.to_dict() for t in tables], default=str)
    for secret in ("Doe", "Jane", "DOE-4711", "19800101"):
        assert secret not in everything
    _, url_middle = heatmap_image(at)
    frame.set_value(0).run()
    assert not at.exception
    _, url_first = heatmap_image(at)
    assert url_first != url_middle


@pytest.mark.parametrize("case", list(catalogue()))
def test_bad_input_shows_one_sentence_and_the_next_upload_works(model_env, case):
    name, data, fragment = catalogue()[case]
    with pytest.raises(ScanError) as info:
        load_scan(data, name)
    expected = str(info.value)
    assert fragment.lower() in expected.lower()
    at = upload(scan_page(), (name, data))
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(expected in e for e in errors), errors
    assert "Traceback" not in texts(at)
    upload(at, ("good.png", png()))
    assert not at.exception
    assert "The model's answer: " in texts(at)
    assert not any(expected in e.value for e in at.error)


def test_several_files_give_a_sortable_table_with_thumbnails(model_env):
    at = upload(scan_page(), ("a.png", png(seed=1)), ("b.png", png(lesion=False, seed=2)), ("bad.png", b"nope"))
    assert not at.exception
    df = at.dataframe[0].value
    assert df["File"].tolist() == ["a.png", "b.png", "bad.png"]
    assert all(str(u).startswith("data:image/png;base64,") for u in df["Preview"][:2])
    assert "not an image" in df["Problem"].iloc[2]
    assert any("bad.png is not an image" in e.value for e in at.error)
    assert "Download the table (CSV)" in [b.label for b in at.download_button]
    pick = at.selectbox(key="detail_file")
    assert pick.options == ["1. a.png", "2. b.png"]
    pick.set_value("2. b.png").run()
    assert not at.exception
    assert "Result for b.png" in texts(at)


def test_sample_images_one_click(model_env, monkeypatch, tmp_path):
    import brainscan.app.ui as ui

    (tmp_path / "README.md").write_text("samples")
    (tmp_path / "sample_glioma.png").write_bytes(png(seed=5))
    monkeypatch.setattr(ui, "SAMPLES_DIR", tmp_path)
    at = scan_page()
    pills = at.pills(key="sample")
    assert pills.options == ["sample_glioma.png"]
    pills.set_value("sample_glioma.png").run()
    assert not at.exception
    assert "Result for sample_glioma.png" in texts(at)


def test_empty_sample_folder(model_env, monkeypatch, tmp_path):
    import brainscan.app.ui as ui

    monkeypatch.setattr(ui, "SAMPLES_DIR", tmp_path / "missing")
    at = scan_page()
    assert not at.pills
    assert any("Upload one or more" in i.value for i in at.info)


def test_unexpected_failure_is_a_friendly_error(model_env, monkeypatch):
    import brainscan.app.ui as ui

    def boom(*args, **kwargs):
        raise RuntimeError("secret header value Doe^Jane")

    monkeypatch.setattr(ui, "check", boom)
    at = upload(scan_page(), ("x.png", png()))
    assert not at.exception
    assert any("unexpected problem" in e.value for e in at.error)
    assert "Doe" not in texts(at)


def test_measured_limitations_are_shown_with_the_answer(monkeypatch, tiny_model, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model, model_dir)
    card = json.loads((model_dir / "card.json").read_text())
    card["limitations"] = ["On BRATS FLAIR slices tumor vs tumor-free ROC AUC is 0.38."]
    (model_dir / "card.json").write_text(json.dumps(card))
    monkeypatch.setenv("BRAINSCAN_MODEL", str(model_dir))
    at = upload(scan_page(), ("phantom.png", png()))
    assert not at.exception
    shown = [w.value for w in at.warning if "Known limitations" in w.value]
    assert shown and "On BRATS FLAIR slices tumor vs tumor-free ROC AUC is 0.38." in shown[0]
