"""The GPT language models shipped inside the package, loaded safely.

    model, tokenizer = companion.pretrained("tiny-gpt", device="cpu")   # the module itself is callable
    model, tokenizer = companion.pretrained.load("tiny-gpt", device="cpu")   # the same
    companion.pretrained.available()                                      # ['tiny-gpt', ...]

Each model is a folder ``companion/models/<name>/`` written by `companion.folders` (``model.safetensors``,
``tokenizer.json``, ``manifest.json`` with the config, the training command, the losses and every file's
sha256). The checksums are verified before anything is parsed and the weights are safetensors, so nothing
is ever unpickled. A folder written by ``python -m companion.train`` loads the same way. Results that are
not GPT language models live under ``companion/results/`` and have their own loaders.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import torch

from companion import folders
from companion.checkpoint import load_model_tensors
from companion.device import get_device
from companion.gpt import GPT, GPTConfig


def available() -> list[str]:
    """Names of the GPT language models shipped with the package."""
    return folders.listed("models")


def _folder(name: str | os.PathLike):
    if isinstance(name, str) and name in available():
        return folders.shipped("models", name)
    if Path(name).is_dir():
        return Path(name)
    raise ValueError(f"name must be one of {available()} or a folder with manifest.json, got {str(name)!r}")


def manifest(name: str | os.PathLike = "tiny-gpt") -> dict:
    """The manifest of a shipped model (or of a training output folder)."""
    return folders.read_manifest(_folder(name))


def load(name: str | os.PathLike = "tiny-gpt", device: str | torch.device | None = None):
    """Return ``(model, tokenizer)``: a `GPT` in eval mode on ``device`` and its `BPETokenizer`.

    ``name`` is a shipped model's name or a folder written by ``companion.train``.
    Raises ``ValueError`` if a file does not match the sha256 recorded in the manifest.
    """
    from companion.bpe import BPETokenizer

    folder = folders.read_folder(_folder(name))
    tokenizer = BPETokenizer.from_json(folder.files["tokenizer.json"].decode("utf-8"), source="tokenizer.json")
    model = GPT(GPTConfig(**folder.manifest["model_config"]), seed=None)
    load_model_tensors(model, folder.tensors)
    model.to(get_device(str(device) if device is not None else None))
    return model.eval(), tokenizer


pretrained = load


class _CallableModule(types.ModuleType):
    """Lets ``companion.pretrained(name, device)`` call `load` although ``companion.pretrained`` is this module."""

    def __call__(self, name: str | os.PathLike = "tiny-gpt", device: str | torch.device | None = None):
        return load(name, device)


sys.modules[__name__].__class__ = _CallableModule
