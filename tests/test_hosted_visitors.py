"""Hosted mode, round two (issue 23): a visitor is a browser, not a tab. pages/train.py under AppTest, where
sessions that bring the same Streamlit XSRF cookie are tabs of one browser (AppTest cannot send cookies, so the
page's cookie reader is replaced by one that returns the cookie of the "browser" a test is driving).

Covers: nine tabs of one visitor get one run (the rest refused in a sentence), a waiting run left from another tab
of the same browser, a refused upload removed at once, the visitor's disk share, and no server path in any error
or log line the page shows. Runs start tests/fake_brainscan_trainer.py (no TensorFlow).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from train_page_helpers import FAKE_TRAINER, PAGE, hosted_env, rerun_until, start, texts, tiny_settings, zip_bytes

from brainscan import hosting, janitor, runs
from brainscan.app import visitor

BROWSER = {"cookie": ""}


def cookie(token: bytes) -> str:
    """Streamlit's XSRF cookie for token, with a fresh mask (as every response sets it)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(token))
    return f"2|{mask.hex()}|{masked.hex()}|1767225600"


A, B, C = (bytes([k]) * 16 for k in (1, 2, 3))


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> str:
    from brainscan.scans.synthetic import write_dataset

    return str(write_dataset(tmp_path_factory.mktemp("visitors-phantoms") / "phantoms", per_class=8, size=32))


@pytest.fixture
def env(tmp_path: Path, monkeypatch, phantoms: str) -> Iterator[Path]:
    hosted_env(monkeypatch, tmp_path, phantoms)
    monkeypatch.delenv(hosting.GRACE_ENV, raising=False)
    monkeypatch.setattr(visitor, "_cookie", lambda: BROWSER["cookie"])
    yield tmp_path
    for info in runs.list_runs(tmp_path / "runs"):
        if info.state in ("running", "queued"):
            runs.stop_run(info.path, timeout=5)


def tab(token: bytes) -> AppTest:
    """A new tab of the browser whose XSRF token is token."""
    BROWSER["cookie"] = cookie(token)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    return at


def everything(at: AppTest) -> str:
    return "\n".join(texts(getattr(at, kind)) for kind in ("markdown", "caption", "info", "warning", "error",
                                                            "success", "text", "code", "exception"))


def test_the_visitor_is_the_cookies_token_not_its_mask(tmp_path: Path) -> None:
    secret = hosting.server_secret(tmp_path)
    assert hosting.server_secret(tmp_path) == secret and len(secret) == 32, "kept in the runs folder"
    assert (tmp_path / hosting.SECRET_FILE).stat().st_mode & 0o777 == 0o600
    a1, a2 = hosting.visitor_id(cookie(A), secret), hosting.visitor_id(cookie(A), secret)
    assert a1 == a2 and len(a1) == 32, "every tab (and every response's new mask) gives the same id"
    assert hosting.visitor_id(cookie(B), secret) != a1
    assert hosting.visitor_id(cookie(A), b"another server" * 3) != a1, "ids are keyed by the server's secret"
    assert A.hex() not in a1
    for junk in ("", "nonsense", "2|zz|yy|1", "2|00|00|1"):
        assert hosting.visitor_id(junk, secret) is None


def test_nine_tabs_of_one_visitor_get_one_run(env: Path) -> None:
    tabs = [tab(A) for _ in range(9)]
    replies = []
    for at in tabs:
        tiny_settings(at, epochs=30, max_images=16)
        start(at)
        replies.append(texts(at.success) + texts(at.info) + texts(at.warning))
    assert "Started run" in replies[0]
    refused = [r for r in replies[1:] if "You already have a run waiting or training in this browser" in r]
    assert len(refused) == 8, replies
    assert "from any tab" in refused[0]
    assert [r.state for r in runs.list_runs()] == ["running"], "one run, nothing queued"

    b = tab(B)  # the next visitor is not told that the queue is full
    tiny_settings(b, epochs=30, max_images=16)
    start(b)
    assert "is number 1 in the queue" in texts(b.info), everything(b)


def test_a_waiting_run_is_left_from_another_tab_of_the_same_browser(env: Path) -> None:
    a = tab(A)
    tiny_settings(a, epochs=30, max_images=16)
    start(a)
    b1 = tab(B)
    tiny_settings(b1, epochs=30, max_images=16)
    start(b1)
    waiting = next(r for r in runs.list_runs() if r.queued)
    c = tab(C)  # a third visitor neither sees it nor may take it out
    assert waiting.name not in everything(c) and not [x for x in c.button if x.label == "Leave the queue"]

    b2 = tab(B)
    assert f"Your run {waiting.name} is number 1 in the queue" in texts(b2.info), everything(b2)
    next(x for x in b2.button if x.label == "Leave the queue").click().run()
    assert runs.run_info(waiting.path).state == "stopped"
    assert f"Run {waiting.name} left the queue" in texts(b2.info)
    b1.run()
    assert not [x for x in b1.button if x.label == "Leave the queue"], "the first tab follows"


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio(key="train_source").set_value("Upload a zip").run()
    return at.file_uploader(key="train_zip").upload(name, data, "application/zip").run()


def _dataset_zip(phantoms: str, top: str = "mine") -> bytes:
    src = Path(phantoms)
    return zip_bytes({f"{top}/{p.relative_to(src)}": p.read_bytes() for p in sorted(src.rglob("*.png"))})


def test_a_refused_upload_is_removed_at_once(env: Path) -> None:
    at = _upload(tab(A), "notes.zip", zip_bytes({f"notes/part-{k}.bin": b"\0" * 100_000 for k in range(5)}))
    assert "not a dataset folder" in texts(at.error) or "class folders" in texts(at.error), everything(at)
    uploads = env / "runs" / runs.UPLOADS
    assert not [p for p in uploads.rglob("*") if p.is_file()], "nothing of the refused zip stays on disk"
    assert not at.exception


def test_a_visitors_share_makes_room_from_its_own_oldest_upload(env: Path, phantoms: str, monkeypatch) -> None:
    data = _dataset_zip(phantoms)
    share_mb = 1.6 * janitor_size(data) / 2**20  # room for one unpacked upload, not two
    monkeypatch.setattr(hosting, "HOSTED_STORAGE", hosting.Storage(**{**hosting.HOSTED_STORAGE.__dict__,
                                                                      "visitor_mb": share_mb}))
    other = env / "runs" / runs.UPLOADS / ("b" * 16) / "20250101-000000-theirs"  # another visitor's, older
    other.mkdir(parents=True)
    (other / "x.bin").write_bytes(b"x" * 4096)
    a = _upload(tab(A), "first.zip", data)
    assert not a.error, texts(a.error)
    mine = env / "runs" / runs.UPLOADS / janitor.owner_key(a.session_state["_brainscan_visitor"])
    first = list(mine.iterdir())
    a2 = _upload(tab(A), "second.zip", _dataset_zip(phantoms, "again"))
    assert not a2.error, texts(a2.error)
    now = list(mine.iterdir())
    assert len(now) == 1 and now != first, "the visitor's older upload made room for the new one"
    assert other.is_dir(), "another visitor's upload is never touched"

    tiny_settings(a2, epochs=30, max_images=16)  # now a run trains on it: its upload may not go
    start(a2)
    a3 = _upload(tab(A), "third.zip", _dataset_zip(phantoms, "third"))
    assert f"of the {share_mb:,.0f} MB each visitor may use" in texts(a3.error), everything(a3)
    assert list(mine.iterdir()) == now


def janitor_size(data: bytes) -> int:
    from brainscan.scans.archive import declared_bytes

    return declared_bytes(data)


def test_no_server_path_in_errors_or_log_lines(env: Path, phantoms: str) -> None:
    forbidden = [str(env), str(Path(phantoms)), str(runs.REPO_ROOT), sys.prefix]

    def clean(at: AppTest) -> None:
        shown = everything(at)
        assert not [f for f in forbidden if f in shown], shown

    long_name = _upload(tab(A), "long.zip", zip_bytes({"yes/" + "a" * 300 + ".png": b"x", "no/b.png": b"x"}))
    assert "longer than 255 bytes" in texts(long_name.error)
    clean(long_name)
    clash = _upload(tab(A), "clash.zip", zip_bytes({"yes/x": b"x", "yes/x/y.png": b"x", "no/a.png": b"x"}))
    assert "both as a file and as a folder" in texts(clash.error)
    clean(clash)

    at = tab(A)
    tiny_settings(at, epochs=2, max_images=16)
    start(at)
    at = rerun_until(at, lambda a: "epoch 1/2" in texts(a.code), timeout=60)
    assert "epoch 1/2" in texts(at.code)
    clean(at)  # the progress lines: "Fake trainer: 2 epochs ... on <dataset>" names the dataset by its name
    assert "Phantoms" in texts(at.code)
    at = rerun_until(at, lambda a: "finished" in texts(a.success), timeout=60)
    log = texts(at.code)
    assert "--out the run folder" in log and "model folder the run folder" in log, log
    clean(at)


def test_a_failed_runs_message_names_no_server_path(env: Path, phantoms: str, monkeypatch) -> None:
    failing = f"--fail=Cannot read {phantoms}/tumor/tumor_003.png: broken"
    monkeypatch.setattr(runs.process, "TRAINER", [sys.executable, str(FAKE_TRAINER), failing, "train"])
    at = tab(A)
    tiny_settings(at, epochs=2, max_images=16)
    start(at)
    at = rerun_until(at, lambda a: "failed" in texts(a.error), timeout=60)
    assert "Cannot read Phantoms/tumor/tumor_003.png: broken" in texts(at.error), everything(at)
    assert phantoms not in everything(at) and str(env) not in everything(at)
