"""pages/train.py in hosted mode under AppTest: two visitors are two AppTest sessions on one server state.

Covers the issue's abuse cases: no typed server paths, runs belong to the session that started them (only it
sees and stops them), a fair queue instead of one visitor holding the slot, limits on the settings, and
promotion for everyone only with the operator key. Runs start tests/fake_brainscan_trainer.py (no TensorFlow;
one epoch a second, so a run stays in training while the test looks at it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from train_page_helpers import PAGE, hosted_env, rerun_until, start, texts, tiny_settings

from brainscan import hosting, runs

KEY = "operator-key-for-tests"


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> str:
    from brainscan.scans.synthetic import write_dataset

    return str(write_dataset(tmp_path_factory.mktemp("hosted-phantoms") / "phantoms", per_class=8, size=32))


@pytest.fixture
def env(tmp_path: Path, monkeypatch, phantoms: str) -> Iterator[Path]:
    hosted_env(monkeypatch, tmp_path, phantoms)
    monkeypatch.delenv(hosting.OPERATOR_KEY, raising=False)
    yield tmp_path
    for info in runs.list_runs(tmp_path / "runs"):
        if info.state in ("running", "queued"):
            runs.stop_run(info.path, timeout=5)


def visitor() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    return at


def everything(at: AppTest) -> str:
    return "\n".join(texts(getattr(at, kind)) for kind in ("markdown", "caption", "info", "warning", "error",
                                                            "success", "text", "code"))


def test_no_typed_server_path_only_declared_datasets(env: Path, phantoms: str) -> None:
    at = visitor()
    assert not at.exception and not at.error, texts(at.error)
    assert not [t for t in at.text_input if t.key == "train_data"], "hosted mode has no dataset-folder field"
    assert at.radio(key="train_source").options == ["A dataset offered here", "Upload a zip"]
    assert at.selectbox(key="train_dataset").options == ["Phantoms"]
    assert {m.label: m.value for m in at.metric}["Images"] == "16"
    assert phantoms not in everything(at) and str(env) not in everything(at), "no server paths on the page"
    assert "hosted" in texts(at.caption).lower()


def test_limits_are_the_widgets_ranges(env: Path) -> None:
    at = visitor()
    assert at.selectbox(key="train_arch").options == ["Compact CNN (0.7 M parameters, fast on a CPU)"]
    assert max(int(o) for o in at.selectbox(key="train_img").options) <= 128
    assert at.number_input(key="train_epochs").max == hosting.HOSTED_LIMITS.max_epochs
    assert at.number_input(key="train_max").max == hosting.HOSTED_LIMITS.max_images
    assert at.number_input(key="train_max").min == 1


def test_two_visitors_cannot_see_or_stop_each_others_runs_and_queue_fairly(env: Path) -> None:
    a, b = visitor(), visitor()
    tiny_settings(a, epochs=30, max_images=16)
    start(a)
    assert "Started run" in texts(a.success), texts(a.error) + texts(a.warning)
    mine = runs.list_runs()[0]
    b.run()
    assert "No runs yet" in texts(b.info), "B does not see A's run in the results"
    assert mine.name not in everything(b)
    assert not [x for x in b.button if x.label == "Stop training"], "B gets no stop button for A's run"
    assert "another visitor" in everything(b).lower()
    with pytest.raises(runs.RunError, match="another session"):
        runs.stop_run(mine.path, owner=hosting.owner_id("someone else"))
    assert runs.run_info(mine.path).state == "running"

    tiny_settings(b, epochs=30, max_images=16)
    start(b)  # B queues behind A instead of being refused or taking the slot
    assert "queue" in everything(b).lower(), everything(b)
    start(b)  # a second request from B while B already waits: refused (one waiting run per visitor)
    assert "already" in texts(b.warning), texts(b.warning)
    queued = [r for r in runs.list_runs() if r.state == "queued"]
    assert len(queued) == 1

    a.run()
    next(x for x in a.button if x.label == "Stop training").click().run()
    assert runs.run_info(mine.path).state == "stopped"
    b = rerun_until(b, lambda at: runs.run_info(queued[0].path).state != "queued", timeout=30)
    assert runs.run_info(queued[0].path).state == "running", "the queue moved on when A's run ended"
    b.run()
    assert "Another visitor" not in everything(b)
    next(x for x in b.button if x.label == "Stop training").click().run()


def _finished_run(env: Path, owner: str) -> Path:
    run = env / "runs" / "20250101-000000-done"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "finished", "started": time.time() - 60,
                                                 "ended": time.time(), "owner": owner}))
    (run / "config.json").write_text(json.dumps({"arch": "compact", "img_size": 32, "epochs": 1}))
    (run / "model.keras").write_bytes(b"not really a model")
    (run / "card.json").write_text(json.dumps({"name": "done"}))
    return run


def test_promotion_is_off_without_an_operator_key(env: Path) -> None:
    a = visitor()
    _finished_run(env, runs.session_owner(a.session_state))
    a.run()
    assert "done" in everything(a) and not a.exception
    assert not [x for x in a.button if x.label.startswith("Promote")], "no promote button without a key"
    assert "promotion is off" in texts(a.caption).lower()


def test_promotion_needs_the_operator_key(env: Path, monkeypatch) -> None:
    monkeypatch.setenv(hosting.OPERATOR_KEY, KEY)
    a = visitor()
    _finished_run(env, runs.session_owner(a.session_state))
    a.run()
    a.text_input(key="train_operator_key").input("wrong-key-123").run()
    next(x for x in a.button if x.label.startswith("Promote")).click().run()
    assert "operator key" in texts(a.error).lower()
    assert not (env / "models" / "default").exists()
    a.text_input(key="train_operator_key").input(KEY).run()
    next(x for x in a.button if x.label.startswith("Promote")).click().run()
    assert "is now the model" in texts(a.success), texts(a.error)
    assert (env / "models" / "default" / "card.json").is_file()


def test_other_visitors_finished_run_is_invisible(env: Path) -> None:
    _finished_run(env, hosting.owner_id("visitor A"))
    b = visitor()
    assert "No runs yet" in texts(b.info)
    assert not [x for x in b.button if x.label.startswith("Promote")]


def test_the_app_moves_the_queue_on_whichever_page_is_open(env: Path, monkeypatch) -> None:
    """The entry file starts one queue keeper per runs folder in hosted mode (the Home page is open here)."""
    import threading

    app = str(Path(PAGE).resolve().parent.parent / "streamlit_app.py")
    name = f"brainscan-training-queue:{env / 'runs'}"
    at = AppTest.from_file(app, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert [t.name for t in threading.enumerate()].count(name) == 1
    at.run()
    assert [t.name for t in threading.enumerate()].count(name) == 1, "one keeper, however often a page reruns"
    monkeypatch.setenv(runs.RUNS_ENV, str(env / "local-runs"))
    monkeypatch.setenv(hosting.HOSTED_ENV, "0")
    AppTest.from_file(app, default_timeout=60).run()
    assert not [t for t in threading.enumerate() if t.name.endswith("local-runs")], "local mode starts none"
