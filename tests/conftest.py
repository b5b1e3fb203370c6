"""Test harness: pins torch threads, and turns every chapter into a notebook for nbval.

Each chapter listed in ``_toc.yml`` is a MyST Markdown notebook. nbval reads only
``.ipynb``, so before collection the chapters are converted with jupytext into
``tests/chapters/`` (ignored by git), where pytest collects them with ``--nbval-lax``.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_DIR = Path(__file__).resolve().parent / "chapters"

torch.set_num_threads(1)


def toc_chapters() -> list[Path]:
    """The chapter sources named in ``_toc.yml``: every file but the root page and the appendix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [entry["file"] for part in toc["parts"] for entry in part["chapters"]]
    return [ROOT / f"{name}.md" for name in files if not name.startswith("book/appendix/")]


def chapter_notebook(source: Path) -> Path:
    return CHAPTER_DIR / source.relative_to(ROOT / "book").with_suffix(".ipynb")


def pytest_configure(config) -> None:
    # Regenerate every time so a stale notebook can never stand in for its chapter.
    for old in CHAPTER_DIR.rglob("*.ipynb") if CHAPTER_DIR.exists() else []:
        old.unlink()
    for source in toc_chapters():
        if not source.exists():
            continue  # test_harness reports it
        target = chapter_notebook(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        jupytext.write(jupytext.read(source), target, fmt="ipynb")
