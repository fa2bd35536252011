"""pages/train.py under Streamlit's AppTest: dataset summary, start, progress, busy, stop, results, promote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from train_page_helpers import PAGE, rerun_until, start, texts, tiny_settings, zip_bytes

from brainscan import runs


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> str:
    from brainscan.scans.synthetic import write_dataset

    return str(write_dataset(tmp_path_factory.mktemp("page-phantoms") / "phantoms", per_class=8, size=32))


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> Iterator[Path]:
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv(runs.MODELS_ENV, str(tmp_path / "models"))
    yield tmp_path
    active = runs.active_run(tmp_path / "runs")
    if active is not None:  # a failed test must not leave training running
        runs.stop_run(active.path, timeout=5)


def page(dataset: str | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    if dataset is not None:
        at.text_input(key="train_data").input(dataset).run()
    return at


def test_page_renders(env: Path) -> None:
    at = page()
    assert not at.exception
    assert [h.value for h in at.header] == ["1. Dataset", "2. Settings", "3. Progress", "4. Results"]
    assert "No runs yet" in texts(at.info)
    assert "No training run in progress" in texts(at.caption)


def test_summary_for_typed_folder(env: Path, phantoms: str) -> None:
    at = page(phantoms)
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "16" and metrics["Classes"] == "2"
    assert "Image sizes in a sample of 16: width 32-32 px" in texts(at.caption)
    table = at.dataframe[0].value
    assert list(table.index) == ["No tumor", "Tumor", "total"] and table.loc["total"].sum() == 16


def test_bad_folders_give_sentences(env: Path, tmp_path: Path) -> None:
    at = page(str(tmp_path / "missing"))
    assert texts(at.error) == "missing is not a dataset folder that can be read here."
    (tmp_path / "empty" / "photos").mkdir(parents=True)
    at.text_input(key="train_data").input(str(tmp_path / "empty")).run()
    assert "No class folders found" in texts(at.error)
    assert not at.exception
    assert next(b for b in at.button if b.label == "Start training").disabled


def test_uploaded_zip_is_unpacked_and_summarised(env: Path, phantoms: str) -> None:
    src = Path(phantoms)
    data = zip_bytes({f"my-scans/{p.relative_to(src)}": p.read_bytes() for p in sorted(src.rglob("*.png"))})
    at = page()
    at.radio(key="train_source").set_value("Upload a zip").run()
    at.file_uploader(key="train_zip").upload("my-scans.zip", data, "application/zip").run()
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["Images"] == "16"
    sessions = list((env / "runs" / runs.UPLOADS).iterdir())  # one folder per browser session
    uploads = list(sessions[0].iterdir())
    assert len(sessions) == 1 and len(uploads) == 1 and (uploads[0] / "my-scans" / "tumor").is_dir()
    at.run()  # a rerun reuses the unpacked folder
    assert len(list(sessions[0].iterdir())) == 1
    assert runs.list_runs() == []  # the uploads folder is not a run


def test_unsafe_zip_is_refused_with_a_sentence(env: Path) -> None:
    at = page()
    at.radio(key="train_source").set_value("Upload a zip").run()
    at.file_uploader(key="train_zip").upload("evil.zip", zip_bytes({"../../evil.png": b"x"}), "application/zip").run()
    assert not at.exception
    assert "leaves its folder" in texts(at.error)
    assert next(b for b in at.button if b.label == "Start training").disabled


@pytest.mark.slow
def test_start_busy_progress_and_stop(env: Path, phantoms: str) -> None:
    at = page(phantoms)
    tiny_settings(at, epochs=200)
    start(at)
    assert "Started run" in texts(at.success), texts(at.error)
    assert at.get("progress"), "a progress bar shows as soon as the run starts"
    at = rerun_until(at, lambda a: bool(a.get("progress")) and " of 200" in a.get("progress")[0].proto.text
                     and ": epoch" in a.get("progress")[0].proto.text)
    assert ": epoch" in at.get("progress")[0].proto.text, texts(at.caption)
    assert {"Training loss", "Time left (estimate)"} <= {m.label for m in at.metric}

    start(at)  # a second run while the first trains
    assert "is still training" in texts(at.warning)
    assert len(runs.list_runs()) == 1

    next(b for b in at.button if b.label == "Stop training").click().run()
    assert not at.exception
    assert "is stopped" in texts(at.info)
    assert runs.active_run() is None
    assert runs.list_runs()[0].state == "stopped"


@pytest.mark.slow
def test_finished_run_results_and_promote(env: Path, phantoms: str) -> None:
    at = page(phantoms)
    tiny_settings(at, epochs=1)
    start(at)
    at = rerun_until(at, lambda a: runs.active_run() is None)
    at.run()
    assert not at.exception and not at.error
    assert "finished" in texts(at.success)
    assert len(at.image) >= 3  # curves, confusion matrix, ROC / calibration
    assert {"Accuracy", "Tumor ROC AUC"} <= {m.label for m in at.metric}
    per_class = at.dataframe[-1].value
    assert list(per_class["Class"]) == ["No tumor", "Tumor"]  # the metrics panel the Model page shows too

    promote = next(b for b in at.button if b.label == "Promote to models/")
    assert promote.disabled  # needs the confirmation first
    next(c for c in at.checkbox if c.label.startswith("Replace the model")).check().run()
    next(b for b in at.button if b.label == "Promote to models/").click().run()
    assert "is now the model in models/default" in texts(at.success)
    assert (env / "models" / "default" / "card.json").is_file()
