"""make.py's execution cache is keyed on the companion package as well as on each chapter's code."""

from __future__ import annotations

import importlib.util

from conftest import ROOT


def load_make(root):
    spec = importlib.util.spec_from_file_location("make_under_test", ROOT / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    make.ROOT, make.BUILD = root, root / "_build"
    make.CACHE, make.PACKAGE_STAMP = make.BUILD / ".jupyter_cache", make.BUILD / "companion.sha256"
    return make


def test_cache_is_dropped_when_the_package_changes(tmp_path):
    make = load_make(tmp_path)
    (tmp_path / "companion").mkdir()
    module = tmp_path / "companion" / "a.py"
    module.write_text("x = 1\n")
    make.CACHE.mkdir(parents=True)
    make.key_cache_on_package()  # no stamp yet: a cache of unknown provenance is dropped
    assert not make.CACHE.exists() and make.PACKAGE_STAMP.read_text() == make.package_digest()

    make.CACHE.mkdir()
    make.key_cache_on_package()  # same package: the cache stays
    assert make.CACHE.exists()

    (tmp_path / "companion" / "__pycache__").mkdir()
    (tmp_path / "companion" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    make.key_cache_on_package()  # bytecode is not the package
    assert make.CACHE.exists()

    module.write_text("x = 2\n")
    make.key_cache_on_package()  # changed code: every chapter executes again
    assert not make.CACHE.exists()
