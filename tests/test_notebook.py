"""Tests for companion.notebook, the chapters' display helpers."""

from __future__ import annotations

import io

import pytest

from companion import notebook


def test_markdown_table_and_cells():
    assert notebook.markdown_table(["a", "b"], [[1, "x|y"], [2.5, None]]) == (
        "| a | b |\n|---|---|\n| 1 | x|y |\n| 2.5 | None |")
    assert notebook.code("a|b") == "`a\\|b`"
    assert notebook.code("x`y") == "`` x`y ``"
    assert notebook.visible("a\n\nb") == "a⏎⏎b"
    with pytest.raises(ValueError, match="every row must have 2 cells"):
        notebook.markdown_table(["a", "b"], [[1]])


def test_progress_counts_and_fits_the_column():
    out = io.StringIO()
    assert list(notebook.progress(range(5), desc="work", file=out)) == [0, 1, 2, 3, 4]
    lines = [line for line in out.getvalue().replace("\r", "\n").split("\n") if line.strip()]
    assert lines and "5/5" in lines[-1] and all(len(line) <= 80 for line in lines)


def test_progress_in_a_notebook_is_one_output_not_a_staircase():
    # Executed in a kernel, as the book build does: the saved notebook holds the last bar once, with no
    # carriage returns for a page to draw as a staircase of redrawn lines.
    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "from companion.notebook import progress\n"
        "for _ in progress(range(4), desc='work', mininterval=0):\n    pass\nprint('done')"))
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    outputs = nb.cells[0].outputs
    bars = [o for o in outputs if o.output_type == "display_data"]
    assert len(bars) == 1 and "4/4" in bars[0].data["text/plain"], outputs
    assert "\r" not in bars[0].data["text/plain"]
    assert [o.text for o in outputs if o.output_type == "stream"] == ["done\n"]
