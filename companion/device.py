"""One place that picks the device and seeds the random number generators.

Random draws in `companion` happen on the CPU with a `torch.Generator` and move
to the device afterwards, so a seed gives the same numbers on CUDA, MPS and CPU.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def get_device(prefer: str | None = None) -> torch.device:
    """Return ``cuda`` if available, then ``mps``, then ``cpu``.

    ``prefer`` (or the environment variable ``COMPANION_DEVICE``) forces one,
    for example ``"cpu"`` to reproduce a CPU run on a GPU machine.
    """
    choice = prefer or os.environ.get("COMPANION_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={choice!r} was asked for, but CUDA is not available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device={choice!r} was asked for, but MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded with ``seed``."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return make_generator(seed)


def make_generator(seed: int | None = None) -> torch.Generator:
    """A CPU `torch.Generator`, seeded when ``seed`` is given (draw on it, then move to the device)."""
    generator = torch.Generator(device="cpu")
    if seed is not None:
        generator.manual_seed(seed)
    return generator
