"""Stacks of feed-forward blocks: one seed gives one set of weights in every mode; a training step fills every gradient."""

from __future__ import annotations

import pytest
import torch

from companion import layer_stacks


@pytest.mark.parametrize("mode", ["residual", "checkpoint", "reversible"])
def test_training_step_case_fills_every_gradient(mode):
    step = layer_stacks.training_step_case(3, mode, batch=2, length=8, width=16, d_ff=32)
    assert all(p.grad is None for p in step.model.parameters())
    step()  # forward and backward on the 3-block stack
    assert len(step.model.blocks) == 3 and step.model.mode == mode
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in step.model.parameters())


def test_layer_stack_modes_share_weights_for_one_seed():
    a = layer_stacks.layer_stack(2, width=8, d_ff=16, mode="residual", seed=5)
    b = layer_stacks.layer_stack(2, width=8, d_ff=16, mode="reversible", seed=5)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match=r"depth must be an int >= 1, got 0"):
        layer_stacks.layer_stack(0)
