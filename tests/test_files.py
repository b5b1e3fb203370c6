"""companion.files: atomic writes keep the old file on failure and leave no temp files; sha256 helpers."""

from __future__ import annotations

import hashlib
import os
import sys

import pytest

from companion import files
from companion.files import atomic_write, read_verified, sha256_file, sha256_hex


def test_atomic_write_text_and_bytes_and_parents(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    atomic_write(target, "한국어 text\n")
    assert target.read_bytes() == "한국어 text\n".encode()
    atomic_write(str(target), b"\x00\xffraw")  # a str path, and overwriting
    assert target.read_bytes() == b"\x00\xffraw"
    assert os.listdir(target.parent) == ["out.txt"]  # no temp file left behind


def test_atomic_write_keeps_old_file_when_replace_fails(tmp_path, monkeypatch):
    target = tmp_path / "model.json"
    atomic_write(target, "old")

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["model.json"]


def test_atomic_write_cleans_up_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"

    def broken_fsync(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(files.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="fsync failed"):
        atomic_write(target, b"data")
    assert os.listdir(tmp_path) == []


def test_atomic_write_rejects_other_types(tmp_path):
    with pytest.raises(TypeError, match="data must be bytes or str, got int"):
        atomic_write(tmp_path / "x", 3)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_atomic_write_file_mode_follows_umask_and_old_file(tmp_path):
    old_umask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.txt"
        atomic_write(fresh, "x")
        assert fresh.stat().st_mode & 0o777 == 0o644  # as open() would make it, not mkstemp's 0600
        kept = tmp_path / "kept.txt"
        kept.write_text("old")
        kept.chmod(0o640)
        atomic_write(kept, "new")
        assert kept.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old_umask)


def test_sha256_helpers_match_hashlib(tmp_path):
    assert sha256_hex("") == hashlib.sha256(b"").hexdigest()
    assert sha256_hex("안녕") == hashlib.sha256("안녕".encode()).hexdigest()
    assert sha256_hex(b"\x00\x01") == hashlib.sha256(b"\x00\x01").hexdigest()
    big = os.urandom(3 * (1 << 20) + 17)  # more than one read chunk
    path = tmp_path / "big.bin"
    path.write_bytes(big)
    assert sha256_file(path) == hashlib.sha256(big).hexdigest() == sha256_hex(big)


def test_read_verified_returns_the_bytes_it_checked(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x00\x01weights")
    assert read_verified(path, hashlib.sha256(b"\x00\x01weights").hexdigest()) == b"\x00\x01weights"
    path.write_bytes(b"\x00\x01weighty")
    with pytest.raises(ValueError, match=r"weights.bin is corrupt: its sha256 is [0-9a-f]{64}, the manifest says"):
        read_verified(path, hashlib.sha256(b"\x00\x01weights").hexdigest())
