"""Stacks of feed-forward layers run three ways, to measure what reversible layers save.

`layer_stack` builds ``depth`` blocks of two sublayers, f = g = LayerNorm -> feed-forward, as a
`companion.reversible.ReversibleSequence`. An attention-free stand-in for a Reformer layer (there f would be
attention), it runs with the same weights as ordinary residual layers, with activation checkpointing, or
reversibly, so the Reformer chapters can compare the memory of a training step in each mode with
`companion.memory.peak_memory` (the case `training_step_case`).

It sits above both ideas it combines: `companion.reversible` stays independent of any particular sublayer,
and `companion.feedforward` of how its layers are stacked.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .checks import positive_int
from .device import make_generator
from .feedforward import feed_forward
from .reversible import ReversibleBlock, ReversibleSequence


def layer_stack(depth: int, *, width: int = 128, d_ff: int = 128, dropout: float = 0.1, mode: str = "residual",
                seed: int = 0, device: torch.device | str = "cpu") -> ReversibleSequence:
    """``depth`` blocks of two sublayers, f = g = LayerNorm -> feed-forward, as a `ReversibleSequence`.

    An attention-free stand-in for a Reformer layer (f would be attention): ``mode="residual"`` runs it as
    ordinary residual layers, ``"checkpoint"`` with torch.utils.checkpoint, ``"reversible"`` reversibly.
    """
    positive_int(depth, "depth")

    def sublayer() -> nn.Module:
        return nn.Sequential(nn.LayerNorm(width), feed_forward(width, d_ff, dropout=dropout))

    with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's RNG
        torch.manual_seed(seed)
        blocks = [ReversibleBlock(sublayer(), sublayer()) for _ in range(depth)]
    return ReversibleSequence(blocks, mode=mode).to(device)


def training_step_case(depth: int, mode: str = "residual", *, batch: int = 8, length: int = 256,
                       width: int = 128, d_ff: int = 128, dropout: float = 0.1, seed: int = 0,
                       device: str = "cpu") -> Callable[[], None]:
    """One training step (forward and backward, no optimizer) of `layer_stack` on random tokens.

    The peak it adds holds the activations kept for the backward pass plus the parameter gradients
    (``4 * parameters`` bytes in float32, growing with depth whatever the mode). Made for
    ``peak_memory("companion.layer_stacks:training_step_case", depth, mode)``.
    """
    model = layer_stack(depth, width=width, d_ff=d_ff, dropout=dropout, mode=mode, seed=seed, device=device)
    x = torch.randn(batch, length, width, generator=make_generator(seed + 1)).to(device)
    # warm-up on a one-block stack: first-call set-up of kernels and thread pools is not the model's memory
    warm = layer_stack(1, width=width, d_ff=d_ff, dropout=dropout, mode=mode, seed=seed, device=device)
    _step(warm, x)

    def run() -> None:
        _step(model, x)

    run.model = model  # type: ignore[attr-defined]  (so a test or a reader can look at the gradients)
    return run


def _step(model: ReversibleSequence, x: torch.Tensor) -> None:
    y1, y2 = model(x, x)
    (y1 + y2).pow(2).mean().backward()
