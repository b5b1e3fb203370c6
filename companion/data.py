"""The course's default corpus, made on the reader's machine from their own Python.

Every Python carries a few megabytes of English: the docstrings of its standard library, the help topics
of `pydoc_data.topics`, and the comments in the library's source. We read them with `ast` and `tokenize`
(no download, no network), cache them on disk, and split them into train and validation by whole top-level
package, so validation text comes from modules the model never saw in training.

    texts = default_texts("train")        # docstrings: what the BPE chapter trains on
    texts = pretraining_texts("train")    # docstrings + help topics + comments: for the tiny GPT
    code = source_code("train")           # the library's own source, which the tiny GPT also reads
    texts = load_texts("my_corpus/")      # or any text file or folder of your own
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import platform
import re
import sysconfig
import tokenize
import warnings
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import NamedTuple, TypeVar

from .files import atomic_write

SPLITS = ("all", "train", "valid")
# Folders of the stdlib that hold tests, the IDLE editor, or other installed packages, not library code.
_SKIP_DIRS = {"test", "tests", "idle_test", "idlelib", "__pycache__", "site-packages", "dist-packages"}


class Docstring(NamedTuple):
    """One docstring: its module ("json.decoder"), qualified name ("" for the module itself), and text."""

    module: str
    qualname: str
    text: str


# ---------------------------------------------------------------------------------------------------------
# Reading the standard library


def stdlib_dir() -> Path:
    """The folder of the running Python's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files() -> list[tuple[str, Path]]:
    """(dotted module name, path) of every stdlib .py file we read, sorted by relative path."""
    root = stdlib_dir()
    found = []
    for folder, dirs, files in os.walk(root):
        # Prune in place so os.walk never descends into tests or site-packages. A folder whose name is not
        # an identifier (lib-dynload, config-3.11-...) cannot be a package either.
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and d.isidentifier()]
        for name in files:
            if name.endswith(".py") and name[:-3].isidentifier():
                rel = (Path(folder) / name).relative_to(root)
                parts = list(rel.with_suffix("").parts)
                if parts[-1] == "__init__" and len(parts) > 1:
                    parts.pop()
                found.append((rel.as_posix(), ".".join(parts), root / rel))
    found.sort()
    return [(module, path) for _, module, path in found]


def _docstrings_of(module: str, source: bytes) -> list[Docstring]:
    """Docstrings of a module and its classes and functions (nested too), in source order."""
    tree = ast.parse(source)
    found: list[tuple[int, int, Docstring]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                qualname = prefix + child.name
                text = ast.get_docstring(child, clean=True)
                if text:
                    found.append((child.lineno, child.col_offset, Docstring(module, qualname, text)))
                # The same naming as Python's __qualname__: "C.method", "f.<locals>.helper".
                is_class = isinstance(child, ast.ClassDef)
                visit(child, qualname + ("." if is_class else ".<locals>."))
            else:
                visit(child, prefix)

    module_text = ast.get_docstring(tree, clean=True)
    if module_text:
        found.append((0, 0, Docstring(module, "", module_text)))
    visit(tree, "")
    found.sort(key=lambda item: item[:2])
    return [record for _, _, record in found]


def _build_docstrings() -> list[Docstring]:
    rows = []
    for module, path in stdlib_files():
        try:
            rows.extend(_docstrings_of(module, path.read_bytes()))
        except (SyntaxError, ValueError, OSError):  # ValueError covers bad encodings and null bytes
            continue  # a file this Python cannot parse is not worth failing over
    return rows


_CODING = re.compile(r"coding[:=]\s*[-\w.]+")
_PRAGMA = re.compile(r"(type|pragma|fmt|pylint|mypy|ruff|isort):|noqa\b", re.IGNORECASE)
_LICENSE = re.compile(r"copyright|all rights reserved|licen[cs]ed (to|under)|permission to use, copy", re.I)


def _comment_blocks(source: bytes) -> list[str]:
    """Comments of one source file; comments on consecutive lines form one block of text."""
    blocks: list[list[str]] = []
    last_line = -2
    for tok in tokenize.tokenize(io.BytesIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        line = tok.start[0]
        if (line == 1 and tok.string.startswith("#!")) or (line <= 2 and _CODING.search(tok.string)):
            continue  # shebang or encoding declaration
        if "-*-" in tok.string:
            continue  # an editor mode line ("-*- Mode: Python -*-")
        text = tok.string[1:]
        text = (text[1:] if text.startswith(" ") else text).rstrip()
        if _PRAGMA.match(text):
            continue
        if text and not any(ch.isalnum() for ch in text):
            last_line = -2  # a ruler line ("# -----") ends the block
            continue
        # Full-line comments on consecutive lines form one block; a comment after code stands alone.
        full_line = tok.line.lstrip().startswith("#")
        if not full_line or line != last_line + 1:
            blocks.append([])
        blocks[-1].append(text)
        last_line = line if full_line else -2
    texts = ("\n".join(block).strip("\n") for block in blocks)
    return [text for text in texts if text and not _LICENSE.search(text)]


def _build_extras() -> list[tuple[str, ...]]:
    """("topic", name, text) rows of pydoc's help topics, then ("comment", module, text) rows."""
    try:
        from pydoc_data.topics import topics  # some Linux distributions package it separately
    except ImportError:
        topics = {}
    rows = [("topic", name, text.strip()) for name, text in sorted(topics.items()) if text.strip()]
    for module, path in stdlib_files():
        try:
            rows.extend(("comment", module, text) for text in _comment_blocks(path.read_bytes()))
        except (SyntaxError, ValueError, OSError, tokenize.TokenError):
            continue
    return rows


# ---------------------------------------------------------------------------------------------------------
# Caching: JSON on disk (rows plus their checksum), and a memo in this process


def cache_dir() -> Path:
    """The cache folder: $COMPANION_CACHE, else $XDG_CACHE_HOME/companion, else ~/.cache/companion."""
    if os.environ.get("COMPANION_CACHE"):
        return Path(os.environ["COMPANION_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "companion"


_MEMO: dict[Path, list[tuple[str, ...]]] = {}
_CACHE_FORMAT = 1  # bump when the extraction rules change, so old caches are rebuilt


def _read_cache(path: Path, width: int) -> list[tuple[str, ...]] | None:
    """The rows stored in `path`, or None (with a warning if the file exists but is damaged)."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("format") != _CACHE_FORMAT:
            return None  # written by another version of companion: stale, not corrupt
        rows = [tuple(row) for row in data["rows"]]
        if not all(len(row) == width and all(isinstance(cell, str) for cell in row) for row in rows):
            raise ValueError(f"rows must be lists of {width} strings")
        if data["checksum"] != _rows_checksum(rows):
            raise ValueError("checksum does not match the content")
        return rows
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        warnings.warn(f"cache file {path} is corrupt ({error}); rebuilding it", RuntimeWarning, stacklevel=4)
        return None


def _rows_checksum(rows: Sequence[tuple[str, ...]]) -> str:
    return corpus_checksum(cell for row in rows for cell in row)


def _cached_rows(stem: str, width: int, build: Callable[[], list], refresh: bool) -> list[tuple[str, ...]]:
    path = cache_dir() / f"{stem}-{platform.python_version()}.json"
    if not refresh and path in _MEMO:
        return _MEMO[path]
    rows = None if refresh else _read_cache(path, width)
    if rows is None:
        rows = build()
        payload = {"format": _CACHE_FORMAT, "python": platform.python_version(), "stdlib": str(stdlib_dir()),
                   "checksum": _rows_checksum(rows), "rows": rows}
        try:
            atomic_write(path, json.dumps(payload, ensure_ascii=False))
        except OSError as error:  # a read-only home folder should not stop the course
            warnings.warn(f"could not write cache file {path} ({error})", RuntimeWarning, stacklevel=3)
    _MEMO[path] = rows
    return rows


# ---------------------------------------------------------------------------------------------------------
# The public corpus


def stdlib_docstrings(*, refresh: bool = False) -> list[Docstring]:
    """All docstrings of the running Python's standard library, ordered by file path then line.

    Built once (a few seconds) and cached in `cache_dir()`; `refresh=True` rebuilds the cache.
    """
    return [Docstring(*row) for row in _cached_rows("stdlib-docstrings", 3, _build_docstrings, refresh)]


@cache
def _hash_position(name: str) -> float:
    """A stable number in [0, 1) for a name: the same on every machine and Python (unlike hash())."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") / 2**64


def _check_fraction(valid_fraction: float) -> None:
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")


def is_validation_module(module: str, valid_fraction: float = 0.1) -> bool:
    """Whether `module` is held out for validation; its top-level package decides ("json" for "json.x")."""
    _check_fraction(valid_fraction)
    return _hash_position(module.split(".")[0]) < valid_fraction


R = TypeVar("R")


def split_by_module(records: Iterable[R], valid_fraction: float = 0.1) -> tuple[list[R], list[R]]:
    """(train, valid) lists of records (anything with a `.module`), whole top-level packages on each side."""
    _check_fraction(valid_fraction)
    train: list[R] = []
    valid: list[R] = []
    for record in records:
        (valid if is_validation_module(record.module, valid_fraction) else train).append(record)
    return train, valid


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _keep(name: str, split: str) -> bool:
    return split == "all" or is_validation_module(name) == (split == "valid")


def default_texts(split: str = "all") -> list[str]:
    """The docstring texts of the standard library: split is "all", "train" or "valid"."""
    _check_split(split)
    return [record.text for record in stdlib_docstrings() if _keep(record.module, split)]


def pretraining_parts(split: str = "train") -> dict[str, list[str]]:
    """The pretraining text in its three parts: "docstrings", "topics" (pydoc help) and "comments"."""
    _check_split(split)
    extras = _cached_rows("stdlib-extras", 3, _build_extras, refresh=False)
    return {
        "docstrings": default_texts(split),
        "topics": [text for kind, name, text in extras if kind == "topic" and _keep(name, split)],
        "comments": [text for kind, module, text in extras if kind == "comment" and _keep(module, split)],
    }


def pretraining_texts(split: str = "train") -> list[str]:
    """Docstrings, then pydoc help topics, then source comments: the English every Python carries."""
    return [text for part in pretraining_parts(split).values() for text in part]


def source_code(split: str = "train") -> list[str]:
    """The source of every stdlib file we read, one text per file, split by top-level package like the rest.

    More text for the course GPT: Python source is mostly English names and comments, and the validation
    packages stay unseen. Not cached: reading the files takes under a second.
    """
    _check_split(split)
    texts = []
    for module, path in stdlib_files():
        if _keep(module, split):
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, OSError):
                continue  # a file in another encoding (none in CPython today) is skipped, not guessed at
    return texts


def corpus_checksum(texts: Iterable[str]) -> str:
    """sha256 of a sequence of texts; order matters, and ["ab", "c"] differs from ["a", "bc"]."""
    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of strings, not a single str")
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))  # the length prefix keeps the boundaries unambiguous
        digest.update(data)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Any corpus of your own

_SUFFIXES = (".txt", ".md", ".rst")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _paragraphs(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error})") from None
    return [p.strip() for p in _BLANK_LINE.split(text) if p.strip()]


def load_texts(path: str | os.PathLike) -> list[str]:
    """Documents from a text file or a folder (every .txt, .md, .rst inside, sorted by path).

    Each blank-line-separated paragraph is one document.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path {str(path)!r} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in _SUFFIXES and p.is_file())
        if not files:
            raise ValueError(f"folder {str(path)!r} has no {', '.join(_SUFFIXES)} files")
    else:
        files = [path]
    texts = [paragraph for file in files for paragraph in _paragraphs(file)]
    if not texts:
        raise ValueError(f"the corpus at {str(path)!r} is empty: no non-blank text found")
    return texts
