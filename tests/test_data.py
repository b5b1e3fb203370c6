"""companion.data: the stdlib corpus (content, order, exclusions), the module split, caching, load_texts."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import platform
import re
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from companion import data
from companion.data import (
    SPLITS,
    Docstring,
    corpus_checksum,
    default_texts,
    is_validation_module,
    load_texts,
    pretraining_parts,
    pretraining_texts,
    split_by_module,
    stdlib_docstrings,
)

ROOT = Path(__file__).resolve().parents[1]

SKIPPED = {"test", "tests", "idle_test", "idlelib", "site-packages", "dist-packages", "__pycache__"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The real corpus, extracted once for this module into a private cache folder."""
    cache = tmp_path_factory.mktemp("companion-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COMPANION_CACHE", str(cache))
        data._MEMO.clear()
        records = stdlib_docstrings()
        parts = {split: pretraining_parts(split) for split in SPLITS}
        yield SimpleNamespace(cache=cache, records=records, parts=parts)
    data._MEMO.clear()


def cache_file(folder: Path, stem: str = "stdlib-docstrings") -> Path:
    return folder / f"{stem}-{platform.python_version()}.json"


# --- the real standard library -----------------------------------------------------------------------


def test_records_shape_and_size(corpus):
    records = corpus.records
    assert all(type(r) is Docstring and len(r) == 3 for r in records)
    assert all(isinstance(f, str) for r in records for f in r)
    assert all(r.text.strip() for r in records)  # never empty or blank
    assert 3_000 < len(records) < 30_000
    assert 500_000 < sum(len(r.text) for r in records) < 5_000_000


def test_known_docstrings_are_present(corpus):
    by_key = {(r.module, r.qualname): r.text for r in corpus.records}
    assert "JSON" in by_key[("json", "")]
    assert by_key[("json", "dumps")].startswith("Serialize ``obj`` to a JSON formatted ``str``")
    assert ("json.decoder", "JSONDecoder.decode") in by_key  # a method
    assert ("asyncio.tasks", "sleep") in by_key  # an async def
    assert ("collections", "namedtuple.<locals>._asdict") in by_key  # nested, named like __qualname__


@pytest.mark.parametrize("module_name", ["json", "json.decoder", "textwrap", "string"])
def test_texts_and_order_match_the_imported_module(corpus, module_name):
    """Oracle: each record equals inspect.cleandoc(obj.__doc__), and records follow the source lines."""
    module = importlib.import_module(module_name)
    records = [r for r in corpus.records if r.module == module_name]
    assert records[0].qualname == "" and records[0].text == inspect.cleandoc(module.__doc__)
    lines = [0]
    for record in records[1:]:
        if "<locals>" in record.qualname:
            continue
        obj = module
        for part in record.qualname.split("."):
            obj = getattr(obj, part)
        assert record.text == inspect.cleandoc(obj.__doc__), record.qualname
        lines.append(inspect.getsourcelines(obj)[1])
    assert len(lines) >= 3 and lines == sorted(lines)
    documented = [name for name, obj in vars(module).items()
                  if inspect.isfunction(obj) and obj.__module__ == module_name and obj.__doc__]
    assert {r.qualname for r in records} >= set(documented)


def test_modules_come_in_file_path_order(corpus):
    order = {module: i for i, (module, _) in enumerate(data.stdlib_files())}
    positions = [order[r.module] for r in corpus.records]
    assert positions == sorted(positions)


def test_only_the_stdlib_folder_is_read(corpus):
    root = data.stdlib_dir()
    modules = {r.module for r in corpus.records}
    for module in modules:
        parts = module.split(".")
        assert not SKIPPED & set(parts), module
        base = root.joinpath(*parts)
        assert base.with_suffix(".py").is_file() or (base / "__init__.py").is_file(), module
    top_level = {m.split(".")[0] for m in modules}
    assert {"os", "json", "email", "asyncio"} <= top_level
    assert not top_level & {"pytest", "torch", "numpy", "hypothesis", "pip", "setuptools", "lib-dynload"}


# --- extraction rules on a small fake standard library ------------------------------------------------

FAKE_MODULE = '''"""Mod doc."""


async def fetch():
    """Fetch doc."""


class Outer:
    """Outer doc."""

    def method(self):
        """Method doc."""

        def helper():
            """Helper doc."""

        class Local:
            """Local doc."""

            def deep(self):
                """Deep doc."""

    class Inner:
        """Inner doc."""

    def undocumented(self):
        pass


if True:
    def conditional():
        """
            Conditional doc, indented.
              More.
        """
'''


def test_extraction_rules_on_a_fake_stdlib(tmp_path, monkeypatch):
    files = {
        "a.py": '"""Module a."""\ndef f():\n    """F doc."""\n',
        "bad.py": "def (:\n",  # does not parse: skipped
        "latin.py": b'"""caf\xe9"""\n',  # not UTF-8 and no coding line: skipped
        "latin1ok.py": b'# -*- coding: latin-1 -*-\n"""caf\xe9"""\n',
        "pkg/__init__.py": '"""Package doc."""\n',
        "pkg/mod.py": FAKE_MODULE,
        "pkg/tests/test_x.py": '"""no"""\n',
        "test/t.py": '"""no"""\n',
        "idlelib/i.py": '"""no"""\n',
        "idlelib/idle_test/i.py": '"""no"""\n',
        "site-packages/numpy/__init__.py": '"""no"""\n',
        "dist-packages/d.py": '"""no"""\n',
        "lib-dynload/l.py": '"""no"""\n',
        "_sysconfigdata_x86-linux.py": '"""no"""\n',
        "__pycache__/c.py": '"""no"""\n',
    }
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    monkeypatch.setattr(data, "stdlib_dir", lambda: tmp_path)
    rows = data._build_docstrings()
    assert rows == [
        ("a", "", "Module a."),
        ("a", "f", "F doc."),
        ("latin1ok", "", "café"),
        ("pkg", "", "Package doc."),
        ("pkg.mod", "", "Mod doc."),
        ("pkg.mod", "fetch", "Fetch doc."),
        ("pkg.mod", "Outer", "Outer doc."),
        ("pkg.mod", "Outer.method", "Method doc."),
        ("pkg.mod", "Outer.method.<locals>.helper", "Helper doc."),
        ("pkg.mod", "Outer.method.<locals>.Local", "Local doc."),
        ("pkg.mod", "Outer.method.<locals>.Local.deep", "Deep doc."),
        ("pkg.mod", "Outer.Inner", "Inner doc."),
        ("pkg.mod", "conditional", "Conditional doc, indented.\n  More."),
    ]


def test_comment_blocks():
    source = b"""#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# -*- Mode: Python; tab-width: 4 -*-
# Copyright (c) 2001 Python Software Foundation.
# All rights reserved.

# ----------------------------------------
# The first block
# spans two lines.
#
# And a second paragraph.
x = 1  # an inline note
y = 2  # type: ignore
#######
# type checking happens later.
#no space to strip
z = 3  # noqa: E501
"""
    assert data._comment_blocks(source) == [
        "The first block\nspans two lines.\n\nAnd a second paragraph.",
        "an inline note",
        "type checking happens later.\nno space to strip",
    ]


# --- the split -----------------------------------------------------------------------------------------


def test_split_is_by_top_level_package_and_stable():
    # Pinned: these come from sha256 and must never change between machines or releases.
    assert is_validation_module("json") and is_validation_module("json.decoder")
    assert is_validation_module("tkinter.ttk") and not is_validation_module("email.mime.text")
    names = [f"package{i}" for i in range(5000)]
    held_out = [n for n in names if is_validation_module(n)]
    assert abs(len(held_out) / len(names) - 0.1) < 0.02
    wider = {n for n in names if is_validation_module(n, valid_fraction=0.3)}
    assert set(held_out) < wider  # a larger fraction only adds modules


def test_split_by_module_on_the_corpus(corpus):
    train, valid = split_by_module(corpus.records)
    assert train and valid
    assert len(train) + len(valid) == len(corpus.records)
    # Each side keeps the corpus order.
    assert train == [r for r in corpus.records if not is_validation_module(r.module)]
    assert valid == [r for r in corpus.records if is_validation_module(r.module)]
    train_tops = {r.module.split(".")[0] for r in train}
    valid_tops = {r.module.split(".")[0] for r in valid}
    assert not train_tops & valid_tops
    assert "json" in valid_tops and "email" in train_tops
    assert split_by_module(corpus.records) == (train, valid)  # deterministic


def test_default_texts_splits_add_up(corpus):
    everything = default_texts()
    assert everything == [r.text for r in corpus.records]
    train, valid = default_texts("train"), default_texts("valid")
    assert len(train) + len(valid) == len(everything)
    assert sorted(train + valid) == sorted(everything)
    assert [r.text for r in corpus.records if is_validation_module(r.module)] == valid


def test_pretraining_parts(corpus):
    from pydoc_data.topics import topics

    parts = corpus.parts
    for name in ("docstrings", "topics", "comments"):
        assert len(parts["train"][name]) + len(parts["valid"][name]) == len(parts["all"][name])
        assert parts["train"][name] and parts["valid"][name]
    assert parts["all"]["docstrings"] == default_texts("all")
    assert parts["all"]["topics"] == [topics[k].strip() for k in sorted(topics) if topics[k].strip()]
    assert (topics["assert"].strip() in parts["valid"]["topics"]) == is_validation_module("assert")
    comments = parts["all"]["comments"]
    assert sum(map(len, comments)) > 300_000
    assert not any(c.startswith("!/") or "-*-" in c or re.search("copyright", c, re.I) for c in comments)
    for split in SPLITS:
        assert pretraining_texts(split) == [t for part in parts[split].values() for t in part]


def test_source_code_is_each_file_split_by_package():
    files = data.stdlib_files()
    code = {split: data.source_code(split) for split in SPLITS}
    assert len(code["all"]) == len(files)  # every CPython source file is UTF-8: none skipped
    assert len(code["train"]) + len(code["valid"]) == len(code["all"])
    modules = [module for module, _ in files]
    assert code["all"][modules.index("json.decoder")].startswith('"""Implementation of JSONDecoder')
    json_decoder = code["all"][modules.index("json.decoder")]
    assert (json_decoder in code["valid"]) == is_validation_module("json")
    assert (json_decoder in code["train"]) != is_validation_module("json")


# --- caching -------------------------------------------------------------------------------------------


def test_cache_file_is_read_on_the_next_start(corpus, monkeypatch):
    path = cache_file(corpus.cache)
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["checksum"] == corpus_checksum(c for row in corpus.records for c in row)
    assert len(stored["rows"]) == len(corpus.records)

    def no_build():
        raise AssertionError("the cache should have been used")

    monkeypatch.setenv("COMPANION_CACHE", str(corpus.cache))
    monkeypatch.setattr(data, "_build_docstrings", no_build)
    monkeypatch.setattr(data, "_build_extras", no_build)
    data._MEMO.clear()  # as in a new process
    assert stdlib_docstrings() == corpus.records
    assert pretraining_parts("valid") == corpus.parts["valid"]


@pytest.fixture
def fake_build(corpus, tmp_path, monkeypatch):
    """A fresh cache folder and a fast stand-in builder that counts its calls."""
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path))
    data._MEMO.clear()
    rows = [tuple(r) for r in corpus.records[:40]]
    calls = []

    def build():
        calls.append(1)
        return list(rows)

    monkeypatch.setattr(data, "_build_docstrings", build)
    yield SimpleNamespace(rows=rows, calls=calls, path=cache_file(tmp_path))
    data._MEMO.clear()


def test_memo_and_refresh(fake_build):
    first = stdlib_docstrings()
    assert first == [Docstring(*row) for row in fake_build.rows] and fake_build.calls == [1]
    fake_build.path.unlink()
    first.clear()  # callers get their own list
    assert len(stdlib_docstrings()) == len(fake_build.rows) and fake_build.calls == [1]  # memo
    stdlib_docstrings(refresh=True)
    assert fake_build.calls == [1, 1] and fake_build.path.exists()


def _garbage(path):
    path.write_bytes(b"\x89PNG\x00\xff not json at all")


def _wrong_checksum(path):
    stored = json.loads(path.read_text(encoding="utf-8"))
    stored["rows"][0][2] += " tampered"
    path.write_text(json.dumps(stored), encoding="utf-8")


def _wrong_shape(path):
    stored = json.loads(path.read_text(encoding="utf-8"))
    stored["rows"] = [row[:2] for row in stored["rows"]]
    stored["checksum"] = corpus_checksum(c for row in stored["rows"] for c in row)
    path.write_text(json.dumps(stored), encoding="utf-8")


def _not_a_dict(path):
    path.write_text("[1, 2, 3]", encoding="utf-8")


@pytest.mark.parametrize("corrupt", [_garbage, _wrong_checksum, _wrong_shape, _not_a_dict])
def test_corrupt_cache_warns_and_rebuilds(fake_build, corrupt):
    expected = [Docstring(*row) for row in fake_build.rows]
    assert stdlib_docstrings() == expected
    corrupt(fake_build.path)
    data._MEMO.clear()
    with pytest.warns(RuntimeWarning, match=re.escape(str(fake_build.path)) + ".*corrupt"):
        assert stdlib_docstrings() == expected
    assert fake_build.calls == [1, 1]
    data._MEMO.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt file is sound again
        assert stdlib_docstrings() == expected
    assert fake_build.calls == [1, 1]


def test_cache_from_another_format_is_rebuilt_silently(fake_build):
    stdlib_docstrings()
    stored = json.loads(fake_build.path.read_text(encoding="utf-8"))
    stored["format"] = data._CACHE_FORMAT - 1
    fake_build.path.write_text(json.dumps(stored), encoding="utf-8")
    data._MEMO.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(stdlib_docstrings()) == len(fake_build.rows)
    assert fake_build.calls == [1, 1]
    assert json.loads(fake_build.path.read_text(encoding="utf-8"))["format"] == data._CACHE_FORMAT


def test_unwritable_cache_warns_but_works(fake_build, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("COMPANION_CACHE", str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="could not write cache file"):
        assert len(stdlib_docstrings()) == len(fake_build.rows)


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "mine"))
    assert data.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("COMPANION_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "companion"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.cache_dir() == Path.home() / ".cache" / "companion"


# --- checksums, loading other corpora, validation ------------------------------------------------------


def test_corpus_checksum():
    base = corpus_checksum(["ab", "c"])
    assert base == corpus_checksum(iter(["ab", "c"]))
    assert len(base) == 64 and int(base, 16) >= 0
    assert base != corpus_checksum(["a", "bc"])  # boundaries matter
    assert base != corpus_checksum(["c", "ab"])  # order matters
    assert corpus_checksum(["", "a"]) != corpus_checksum(["a", ""]) != corpus_checksum(["a"])
    assert corpus_checksum([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    with pytest.raises(TypeError, match="texts must be an iterable of strings"):
        corpus_checksum("abc")


def test_load_texts_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("First paragraph\nstill first.\r\n\r\n  \nSecond 문단.\n\n\n\nThird.\n".encode())
    assert load_texts(path) == ["First paragraph\nstill first.", "Second 문단.", "Third."]
    assert load_texts(str(path)) == load_texts(path)


def test_load_texts_folder(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.md").write_text("# Title\n\nbody")
    (tmp_path / "a.rst").write_text("rst one\n\nrst two")
    (tmp_path / "c.txt").write_text("text")
    (tmp_path / "code.py").write_text("print('ignored')")
    (tmp_path / "notes.TXT").write_text("upper case suffix")
    assert load_texts(tmp_path) == ["rst one", "rst two", "# Title", "body", "text", "upper case suffix"]


def test_load_texts_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_texts(tmp_path / "missing.txt")
    (tmp_path / "blank.txt").write_text("\n \n\n")
    with pytest.raises(ValueError, match="is empty"):
        load_texts(tmp_path / "blank.txt")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "x.py").write_text("pass")
    with pytest.raises(ValueError, match=r"has no \.txt, \.md, \.rst files"):
        load_texts(tmp_path / "folder")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        load_texts(tmp_path / "bin.txt")


@pytest.mark.parametrize("bad", ["test", "validation", "", "ALL"])
def test_bad_split(bad):
    with pytest.raises(ValueError, match=r"split must be one of \('all', 'train', 'valid'\), got"):
        default_texts(bad)
    with pytest.raises(ValueError, match="split must be one of"):
        pretraining_texts(bad)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, float("nan")])
def test_bad_valid_fraction(bad):
    with pytest.raises(ValueError, match=r"valid_fraction must be in \(0, 1\), got"):
        is_validation_module("json", valid_fraction=bad)
    with pytest.raises(ValueError, match=r"valid_fraction must be in \(0, 1\)"):
        split_by_module([], valid_fraction=bad)


def test_no_network_or_site_packages_needed(tmp_path):
    # Build the corpus from scratch in a fresh interpreter that has no site-packages on its path (-I -S)
    # and whose sockets raise: the corpus must come from the standard library alone, with no download.
    script = (
        "import socket, sys\n"
        "def refuse(*args, **kwargs):\n"
        "    raise OSError('network used')\n"
        "socket.socket = socket.create_connection = socket.getaddrinfo = refuse\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from companion import data\n"
        "assert not any('site-packages' in p for p in sys.path), sys.path\n"
        "texts = data.default_texts('all')\n"
        "print(len(texts), data.corpus_checksum(texts))\n"
    )
    env = {"COMPANION_CACHE": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    count, checksum = result.stdout.split()
    assert int(count) == len(data.default_texts("all")) > 1000
    assert checksum == data.corpus_checksum(data.default_texts("all"))
    assert list(tmp_path.iterdir()), "the corpus cache was written where COMPANION_CACHE points"
