"""Model and result folders: tensors as safetensors, other files as bytes, and a JSON manifest.

Every shipped model (``companion/models/<name>/``) and result (``companion/results/<name>/``) is one
folder written by `write_folder` and read by `read_folder`:

* ``manifest.json``: whatever describes the folder (config, command, metrics, history) plus
  ``"files": {file name: {"sha256": ..., "bytes": ...}}`` for every other file in it;
* ``model.safetensors`` (optional): tensors only, so reading it never runs code (unlike a pickle);
* any other files (a ``tokenizer.json``, a ``history.json``).

Files are written atomically and the manifest last, so an interrupted write never leaves a manifest
that points at a half-written file. `read_folder` checks each file's sha256 before parsing anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from companion.files import atomic_write, read_verified, sha256_hex

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"


@dataclass
class Folder:
    """What `read_folder` returns: the manifest, the tensors (empty if none) and the other files' bytes."""

    manifest: dict[str, Any]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


def shipped(kind: str, name: str) -> Traversable:
    """The folder of a model or result shipped inside the package: ``companion/<kind>/<name>``."""
    if kind not in {"models", "results"}:
        raise ValueError(f"kind must be 'models' or 'results', got {kind!r}")
    return resources.files("companion") / kind / name


def listed(kind: str) -> list[str]:
    """Names of the folders of ``kind`` ('models' or 'results') shipped with the package."""
    root = shipped(kind, "")
    if not root.is_dir():
        return []
    return sorted(entry.name for entry in root.iterdir() if entry.is_dir() and (entry / MANIFEST).is_file())


def write_folder(out: str | os.PathLike, manifest: dict[str, Any], *, tensors: dict[str, torch.Tensor] | None = None,
                 files: dict[str, bytes | str] | None = None) -> dict[str, Any]:
    """Write ``tensors`` (to ``model.safetensors``), ``files`` and then ``manifest.json`` into ``out``.

    Returns the manifest as written: ``manifest`` plus the ``"files"`` entry with every file's checksum.
    """
    out = Path(out)
    payloads: dict[str, bytes] = {}
    if tensors is not None:
        payloads[WEIGHTS] = save_safetensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                                             metadata={"format": "pt"})
    for name, data in (files or {}).items():
        if name in {MANIFEST, WEIGHTS} or Path(name).name != name:
            raise ValueError(f"files must be plain file names other than {MANIFEST} and {WEIGHTS}, got {name!r}")
        payloads[name] = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    for name, data in payloads.items():
        atomic_write(out / name, data)
    written = {k: v for k, v in manifest.items() if k != "files"}
    written["files"] = {name: {"sha256": sha256_hex(data), "bytes": len(data)} for name, data in payloads.items()}
    atomic_write(out / MANIFEST, json.dumps(written, indent=1, ensure_ascii=False) + "\n")
    return written


def read_manifest(folder: str | os.PathLike | Traversable) -> dict[str, Any]:
    """The manifest of a folder, without reading the other files."""
    folder = folder if hasattr(folder, "joinpath") else Path(folder)
    entry = folder / MANIFEST
    if not entry.is_file():
        raise ValueError(f"{folder} is not a model or result folder: it has no {MANIFEST}")
    return json.loads(entry.read_text(encoding="utf-8"))


def read_folder(folder: str | os.PathLike | Traversable) -> Folder:
    """Read a folder written by `write_folder`, checking every file's sha256 before parsing it.

    Raises ValueError naming the file when a checksum does not match (a corrupt or edited file).
    """
    folder = folder if hasattr(folder, "joinpath") else Path(folder)
    manifest = read_manifest(folder)
    result = Folder(manifest)
    for name, entry in manifest.get("files", {}).items():
        data = read_verified(folder / name, entry["sha256"])
        if name == WEIGHTS:
            result.tensors = load_safetensors(data)
        else:
            result.files[name] = data
    return result
