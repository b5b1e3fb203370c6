"""The harness itself: every chapter in the table of contents really runs under nbval."""

from __future__ import annotations

from conftest import CHAPTER_DIR, chapter_notebook, toc_chapters


def test_toc_lists_chapters_that_are_notebooks():
    chapters = toc_chapters()
    assert chapters, "_toc.yml names no chapter"
    for source in chapters:
        assert source.exists(), f"{source.name} is in _toc.yml but does not exist"
        assert "kernelspec:" in source.read_text(encoding="utf-8"), f"{source.name} has no notebook header"


def is_full_run(config) -> bool:
    """True when pytest runs the whole suite: no paths named on the command line, no -k or -m selection."""
    default = {str(config.rootpath / path) for path in config.getini("testpaths")} | {str(config.rootpath)}
    named = {str((config.invocation_params.dir / arg).resolve()) for arg in config.args}
    return named <= default and not config.option.keyword and not config.option.markexpr


def test_every_chapter_is_collected_by_nbval(request):
    # A harness that collects no notebook must fail, not pass quietly; a partial run checks what it collected.
    collected = {
        item.path for item in request.session.items if item.path.suffix == ".ipynb"
    }
    expected = {chapter_notebook(source) for source in toc_chapters()}
    assert all(path.is_relative_to(CHAPTER_DIR) for path in collected)
    if is_full_run(request.config):
        assert collected == expected, f"nbval collected {sorted(collected)}, chapters are {sorted(expected)}"
    else:
        assert collected <= expected, f"nbval collected notebooks that are not chapters: {sorted(collected - expected)}"


def test_full_run_detection(request):
    from pathlib import Path
    from types import SimpleNamespace

    root = Path(request.config.rootpath)

    def config(args, keyword="", markexpr=""):
        return SimpleNamespace(rootpath=root, args=args, getini=lambda name: ["tests"],
                               invocation_params=SimpleNamespace(dir=root),
                               option=SimpleNamespace(keyword=keyword, markexpr=markexpr))

    assert is_full_run(config([])) and is_full_run(config(["tests"])) and is_full_run(config(["."]))
    assert not is_full_run(config(["tests/test_bpe.py"]))
    assert not is_full_run(config([], keyword="bpe")) and not is_full_run(config([], markexpr="slow"))
