"""Text that flows down the pages of the PDF report: measured, wrapped by width, never overlapping.

Every line is measured with the font the PDF uses (matplotlib's unhinted text extents, in points), wrapped to
the width it has, and placed below the one before it; a block that does not fit on the page goes to the next
page. So nothing is placed at a fixed height, and a long file name, a long series description or twenty rows of
figures push what follows down (onto a second page if needed) instead of running into it. Positions are in
points from the page's bottom-left corner. matplotlib only; no brainscan imports.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

A4_PT = (595.44, 841.68)  # 8.27 x 11.69 in
LINE = 1.3  # line pitch, in font sizes
ASCENT = 0.95  # from a line's top to its baseline, in font sizes (the tallest glyphs stay inside the line)


@lru_cache(maxsize=8)
def _font(size: float, weight: str):
    from matplotlib.font_manager import FontProperties

    return FontProperties(size=size, weight=weight)


@lru_cache(maxsize=1)
def _measurer():
    from matplotlib.textpath import TextToPath

    return TextToPath()


@lru_cache(maxsize=4096)
def text_width(text: str, size: float, weight: str = "normal") -> float:
    """Width of one line in points, as the PDF draws it (no math parsing)."""
    if not text:
        return 0.0
    w, _, _ = _measurer().get_text_width_height_descent(text, _font(size, weight), ismath=False)
    return float(w)


def clean(text: object) -> str:
    """One line of plain text: control characters and runs of white space become single spaces."""
    return re.sub(r"[\s\x00-\x1f\x7f]+", " ", str(text)).strip()


def _split_long(word: str, width: float, size: float, weight: str) -> list[str]:
    """A word wider than the line, cut into pieces that fit (file names, UIDs, runs without spaces)."""
    pieces = []
    while word and text_width(word, size, weight) > width:
        lo, hi = 1, len(word)  # the longest prefix that fits (at least one character)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if text_width(word[:mid], size, weight) <= width:
                lo = mid
            else:
                hi = mid - 1
        pieces.append(word[:lo])
        word = word[lo:]
    return pieces + ([word] if word else [])


def wrap(text: object, width: float, size: float, weight: str = "normal", indent: float = 0.0) -> list[str]:
    """text wrapped to lines of at most width points; lines after the first get indent points less room."""
    lines: list[str] = []
    line = ""
    for word in clean(text).split(" "):
        room = width - (indent if lines else 0.0)
        candidate = f"{line} {word}" if line else word
        if text_width(candidate, size, weight) <= room:
            line = candidate
            continue
        if line:
            lines.append(line)
            room = width - indent
        pieces = _split_long(word, room, size, weight)
        lines.extend(pieces[:-1])
        line = pieces[-1] if pieces else ""
    if line or not lines:
        lines.append(line)
    return lines


@dataclass
class Style:
    size: float = 8.0
    weight: str = "normal"
    color: str = "black"

    @property
    def pitch(self) -> float:
        return LINE * self.size


@dataclass
class Flow:
    """Pages of one size, a cursor (the top of the next block) moving down, a new page when a block does not fit.

    new_figure: () -> matplotlib Figure of the page size. footer_height: room kept free at each page's bottom."""

    new_figure: Callable[[], object]
    size: tuple[float, float] = A4_PT
    margin: float = 40.0
    top_margin: float = 34.0
    footer_height: float = 30.0
    pages: list = field(default_factory=list)
    y: float = 0.0

    def __post_init__(self) -> None:
        self.new_page()

    @property
    def left(self) -> float:
        return self.margin

    @property
    def right(self) -> float:
        return self.size[0] - self.margin

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def bottom(self) -> float:
        return self.footer_height + 12.0

    @property
    def fig(self):
        return self.pages[-1]

    def new_page(self) -> None:
        self.pages.append(self.new_figure())
        self.y = self.size[1] - self.top_margin

    def room(self) -> float:
        return self.y - self.bottom

    def ensure(self, height: float) -> None:
        """Start a new page unless height points fit below the cursor (a block taller than a page just starts one)."""
        if height > self.room() and self.y < self.size[1] - self.top_margin:
            self.new_page()

    def gap(self, points: float) -> None:
        self.y -= min(points, max(self.room(), 0.0))

    def put(self, x: float, top: float, text: str, style: Style, ha: str = "left", fig=None) -> None:
        """One line whose box starts at top (points from the bottom), placed at its baseline."""
        (fig or self.fig).text(x / self.size[0], (top - ASCENT * style.size) / self.size[1], text,
                               fontsize=style.size, weight=style.weight, color=style.color, ha=ha, va="baseline",
                               parse_math=False)

    def paragraph(self, text: object, style: Style, x0: float | None = None, x1: float | None = None,
                  indent: float = 10.0) -> None:
        """Wrapped text, flowing line by line onto the next page where needed."""
        x0 = self.left if x0 is None else x0
        x1 = self.right if x1 is None else x1
        for i, line in enumerate(wrap(text, x1 - x0, style.size, style.weight, indent)):
            self.ensure(style.pitch)
            self.put(x0 + (indent if i else 0.0), self.y, line, style)
            self.y -= style.pitch

    def heading(self, text: str, style: Style, keep_with: float = 0.0, rule: bool = True) -> None:
        """A section heading, moved to the next page together with keep_with points of what follows it."""
        lines = wrap(text, self.width, style.size, style.weight)
        self.ensure(len(lines) * style.pitch + keep_with)
        for line in lines:
            self.put(self.left, self.y, line, style)
            self.y -= style.pitch
        if rule:
            from matplotlib.lines import Line2D

            y = (self.y + 0.1 * style.size) / self.size[1]
            self.fig.add_artist(Line2D([self.left / self.size[0], self.right / self.size[0]], [y, y], lw=0.5,
                                       color="#999999"))
        self.gap(2.0)

    def rows(self, rows: list[tuple[str, str]], style: Style, label_width: float, label_style: Style | None = None,
             gap: float = 1.5, columns: int = 1, gutter: float = 16.0) -> None:
        """Label / value rows, aligned in columns (row by row, left to right); labels and values wrap; a row stays
        on one page."""
        label_style = label_style or style
        span = (self.width - gutter * (columns - 1)) / columns
        pitch = max(style.pitch, label_style.pitch)
        for start in range(0, len(rows), columns):
            cells = []
            for k, (label, value) in enumerate(rows[start:start + columns]):
                x = self.left + k * (span + gutter)
                cells.append((x, wrap(label, label_width - 8.0, label_style.size, label_style.weight, 6.0),
                              x + label_width, wrap(value, span - label_width, style.size, style.weight, 8.0)))
            n = max(max(len(left), len(right)) for _, left, _, right in cells)
            self.ensure(min(n * pitch, self.size[1] / 2))
            for i in range(n):
                self.ensure(pitch)
                for x, left, xv, right in cells:
                    if i < len(left):
                        self.put(x + (6.0 if i else 0.0), self.y, left[i], label_style)
                    if i < len(right):
                        self.put(xv + (8.0 if i else 0.0), self.y, right[i], style)
                self.y -= pitch
            self.gap(gap)

    def table(self, header: list[str], rows: list[list[str]], widths: list[float], style: Style,
              header_style: Style, right: tuple[int, ...] = (), gap: float = 1.0) -> None:
        """A table: the header on each page it reaches, cells wrapped to their column, columns in right
        aligned right; a row stays on one page."""
        xs = [self.left + sum(widths[:k]) for k in range(len(widths))]

        def line(cells: list[str], st: Style) -> None:
            wrapped = [wrap(c, w - 6.0, st.size, st.weight, 4.0) for c, w in zip(cells, widths, strict=True)]
            n = max(len(c) for c in wrapped)
            for i in range(n):
                for k, c in enumerate(wrapped):
                    if i < len(c):
                        if k in right:
                            self.put(xs[k] + widths[k] - 6.0, self.y, c[i], st, ha="right")
                        else:
                            self.put(xs[k] + (4.0 if i else 0.0), self.y, c[i], st)
                self.y -= st.pitch
            self.gap(gap)

        def height(cells: list[str], st: Style) -> float:
            return max(len(wrap(c, w - 6.0, st.size, st.weight, 4.0)) for c, w in zip(cells, widths, strict=True)) \
                * st.pitch + gap

        head_h = height(header, header_style)
        page = None
        for row in rows:
            h = height(row, style)
            self.ensure(h + (head_h if page is not self.fig else 0.0))
            if page is not self.fig:
                line(header, header_style)
                page = self.fig
            line(row, style)

    def block(self, height: float) -> float:
        """Reserve height points (on this page or the next) for pictures; returns the block's top."""
        self.ensure(height)
        top = self.y
        self.y -= height
        return top

    def axes(self, x: float, y_bottom: float, w: float, h: float):
        W, H = self.size
        return self.fig.add_axes((x / W, y_bottom / H, w / W, h / H))

    def footers(self, text: Callable[[int, int], str], style: Style) -> None:
        """A footer on every page, once the number of pages is known: text(page, pages)."""
        n = len(self.pages)
        for i, fig in enumerate(self.pages, 1):
            self.put(self.left, self.footer_height, text(i, n), style, fig=fig)
