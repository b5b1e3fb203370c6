"""The models shipped inside the package, loaded safely.

    model, tokenizer = companion.pretrained("tiny-gpt", device="cpu")   # the module itself is callable
    model, tokenizer = companion.pretrained.load("tiny-gpt", device="cpu")   # the same

Each model is a folder in ``companion/models/<name>/`` with ``model.safetensors``,
``tokenizer.json`` and ``manifest.json`` (config, training command, losses, sha256 of both
files). The checksums are verified before anything is parsed; the weights are safetensors,
so nothing is ever unpickled. A folder written by ``python -m companion.train`` loads the same way.
"""

from __future__ import annotations

import json
import os
import sys
import types
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors

from companion.checkpoint import load_model_tensors
from companion.device import get_device
from companion.files import read_verified
from companion.gpt import GPT, GPTConfig


def available() -> list[str]:
    """Names of the models shipped with the package."""
    root = resources.files("companion") / "models"
    if not root.is_dir():
        return []
    return sorted(entry.name for entry in root.iterdir() if entry.is_dir() and (entry / "manifest.json").is_file())


def _folder(name: str | os.PathLike):
    if isinstance(name, str) and name in available():
        return resources.files("companion") / "models" / name
    if Path(name).is_dir():
        return Path(name)
    raise ValueError(f"name must be one of {available()} or a folder with manifest.json, got {str(name)!r}")


def manifest(name: str | os.PathLike = "tiny-gpt") -> dict:
    """The manifest of a shipped model (or of a training output folder)."""
    return _read_manifest(_folder(name))


def _read_manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def _verified_bytes(folder, entry: dict) -> bytes:
    return read_verified(folder / entry["file"], entry["sha256"])


def load(name: str | os.PathLike = "tiny-gpt", device: str | torch.device | None = None):
    """Return ``(model, tokenizer)``: a `GPT` in eval mode on ``device`` and its `BPETokenizer`.

    ``name`` is a shipped model's name or a folder written by ``companion.train``.
    Raises ``ValueError`` if a file does not match the sha256 recorded in the manifest.
    """
    from companion.bpe import BPETokenizer

    folder = _folder(name)
    info = _read_manifest(folder)
    weights = load_safetensors(_verified_bytes(folder, info["weights"]))
    tokenizer_text = _verified_bytes(folder, info["tokenizer"]).decode("utf-8")
    tokenizer = BPETokenizer.from_json(tokenizer_text, source=info["tokenizer"]["file"])
    model = GPT(GPTConfig(**info["model_config"]), seed=None)
    load_model_tensors(model, weights)
    model.to(get_device(str(device) if device is not None else None))
    return model.eval(), tokenizer


pretrained = load


class _CallableModule(types.ModuleType):
    """Lets ``companion.pretrained(name, device)`` call `load` although ``companion.pretrained`` is this module."""

    def __call__(self, name: str | os.PathLike = "tiny-gpt", device: str | torch.device | None = None):
        return load(name, device)


sys.modules[__name__].__class__ = _CallableModule


def check(name: str | os.PathLike = "tiny-gpt", device: str | torch.device | None = None) -> dict:
    """Print and return the held-out perplexity of a model beside that of a unigram model.

    Uses the pretraining text of this Python (`companion.data.pretraining_texts`): the unigram model
    counts the training split's tokens; both are scored on the held-out modules.
    """
    from companion import data
    from companion.lm_eval import evaluate, tokenize_cached

    model, tokenizer = load(name, device)
    train_ids = tokenize_cached(data.pretraining_texts("train"), tokenizer, data.cache_dir())
    valid_ids = tokenize_cached(data.pretraining_texts("valid"), tokenizer, data.cache_dir())
    return evaluate(model, train_ids, valid_ids)


if __name__ == "__main__":
    check(*sys.argv[1:2])
