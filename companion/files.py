"""Small file helpers: atomic writes and sha256 checksums.

A file written with `atomic_write` is either the old one or the complete new one, never half of each:
the data goes to a temporary file in the same folder, is flushed to disk, and then `os.replace` swaps it
in (an atomic rename on POSIX and Windows when both names are on the same file system).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def _as_bytes(data: bytes | str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"data must be bytes or str, got {type(data).__name__}")


def _mode_for(path: Path) -> int:
    """The old file's permissions if it exists, else the default for new files under the current umask."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)  # reading the umask means setting it; put it straight back
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write `data` (str is encoded as UTF-8) to `path` atomically, creating parent folders."""
    payload = _as_bytes(data)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temp file must live in the same folder: os.replace is only atomic within one file system.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would have given it.
        os.chmod(tmp_name, _mode_for(path))
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def sha256_hex(data: bytes | str) -> str:
    """The sha256 hex digest of `data` (str is encoded as UTF-8)."""
    return hashlib.sha256(_as_bytes(data)).hexdigest()


def read_verified(path: str | os.PathLike | Traversable, sha256: str) -> bytes:
    """The bytes of ``path``, after checking them against ``sha256`` (ValueError naming the file if not).

    Checking and parsing the same bytes, read once, leaves no gap for the file to change in between.
    """
    path = path if hasattr(path, "read_bytes") else Path(path)  # package resources may live in a zip
    data = path.read_bytes()
    digest = sha256_hex(data)
    if digest != sha256:
        raise ValueError(f"{path.name} is corrupt: its sha256 is {digest}, the manifest says {sha256}")
    return data


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file's bytes, read in chunks so big files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
