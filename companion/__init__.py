"""`companion`: the package every chapter of the LLM Foundations course imports.

Submodules load on first use (``companion.bpe``, ``companion.lsh`` ...), so
``import companion`` stays cheap and no module pulls in the whole package.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    try:
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as error:
        if error.name == f"{__name__}.{name}":
            raise AttributeError(f"module 'companion' has no attribute {name!r}") from None
        raise


def __dir__() -> list[str]:
    modules = {info.name for info in pkgutil.iter_modules(__path__)}
    return sorted(set(globals()) | modules)
