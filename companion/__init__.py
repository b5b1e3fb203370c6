"""`companion`: the package every chapter of the LLM Foundations course imports.

Submodules load on first use (``companion.bpe``, ``companion.lsh`` ...), so
``import companion`` stays cheap and no module pulls in the whole package.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = {
    "device", "data", "bpe", "lsh", "decoding", "metrics", "reversible", "memory",
    "gpt", "attention", "train", "pretrained", "transfer", "icl", "scaling",
    "plotting", "exercises",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'companion' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES)
