"""The harness itself: every chapter in the table of contents really runs under nbval."""

from __future__ import annotations

from conftest import CHAPTER_DIR, chapter_notebook, toc_chapters


def test_toc_lists_chapters_that_are_notebooks():
    chapters = toc_chapters()
    assert chapters, "_toc.yml names no chapter"
    for source in chapters:
        assert source.exists(), f"{source.name} is in _toc.yml but does not exist"
        assert "kernelspec:" in source.read_text(encoding="utf-8"), f"{source.name} has no notebook header"


def test_every_chapter_is_collected_by_nbval(request):
    # A harness that collects no notebook must fail, not pass quietly.
    collected = {
        item.path for item in request.session.items if item.path.suffix == ".ipynb"
    }
    expected = {chapter_notebook(source) for source in toc_chapters()}
    assert collected == expected, f"nbval collected {sorted(collected)}, chapters are {sorted(expected)}"
    assert all(path.is_relative_to(CHAPTER_DIR) for path in collected)
