"""Small HTML helpers shared by the report's sections: escaping, number formatting, tables."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any


def esc(value: Any) -> str:
    """HTML-escape any value's string form."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    """Numbers to short text: fixed decimals near 1, significant digits otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return esc(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return esc(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 10 ** (-digits)):
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def duration(seconds: float) -> str:
    """``4 min 07 s`` or ``2 h 05 min``."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def table(
    headers: list[str],
    rows: list[list[str]],
    numeric: set[int] | frozenset[int] = frozenset(),
    **attrs: str,
) -> str:
    """An HTML table from already-escaped cells; columns in ``numeric`` are right-aligned.

    Keyword arguments become attributes of the ``<table>`` (``id="..."``, ``class_="..."``). The
    table sits in a ``div.table-wrap`` that scrolls sideways by itself if the table is still too
    wide for a narrow window, so the page never does.
    """

    def cell(tag: str, index: int, content: str) -> str:
        css = ' class="num"' if index in numeric else ""
        return f"<{tag}{css}>{content}</{tag}>"

    extra = "".join(f' {k.rstrip("_")}="{esc(v)}"' for k, v in attrs.items())
    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    rendered = f"<table{extra}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="table-wrap">{rendered}</div>'


__all__ = ["duration", "esc", "fmt", "table"]


def embedded_figure(run: Path, relative: str, caption: str, element_id: str | None = None) -> str:
    """The PNG ``run/relative`` as a ``<figure>`` with a base64 data URI and its caption (the
    file's path after it), so the page stands alone; ``element_id`` sets the figure's ``id``."""
    data = base64.b64encode((run / relative).read_bytes()).decode("ascii")
    ident = f' id="{esc(element_id)}"' if element_id else ""
    return (
        f'<figure{ident}><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
        f'<figcaption>{esc(caption)} <span class="file">{esc(relative)}</span></figcaption>'
        "</figure>"
    )
