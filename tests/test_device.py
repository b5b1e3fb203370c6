"""companion.device: the device choice and the seeding helpers."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from companion.device import get_device, make_generator, seed_everything


def test_seed_everything_makes_every_generator_repeat():
    draws = []
    for _ in range(2):
        generator = seed_everything(1234)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item(),
                      torch.rand(1, generator=generator).item()))
    assert draws[0] == draws[1]
    seed_everything(1235)
    assert (random.random(), np.random.rand()) != draws[0][:2]


def test_seed_everything_rejects_bad_seeds():
    for bad in (-1, 1.5, "7"):
        with pytest.raises(ValueError, match="seed must be a non-negative int"):
            seed_everything(bad)


def test_make_generator_is_a_cpu_generator_that_repeats():
    first, second = make_generator(7), make_generator(7)
    assert first.device.type == "cpu"
    assert torch.equal(torch.randn(5, generator=first), torch.randn(5, generator=second))


def test_get_device_honours_a_forced_choice(monkeypatch):
    monkeypatch.setenv("COMPANION_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    assert get_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            get_device("cuda")
