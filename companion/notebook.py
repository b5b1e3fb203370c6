"""Helpers that only the chapters use: tables, progress bars and small text formatting.

    from companion.notebook import progress, show_table

They live here, once, so no chapter defines its own copy. Nothing in the package imports this module.
"""

from __future__ import annotations

import io
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


class _DisplayBar(tqdm):
    """A tqdm bar drawn into one updatable notebook output instead of a stream of carriage returns.

    A stream bar redraws by writing ``\r``; a saved notebook keeps every redraw, and a page built from it shows
    them as a staircase of lines. This bar shows one ``text/plain`` output and replaces it on each redraw
    (``update_display_data``), so the live notebook, the saved notebook and the page all hold one line.
    """

    @staticmethod
    def status_printer(file: Any):  # noqa: ARG004 - tqdm's signature
        from IPython.display import display

        handle = display({"text/plain": ""}, raw=True, display_id=True)

        def print_status(text: str) -> None:
            handle.update({"text/plain": text}, raw=True)

        return print_status

    def moveto(self, n: int) -> None:
        pass  # nested bars each have their own output: no cursor movement


def _in_notebook_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress(iterable: Iterable | None = None, *, desc: str | None = None, total: int | None = None,
             **kwargs: Any) -> tqdm:
    """A progress bar for work that takes more than a few seconds, drawn as one line.

    It is plain ASCII with a fixed width, so the bar fits the page's column, and redraws at most every two
    seconds. In a notebook it updates one output in place (never a staircase of redrawn lines on the page);
    elsewhere it writes to stdout like any tqdm bar.
    """
    options = {"ascii": True, "ncols": 80, "mininterval": 2.0, "file": sys.stdout} | kwargs
    if _in_notebook_kernel():
        # The bar's text goes to its display; tqdm's own writes (a newline on close) go nowhere.
        return _DisplayBar(iterable, desc=desc, total=total, **(options | {"file": io.StringIO()}))
    return tqdm(iterable, desc=desc, total=total, **options)
