"""The self-checks of the reversible-layers chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.exercises import reversible as ex
from companion.reversible import ReversibleBlock

torch.set_num_threads(1)


class _Scale(nn.Module):
    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return 3 * t


class _Square(nn.Module):
    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t * t


def test_inverse() -> None:
    assert ex.check_inverse(-1, 1)
    assert not ex.check_inverse(1, -1)  # swapped
    assert not ex.check_inverse(2 - 3 * 5, 5)  # used y2 in place of x2


def test_inverse_key_agrees_with_companion_reversible() -> None:
    block = ReversibleBlock(_Scale(), _Square())
    x1, x2 = block.inverse(torch.tensor([2.0]), torch.tensor([5.0]))
    assert (x1.item(), x2.item()) == ex.invert(2.0, 5.0)
    y1, y2 = block(x1, x2)
    assert (y1.item(), y2.item()) == ex.INVERT_OUTPUTS


def test_stored_bytes() -> None:
    pair = 2 * 8 * 4096 * 512 * 4
    assert ex.check_stored_bytes(48 * pair, pair)
    assert not ex.check_stored_bytes(48 * pair, 48 * pair)
    assert not ex.check_stored_bytes(24 * pair, pair // 2)  # one half only


def test_replay() -> None:
    assert ex.check_replay("b")
    assert ex.check_replay(" B ")
    assert not ex.check_replay("a")
    assert not ex.check_replay("c")
    with pytest.raises(ValueError, match=r"answer must be one of \['a', 'b', 'c'\], got 'd'"):
        ex.check_replay("d")


def test_float_reconstruction() -> None:
    assert ex.check_float_reconstruction(0.0)
    assert not ex.check_float_reconstruction(1e-8)
    # the key is computed, not assumed: in float64 the small x1 survives
    assert (1e-8 + 1.0) - 1.0 != 0.0


def test_bad_type() -> None:
    with pytest.raises(TypeError, match="x2 must be a number"):
        ex.check_inverse(1.0, "1")
