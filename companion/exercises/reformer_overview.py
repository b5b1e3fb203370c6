"""Self-checks for the exercises of the chapter "The Reformer: overview" (book/reformer/overview.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed here from the sizes below, with the formulas of the chapter.
"""

from __future__ import annotations

import math

from companion.exercises._feedback import as_number, close, report

GiB = 2**30

# Exercise 1: the attention matrices of one layer (all heads, whole batch) in half precision.
SCORES_LENGTH, SCORES_HEADS, SCORES_BATCH, SCORES_BYTES_PER_VALUE = 8192, 8, 4, 2  # float16

# Exercise 2: the paper's example of the residual stream, kept once per layer for the backward pass.
STREAM_LENGTH, STREAM_D_MODEL, STREAM_BATCH, STREAM_LAYERS, STREAM_BYTES_PER_VALUE = 65536, 1024, 8, 12, 4

# Exercise 3: the feed-forward hidden activations, whole sequence against one chunk.
FF_LENGTH, FF_D_FF, FF_BATCH, FF_CHUNK, FF_BYTES_PER_VALUE = 65536, 4096, 8, 4096, 4

# Exercise 4: a growth exponent from two measurements.
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


def feed_forward_hidden_bytes(rows: int, d_ff: int, batch: int, bytes_per_value: int) -> int:
    """The hidden activations B x rows x d_ff of the feed-forward layer."""
    return batch * rows * d_ff * bytes_per_value


def check_chunk_saving(full_bytes: float, chunk_bytes: float) -> bool:
    """Exercise 3: hidden bytes of the whole sequence and of one 4096-position chunk."""
    full_value, chunk_value = as_number(full_bytes, "full_bytes"), as_number(chunk_bytes, "chunk_bytes")
    expected_full = feed_forward_hidden_bytes(FF_LENGTH, FF_D_FF, FF_BATCH, FF_BYTES_PER_VALUE)
    expected_chunk = feed_forward_hidden_bytes(FF_CHUNK, FF_D_FF, FF_BATCH, FF_BYTES_PER_VALUE)
    ok = close(full_value, expected_full) and close(chunk_value, expected_chunk)
    return report(
        ok,
        f"Right: {expected_full / GiB:g} GiB for all 65536 positions, {expected_chunk / GiB:g} GiB for one "
        f"chunk: {FF_LENGTH // FF_CHUNK} times less, whatever d_ff is.",
        f"Not quite ({full_value:,.0f} and {chunk_value:,.0f}). Hint: the hidden tensor has B x L x d_ff "
        "values of 4 bytes; a chunk has the same shape with L replaced by the chunk size. Answer in bytes.",
    )


def growth_exponent(lengths: tuple[int, int], sizes: tuple[float, float]) -> float:
    """The k in size ~ length^k through two points: log(size ratio) / log(length ratio)."""
    return math.log(sizes[1] / sizes[0]) / math.log(lengths[1] / lengths[0])


def check_exponent(answer: float) -> bool:
    """Exercise 4: the exponent through (2048, 40 MiB) and (8192, 580 MiB)."""
    value = as_number(answer, "answer")
    expected = growth_exponent(EXPONENT_LENGTHS, EXPONENT_MIB)
    return report(
        abs(value - expected) < 0.01,
        f"Right: log(580 / 40) / log(8192 / 2048) = {expected:.3f}. Close to 2: the L^2 matrices dominate, "
        "and the linear terms (inputs, outputs) pull it a little below 2.",
        f"Not quite ({value:.3f}). Hint: if memory = c L^k, then memory_2 / memory_1 = (L_2 / L_1)^k; take "
        "logarithms of both sides.",
    )
