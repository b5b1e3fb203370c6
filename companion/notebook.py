"""Helpers that only the chapters use: tables, progress bars and small text formatting.

    from companion.notebook import progress, show_table

They live here, once, so no chapter defines its own copy. Nothing in the package imports this module.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

from tqdm import tqdm


def code(text: object) -> str:
    """A Markdown table cell that shows ``text`` as inline code (pipes escaped)."""
    text = str(text).replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def visible(text: str) -> str:
    """Newlines made visible as ⏎, so a loop of blank lines can be seen in one table cell."""
    return text.replace("\n", "⏎")


def markdown_table(headers: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """``rows`` under ``headers`` as a GitHub-flavoured Markdown table."""
    headers = [str(h) for h in headers]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        row = [str(cell) for cell in row]
        if len(row) != len(headers):
            raise ValueError(f"every row must have {len(headers)} cells (one per header), got {len(row)}: {row}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def show_table(headers: Sequence[object], rows: Iterable[Sequence[object]]) -> None:
    """Display ``rows`` as a Markdown table in the notebook (and on the page)."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(headers, rows)))


def progress(iterable: Iterable | None = None, *, desc: str | None = None, total: int | None = None,
             **kwargs: Any) -> tqdm:
    """A progress bar for work that takes more than a few seconds, drawn as one line.

    It writes to stdout in plain ASCII with a fixed width, so the bar fits the page's column, and
    redraws at most every two seconds.
    """
    options = {"ascii": True, "ncols": 80, "mininterval": 2.0, "file": sys.stdout} | kwargs
    return tqdm(iterable, desc=desc, total=total, **options)
