"""Chunked feed-forward: the Reformer's third memory saving (Kitaev, Kaiser, Levskaya 2020).

A transformer's feed-forward layer, Linear(d_model, d_ff) -> activation -> Linear(d_ff, d_model), works on
every position separately. Its hidden activations have shape (..., L, d_ff), and d_ff is usually four times
d_model or more, so for long sequences this one intermediate tensor is the largest thing in the layer.
Because positions do not interact, the layer can run on c positions at a time and concatenate the results:
the output is the same, and only a (..., c, d_ff) hidden tensor exists at any moment.

That saves memory whenever nothing keeps the hidden tensor alive: inference, and the recomputation inside
the backward pass of reversible layers. An ordinary training step stores every chunk's hidden tensor for
the backward pass anyway; ``recompute=True`` stores only each chunk's input and recomputes the chunk in
the backward pass (activation checkpointing per chunk), so the backward too holds one chunk at a time.

At the end: the case that the Reformer chapters measure with `companion.memory.peak_memory` (a
feed-forward layer whole or chunked). Stacks of feed-forward blocks, run as residual, checkpointed or
reversible layers, are in `companion.layer_stacks`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .checks import positive_int
from .device import make_generator


def chunked_feed_forward(ff: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk_size: int, *,
                         dim: int = -2, recompute: bool = False) -> torch.Tensor:
    """Apply the position-wise ``ff`` to ``x`` in chunks of ``chunk_size`` positions along ``dim``.

    ``x`` has shape ``(..., L, d)`` (the sequence on ``dim``, by default the second to last). ``ff`` must
    treat positions independently (e.g. a feed-forward block); the result then equals ``ff(x)`` up to
    rounding. With ``recompute=True`` each chunk is checkpointed, so a training step does not keep the
    hidden activations of all chunks at once either.
    """
    if not callable(ff):
        raise TypeError(f"ff must be callable (e.g. an nn.Module), got {type(ff).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"x must have shape (..., L, d) with at least 2 dims, got shape {tuple(x.shape)}")
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim must be in [{-x.dim()}, {x.dim() - 1}] for x with {x.dim()} dims, got {dim}")
    positive_int(chunk_size, "chunk_size")
    needs_graph = torch.is_grad_enabled() and (x.requires_grad or _has_trainable_params(ff))
    outputs = []
    for chunk in x.split(chunk_size, dim=dim):  # views, no copies: the last chunk may be shorter
        if recompute and needs_graph:
            outputs.append(checkpoint(ff, chunk, use_reentrant=False))
        else:
            outputs.append(ff(chunk))
    return torch.cat(outputs, dim=dim)


def _has_trainable_params(ff: Callable) -> bool:
    return isinstance(ff, nn.Module) and any(p.requires_grad for p in ff.parameters())


class ChunkedFeedForward(nn.Module):
    """``ff`` wrapped so that it always runs through `chunked_feed_forward` (a drop-in replacement)."""

    def __init__(self, ff: nn.Module, chunk_size: int, *, recompute: bool = False) -> None:
        super().__init__()
        if not isinstance(ff, nn.Module):
            raise TypeError(f"ff must be a torch.nn.Module, got {type(ff).__name__}")
        positive_int(chunk_size, "chunk_size")
        self.ff, self.chunk_size, self.recompute = ff, chunk_size, recompute

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return chunked_feed_forward(self.ff, x, self.chunk_size, recompute=self.recompute)


def feed_forward(d_model: int, d_ff: int, *, dropout: float = 0.0, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> nn.Sequential:
    """The transformer's position-wise block: Linear(d_model, d_ff) -> GELU -> Dropout -> Linear(d_ff, d_model)."""
    for name, value in (("d_model", d_model), ("d_ff", d_ff)):
        positive_int(value, name)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return nn.Sequential(nn.Linear(d_model, d_ff, device=device, dtype=dtype), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(d_ff, d_model, device=device, dtype=dtype))


# A case for `companion.memory.peak_memory`: it builds its inputs and returns the computation to measure.

def feed_forward_case(length: int, *, chunk_size: int | None = None, d_model: int = 128, d_ff: int = 512,
                      batch: int = 1, seed: int = 0, device: str = "cpu") -> Callable[[], torch.Tensor]:
    """A feed-forward layer on ``(batch, length, d_model)`` inputs, run without gradients, whole
    (``chunk_size=None``) or in chunks. Made for ``peak_memory("companion.feedforward:feed_forward_case", L)``."""
    generator = make_generator(seed)
    with torch.random.fork_rng(devices=[]):  # seed the layer's initial weights, leave the caller's RNG alone
        torch.manual_seed(seed)
        ff = feed_forward(d_model, d_ff).to(device)
    x = torch.randn(batch, length, d_model, generator=generator).to(device)

    def run() -> torch.Tensor:
        with torch.no_grad():
            return ff(x) if chunk_size is None else chunked_feed_forward(ff, x, chunk_size)

    return run
