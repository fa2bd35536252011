"""Work that is the same for every visitor is done once per model (brainscan.app.shared): the same sample or
upload checked in two sessions, and the same quiz case graded for two learners, cost one model call each."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from brainscan.app.shared import SharedResults

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")


def test_one_computation_for_concurrent_requests_of_one_key():
    shared, calls = SharedResults(), []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 42

    out: list[int] = []
    threads = [threading.Thread(target=lambda: out.append(shared.get("k", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [42] * 8 and len(calls) == 1 and shared.computed == 1


def test_bounded_least_recently_used_and_failures_are_not_kept():
    shared = SharedResults(max_entries=2)
    shared.get("a", lambda: 1)
    shared.get("b", lambda: 2)
    shared.get("a", lambda: 0)  # a is used again, so b is the oldest
    shared.get("c", lambda: 3)
    assert len(shared) == 2 and shared.get("a", lambda: -1) == 1 and shared.get("b", lambda: -2) == -2

    def fail() -> int:
        raise ValueError("no")

    with pytest.raises(ValueError):
        shared.get("x", fail)
    assert shared.get("x", lambda: 7) == 7


@pytest.fixture
def counted(monkeypatch, tiny_model):
    """BRAINSCAN_MODEL set; every scan check and library-case check counted."""
    import streamlit as st

    import brainscan.app.case_check as case_check
    import brainscan.check as check

    monkeypatch.setenv("BRAINSCAN_MODEL", tiny_model)
    st.cache_resource.clear()  # a fresh model holder: nothing checked yet by earlier tests in this process
    calls = {"scan": 0, "case": 0}
    scan, case = check.check_scan, case_check.check_case

    def counting_scan(*a, **k):
        calls["scan"] += 1
        return scan(*a, **k)

    def counting_case(*a, **k):
        calls["case"] += 1
        return case(*a, **k)

    monkeypatch.setattr(check, "check_scan", counting_scan)
    monkeypatch.setattr(case_check, "check_case", counting_case)
    return calls


def sample_session(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("pages/scan.py")
    at.run()
    at.session_state["sample"] = name
    at.run()
    assert not at.exception, at.exception
    assert any("The model's answer: " in m.value for m in at.markdown)
    return at


def test_the_same_sample_in_two_sessions_is_checked_once(counted):
    sample_session("ixi_healthy_t1.png")
    first = counted["scan"]
    assert first >= 1
    sample_session("ixi_healthy_t1.png")  # another visitor, same sample, same model
    assert counted["scan"] == first


def test_the_same_quiz_case_for_two_learners_is_checked_once(counted):
    def learner() -> None:
        at = AppTest.from_file(str(ROOT / "pages" / "quiz.py"), default_timeout=240)
        at.run()
        at.radio(key="quiz_tumour_0").set_value("No").run()
        at.button(key="quiz_check_0").click().run()
        assert not at.exception, at.exception
        assert any("The model said:" in m.value for m in at.markdown)

    learner()
    assert counted["case"] == 1
    learner()  # the same default seed: the same first case
    assert counted["case"] == 1
