"""Self-checks for the exercises of the chapter "The Reformer: overview" (book/reformer/overview.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed here from the sizes below, with the formulas of the chapter.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from companion.device import make_generator
from companion.exercises._feedback import as_function, as_number, close, report
from companion.feedforward import feed_forward

GiB = 2**30

# Exercise 1: the attention matrices of one layer (all heads, whole batch) in half precision.
SCORES_LENGTH, SCORES_HEADS, SCORES_BATCH, SCORES_BYTES_PER_VALUE = 8192, 8, 4, 2  # float16

# Exercise 2: the paper's example of the residual stream, kept once per layer for the backward pass.
STREAM_LENGTH, STREAM_D_MODEL, STREAM_BATCH, STREAM_LAYERS, STREAM_BYTES_PER_VALUE = 65536, 1024, 8, 12, 4

# Exercise 3: a growth exponent from two measurements.
EXPONENT_LENGTHS = (2048, 8192)
EXPONENT_MIB = (40.0, 580.0)


def attention_matrix_bytes(length: int, heads: int, batch: int, bytes_per_value: int) -> int:
    """One L x L score matrix per head and per sequence."""
    return batch * heads * length * length * bytes_per_value


def check_attention_bytes(answer: float) -> bool:
    """Exercise 1: bytes of the score matrices for L=8192, 8 heads, batch 4, float16."""
    value = as_number(answer, "answer")
    expected = attention_matrix_bytes(SCORES_LENGTH, SCORES_HEADS, SCORES_BATCH, SCORES_BYTES_PER_VALUE)
    return report(
        close(value, expected),
        f"Right: 4 x 8 x 8192^2 x 2 bytes = {expected:,} bytes = {expected / GiB:g} GiB, for one layer.",
        f"Not quite ({value:,.0f}). Hint: there is one L x L matrix for every head of every sequence in the "
        "batch, and float16 takes 2 bytes per value. Answer in bytes.",
    )


def residual_stream_bytes(length: int, d_model: int, batch: int, layers: int, bytes_per_value: int) -> int:
    """The input of every layer, B x L x d_model values, kept once per layer."""
    return layers * batch * length * d_model * bytes_per_value


def check_activation_bytes(answer: float) -> bool:
    """Exercise 2: bytes of the layer inputs of 12 layers, 64K tokens, d_model 1024, batch 8, float32."""
    value = as_number(answer, "answer")
    expected = residual_stream_bytes(STREAM_LENGTH, STREAM_D_MODEL, STREAM_BATCH, STREAM_LAYERS,
                                     STREAM_BYTES_PER_VALUE)
    per_layer = expected // STREAM_LAYERS
    return report(
        close(value, expected),
        f"Right: each layer's input is 8 x 65536 x 1024 floats = {per_layer / GiB:g} GiB, and 12 layers keep "
        f"{expected / GiB:g} GiB ({expected:,} bytes) before counting anything inside the layers.",
        f"Not quite ({value:,.0f}). Hint: one layer's input has B x L x d_model values of 4 bytes each; the "
        "backward pass needs it for every one of the layers. Answer in bytes.",
    )


def growth_exponent(lengths: tuple[int, int], sizes: tuple[float, float]) -> float:
    """The k in size ~ length^k through two points: log(size ratio) / log(length ratio)."""
    return math.log(sizes[1] / sizes[0]) / math.log(lengths[1] / lengths[0])


def check_exponent(answer: float) -> bool:
    """Exercise 3: the exponent through (2048, 40 MiB) and (8192, 580 MiB)."""
    value = as_number(answer, "answer")
    expected = growth_exponent(EXPONENT_LENGTHS, EXPONENT_MIB)
    return report(
        close(value, expected, rel=0, abs_tol=0.01),
        f"Right: log(580 / 40) / log(8192 / 2048) = {expected:.3f}. Close to 2: the L^2 matrices dominate, "
        "and the linear terms (inputs, outputs) pull it a little below 2.",
        f"Not quite ({value:.3f}). Hint: if memory = c L^k, then memory_2 / memory_1 = (L_2 / L_1)^k; take "
        "logarithms of both sides.",
    )


ChunkedFeedForward = Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, int], torch.Tensor]


class _CountingFeedForward(torch.nn.Module):
    """A feed-forward layer that remembers the most positions it was ever given at once."""

    def __init__(self, d_model: int, d_ff: int, seed: int) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.ff = feed_forward(d_model, d_ff)
        self.most_positions = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.most_positions = max(self.most_positions, x.shape[-2])
        return self.ff(x)


def check_chunked_feed_forward(my_chunked: ChunkedFeedForward) -> bool:
    """Exercise 4: ``my_chunked(ff, x, chunk_size)`` applies ``ff`` to ``x`` of shape ``(..., L, d)`` at most
    ``chunk_size`` positions at a time and returns what ``ff(x)`` returns (the last chunk may be shorter)."""
    as_function(my_chunked, "my_chunked(ff, x, chunk_size)")
    cases = [((2, 10, 8), 3), ((1, 64, 16), 16), ((3, 2, 7, 4), 2), ((5, 4), 4), ((2, 9, 6), 20)]
    for i, (shape, chunk_size) in enumerate(cases):
        ff = _CountingFeedForward(shape[-1], 4 * shape[-1], seed=60 + i)
        x = torch.randn(*shape, generator=make_generator(70 + i))
        with torch.no_grad():
            expected = ff.ff(x)
            got = my_chunked(ff, x.clone(), chunk_size)
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            return report(False, "", f"Not quite: for x of shape {shape} return a tensor of shape "
                                     f"{tuple(expected.shape)}, got {getattr(got, 'shape', type(got).__name__)}. "
                                     "Hint: keep the last, shorter chunk, and put the chunks back together "
                                     "along the sequence dimension.")
        if ff.most_positions > chunk_size:
            return report(False, "", f"Not quite: ff was called on {ff.most_positions} positions at once with "
                                     f"chunk_size={chunk_size}. Hint: split x along the sequence (dim -2), not "
                                     "the batch or the width.")
        if not torch.allclose(got, expected, atol=1e-6):
            return report(False, "", f"Not quite: for x of shape {shape} your result differs from ff(x). Hint: "
                                     "split along dim -2, apply ff to each piece, and concatenate in order.")
    return report(True, f"Right: on {len(cases)} fresh cases your chunked layer equals ff(x) and never gives ff "
                        "more than chunk_size positions at once.", "")
