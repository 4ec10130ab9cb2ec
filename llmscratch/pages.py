"""What the book's pages share for showing results: tables and the figure style.

Used by the setup cell of every chapter (1 to 6); no model or recipe imports it, so
changing how a table looks never retrains a model. :func:`table` turns a header and
rows into a pandas DataFrame, which myst-nb renders as an HTML table; a cell may hold
inline code in backticks, inline math in dollars and bold in double asterisks.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from .validate import check_int

FIGURE_STYLE = {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3}
_INLINE = re.compile(r"`([^`]+)`|\$([^$]+)\$|\*\*([^*]+)\*\*")


def use_figure_style() -> None:
    """Set matplotlib's defaults for the book's figures (:data:`FIGURE_STYLE`)."""
    plt.rcParams.update(FIGURE_STYLE)


def cell_html(value: object) -> str:
    """``value`` as HTML: the text escaped, code in backticks as ``<code>``, math in
    dollars as MathJax's inline ``\\(...\\)`` and ``**bold**`` as ``<strong>``."""
    text = str(value)
    out, last = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[last:m.start()]))
        code, math, bold = m.groups()
        if code is not None:
            out.append(f"<code>{html.escape(code)}</code>")
        elif math is not None:
            out.append(f'<span class="math notranslate nohighlight">\\({html.escape(math)}\\)</span>')
        else:
            out.append(f"<strong>{html.escape(bold)}</strong>")
        last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


class Table(pd.DataFrame):
    """A DataFrame whose HTML has no index column and renders code and math in its cells."""

    @property
    def _constructor(self):
        return Table

    def _repr_html_(self) -> str:
        frame = pd.DataFrame(self).map(cell_html)
        frame.columns = [cell_html(c) for c in self.columns]
        return frame.to_html(index=False, escape=False, border=0, classes="table", justify="left")


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """A :class:`Table` with columns ``header`` and one row per item of ``rows``.

    Cells are shown as given (format numbers before passing them, e.g. ``f"{x:.3f}"``).

    Raises:
        TypeError: if ``header`` is a str or holds a non-str.
        ValueError: if ``header`` is empty or a row has another number of cells.
    """
    if isinstance(header, str) or not all(isinstance(h, str) for h in header):
        raise TypeError(f"header must be a sequence of str, got {header!r}")
    check_int("len(header)", len(header), minimum=1)
    rows = [list(r) for r in rows]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"rows[{i}] has {len(row)} cells, the header {len(header)}")
    return Table(rows, columns=list(header))
