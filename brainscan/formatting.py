"""Numbers as the pages, the report, the card and the CLI print them (a leaf: no brainscan imports).

One formatter serves every place, so that a figure reads the same on the Model page, in MODEL_CARD.md and in
the PDF report; the callers choose only the kind and the number of digits.
"""

from __future__ import annotations

import math
from typing import Any


def number(value: Any, kind: str = "ratio", digits: int | None = None, missing: str = "n/a") -> str:
    """kind 'ratio': 0.123 (3 digits); 'pct': 12.3% (1 digit); 'int': 1,234. None and NaN print as missing;
    a value that is no number prints as itself."""
    if value is None:
        return missing
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return missing
    if kind == "pct":
        return f"{100 * v:.{1 if digits is None else digits}f}%"
    if kind == "int":
        return f"{int(v):,}"
    return f"{v:.{3 if digits is None else digits}f}"


def short_pct(p: float | None) -> str:
    """A probability in whole percent for sentences: 42%, and <1% for small non-zero values."""
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{100 * p:.0f}%" if p >= 0.01 or p == 0 else "<1%"
