"""A model folder's stored comparison with the model it replaced (comparison.json, written by
``python -m brainscan compare``, brainscan.evaluation.compare): reading it, and its rows as text for the Model
page and MODEL_CARD.md. A foundation leaf (brainscan.modelfolder uses it): no TensorFlow, no Streamlit."""

from __future__ import annotations

import json
import os
from pathlib import Path

from brainscan.formatting import number

FILE = "comparison.json"
_PERCENT_KEYS = ("sensitivity", "specificity", "pointing", "accuracy", "called_tumour")


def read_comparison(model_dir: str | os.PathLike | None) -> dict | None:
    """The folder's comparison.json, or None (missing, unreadable or not a comparison)."""
    if model_dir is None:
        return None
    try:
        data = json.loads((Path(model_dir) / FILE).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and isinstance(data.get("rows"), list) and all(
        isinstance(data.get(k), dict) for k in ("old", "new"))
    return data if ok else None


def _value(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if any(k in key for k in _PERCENT_KEYS):
        return number(value, "pct")
    if key == "speedup_vs_vgg19":
        return f"{value:.1f}x"
    if key == "model_mb":
        return f"{value:.1f} MB"
    return number(value)


def _marked(key: str, value: float | None, met: bool | None) -> str:
    return _value(key, value) + ("" if met is None else " ✓" if met else " ✗")


def comparison_rows(result: dict) -> list[dict]:
    """One row per target: what it measures, the goal, the previous model's value and this one's, each marked
    with whether it meets the goal (✓ / ✗), and which of the two is better."""
    old, new = result["old"].get("name", "previous"), result["new"].get("name", "this model")
    rows = []
    for r in result["rows"]:
        better = "same" if r["old"] == r["new"] else {True: new, False: old, None: ""}[r["new_better"]]
        rows.append({"Measure": r["label"],
                     "Goal": ("≥ " if r["higher_is_better"] else "≤ ") + _value(r["key"], r["goal"]),
                     old: _marked(r["key"], r["old"], r["old_met"]), new: _marked(r["key"], r["new"], r["new_met"]),
                     "Better": better})
    return rows


def comparison_heading(result: dict, shipped: str) -> str:
    """The table's title for the model named `shipped`: against the model it replaced, or beside a candidate
    that was measured and not shipped."""
    old, new = result["old"].get("name", "the previous model"), result["new"].get("name", "the candidate")
    if shipped == new:
        return f"Against {old}"
    if shipped == old:
        return f"Beside {new}, a candidate that was not shipped"
    return f"{old} beside {new}"


def comparison_markdown(result: dict) -> list[str]:
    """The same rows as a Markdown table, with the command that measured them."""
    rows = comparison_rows(result)
    head = list(rows[0]) if rows else []
    return ([f"Measured by `{result.get('command', '')}` (both models, the same code and images).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(str(r[k]) for k in head) + " |" for r in rows])
