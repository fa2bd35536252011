"""The Model page's "against the previous model" table: a model folder's stored comparison.json
(brainscan.evaluation.compare) as rows of text. No Streamlit, no TensorFlow."""

from __future__ import annotations

from brainscan.formatting import number

_PERCENT_KEYS = ("sensitivity", "specificity", "pointing", "accuracy", "called_tumour")


def _value(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if any(k in key for k in _PERCENT_KEYS):
        return number(value, "pct")
    if key in ("speedup_vs_vgg19",):
        return f"{value:.1f}x"
    if key == "model_mb":
        return f"{value:.1f} MB"
    return number(value)


def _goal(key: str, goal: float, higher: bool) -> str:
    return ("≥ " if higher else "≤ ") + _value(key, goal)


def _marked(key: str, value: float | None, met: bool | None) -> str:
    return _value(key, value) + ("" if met is None else " ✓" if met else " ✗")


def comparison_rows(result: dict) -> list[dict]:
    """One row per target: what it measures, the goal, the previous model's value and this one's, each marked
    with whether it meets the goal."""
    old, new = result["old"].get("name", "previous"), result["new"].get("name", "this model")
    rows = []
    for r in result["rows"]:
        rows.append({"Measure": r["label"], "Goal": _goal(r["key"], r["goal"], r["higher_is_better"]),
                     old: _marked(r["key"], r["old"], r["old_met"]), new: _marked(r["key"], r["new"], r["new_met"]),
                     "Better": {True: new, False: old, None: ""}[r["new_better"]] if r["old"] != r["new"] else "same"})
    return rows
