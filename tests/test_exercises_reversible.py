"""The self-checks of the reversible-layers chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.exercises import reversible as ex
from companion.reversible import ReversibleBlock


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


def test_float_reconstruction() -> None:
    assert ex.check_float_reconstruction(0.0)
    assert not ex.check_float_reconstruction(1e-8)
    # the key is computed, not assumed: in float64 the small x1 survives
    assert (1e-8 + 1.0) - 1.0 != 0.0


def test_bad_type() -> None:
    with pytest.raises(TypeError, match="x2 must be a number"):
        ex.check_inverse(1.0, "1")


def solution(blocks, y1, y2, dy1, dy2, *, forget_g_path=False, forward_order=False):
    """The chapter's one-block backward, run from the last block to the first (or, wrongly, the first)."""
    for block in (blocks if forward_order else reversed(blocks)):
        with torch.enable_grad():
            y1 = y1.detach().requires_grad_()
            g_y1 = block.g(y1)
            g_y1.backward(dy2)
            x2 = (y2 - g_y1).detach().requires_grad_()
            dx1 = dy1 if forget_g_path else dy1 + y1.grad
            f_x2 = block.f(x2)
            f_x2.backward(dx1)
            x1 = (y1 - f_x2).detach()
            dx2 = dy2 + x2.grad
        y1, y2, dy1, dy2 = x1, x2.detach(), dx1, dx2
    return y1, y2, dy1, dy2


def test_reversible_backward_accepts_the_solution(capsys) -> None:
    assert ex.check_reversible_backward(solution)
    assert "Right" in capsys.readouterr().out


@pytest.mark.parametrize("mistake,message", [({"forget_g_path": True}, "input gradients"),
                                             ({"forward_order": True}, "rebuilt inputs")])
def test_reversible_backward_rejects_plausible_mistakes(mistake, message, capsys) -> None:
    assert not ex.check_reversible_backward(lambda *args: solution(*args, **mistake))
    assert message in capsys.readouterr().out


def test_reversible_backward_rejects_a_missing_parameter_gradient(capsys) -> None:
    def no_param_grads(blocks, y1, y2, dy1, dy2):
        out = solution(blocks, y1, y2, dy1, dy2)
        for block in blocks:
            for p in block.g.parameters():
                p.grad = None
        return out

    assert not ex.check_reversible_backward(no_param_grads)
    assert "parameter gradients" in capsys.readouterr().out
    with pytest.raises(TypeError, match="my_backward must be a function"):
        ex.check_reversible_backward(None)
