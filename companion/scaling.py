"""Counting a GPT: parameters, training compute and memory, attention masks, and power-law fits.

    parameter_count(12, 768, 50257, 2048)          # GPT-3 Small: 125 M, as in Table 2.1
    training_flops(175e9, 300e9)                   # 6 N D = 3.15e23 FLOPs
    pf_days(3.15e23)                               # about 3,640 petaflop/s-days
    fit_power_law(n, loss)                         # L(N) = (N_c / N) ** alpha

Everything counts the `companion.gpt.GPT` of this course: pre-LayerNorm blocks, learned positions, a
feed-forward layer four times as wide as the residual stream, and an output layer tied to the token
embedding (so it is counted once). The sweep that trains several sizes lives in `companion.sweep`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from companion.checks import positive_int


def block_parameters(n_embd: int, *, bias: bool = True) -> int:
    """One transformer block: attention 4 d^2, feed-forward 8 d^2, plus biases and two layer norms."""
    positive_int(n_embd, "n_embd")
    d = n_embd
    weights = 3 * d * d + d * d + 4 * d * d + 4 * d * d  # qkv, attention output, fc, feed-forward output
    biases = (3 * d + d + 4 * d + d) if bias else 0
    norms = 2 * (2 * d if bias else d)
    return weights + biases + norms


def parameter_count(n_layer: int, n_embd: int, vocab_size: int, block_size: int, *, bias: bool = True) -> int:
    """Exact number of parameters of a `GPT` of that shape (tied embeddings counted once)."""
    for name, value in (("n_layer", n_layer), ("vocab_size", vocab_size), ("block_size", block_size)):
        positive_int(value, name)
    final_norm = 2 * n_embd if bias else n_embd
    return n_layer * block_parameters(n_embd, bias=bias) + (vocab_size + block_size) * n_embd + final_norm


def non_embedding_count(n_layer: int, n_embd: int, *, bias: bool = True) -> int:
    """Kaplan et al.'s N: every parameter but the token and position tables (the final norm included)."""
    positive_int(n_layer, "n_layer")
    return n_layer * block_parameters(n_embd, bias=bias) + (2 * n_embd if bias else n_embd)


def approx_parameters(n_layer: int, n_embd: int) -> int:
    """The usual shortcut ``12 n_layer d^2``: the blocks' matrices only, no embeddings or biases."""
    positive_int(n_layer, "n_layer")
    positive_int(n_embd, "n_embd")
    return 12 * n_layer * n_embd * n_embd


# ------------------------------------------------------------------------------------------------
# GPT-3's eight sizes (Brown et al. 2020, Table 2.1) and its data mix (Table 2.2), as printed

GPT3_VOCAB, GPT3_CONTEXT = 50257, 2048
# name: (printed parameters, n_layers, d_model, n_heads, d_head, batch size in tokens, learning rate)
GPT3_SIZES: dict[str, tuple[float, int, int, int, int, float, float]] = {
    "GPT-3 Small": (125e6, 12, 768, 12, 64, 0.5e6, 6.0e-4),
    "GPT-3 Medium": (350e6, 24, 1024, 16, 64, 0.5e6, 3.0e-4),
    "GPT-3 Large": (760e6, 24, 1536, 16, 96, 0.5e6, 2.5e-4),
    "GPT-3 XL": (1.3e9, 24, 2048, 24, 128, 1e6, 2.0e-4),
    "GPT-3 2.7B": (2.7e9, 32, 2560, 32, 80, 1e6, 1.6e-4),
    "GPT-3 6.7B": (6.7e9, 32, 4096, 32, 128, 2e6, 1.2e-4),
    "GPT-3 13B": (13e9, 40, 5140, 40, 128, 2e6, 1.0e-4),
    "GPT-3 175B": (175e9, 96, 12288, 96, 128, 3.2e6, 0.6e-4),
}
GPT3_TOKENS = 300e9  # every size was trained on 300 billion tokens
# source: (tokens, weight in the training mix, epochs elapsed in 300 B tokens), as printed
GPT3_DATA_MIX: dict[str, tuple[float, float, float]] = {
    "Common Crawl (filtered)": (410e9, 0.60, 0.44),
    "WebText2": (19e9, 0.22, 2.9),
    "Books1": (12e9, 0.08, 1.9),
    "Books2": (55e9, 0.08, 0.43),
    "Wikipedia": (3e9, 0.03, 3.4),
}


def epochs_elapsed(source_tokens: float, weight: float, total_tokens: float = GPT3_TOKENS) -> float:
    """How many times a source is read when a fraction ``weight`` of ``total_tokens`` is drawn from it."""
    if not source_tokens > 0 or not 0 <= weight <= 1 or not total_tokens > 0:
        raise ValueError(f"source_tokens and total_tokens must be > 0 and weight in [0, 1], "
                         f"got {source_tokens}, {total_tokens}, {weight}")
    return weight * total_tokens / source_tokens


# ------------------------------------------------------------------------------------------------
# Compute and memory


def training_flops(n_params: float, n_tokens: float) -> float:
    """C = 6 N D: 2 N FLOPs a token forward (a multiply and an add per weight), twice that backward."""
    if not n_params > 0 or not n_tokens > 0:
        raise ValueError(f"n_params and n_tokens must be > 0, got {n_params} and {n_tokens}")
    return 6.0 * n_params * n_tokens


def attention_flops(n_layer: int, n_ctx: int, n_embd: int, n_tokens: float) -> float:
    """The term 6 N D leaves out: scores and weighted sums, 6 n_layer n_ctx d per token (Kaplan et al.,
    Table 1, forward 2 n_layer n_ctx d, times 3 for training; counted over the full context, not halved
    by the causal mask)."""
    for name, value in (("n_layer", n_layer), ("n_ctx", n_ctx), ("n_embd", n_embd)):
        positive_int(value, name)
    if not n_tokens > 0:
        raise ValueError(f"n_tokens must be > 0, got {n_tokens}")
    return 6.0 * n_layer * n_ctx * n_embd * n_tokens


def pf_days(flops: float) -> float:
    """FLOPs in petaflop/s-days: 1e15 FLOPs a second for a day (8.64e19 FLOPs)."""
    return flops / (1e15 * 24 * 3600)


# bytes per parameter: fp32 keeps weights, gradients and Adam's two moments in float32; "mixed" (the
# convention of Micikevicius et al. 2018, used by ZeRO) keeps fp16 weights and gradients plus a float32
# master copy of the weights and float32 Adam moments.
BYTES_PER_PARAM = {
    "fp32": {"weights": 4, "gradients": 4, "master weights": 0, "Adam moments": 8},
    "mixed": {"weights": 2, "gradients": 2, "master weights": 4, "Adam moments": 8},
}


def training_memory(n_params: float, precision: str = "mixed") -> dict[str, float]:
    """Bytes of model state while training with Adam (activations not included), by component."""
    if precision not in BYTES_PER_PARAM:
        raise ValueError(f"precision must be one of {sorted(BYTES_PER_PARAM)}, got {precision!r}")
    if not n_params > 0:
        raise ValueError(f"n_params must be > 0, got {n_params}")
    return {part: size * n_params for part, size in BYTES_PER_PARAM[precision].items()}


# ------------------------------------------------------------------------------------------------
# Dense and locally banded attention (Sparse Transformer, Child et al. 2019), True = may attend


def dense_causal_mask(length: int) -> torch.Tensor:
    """(length, length) Boolean: query i may attend to key j when j <= i."""
    positive_int(length, "length")
    return torch.ones(length, length, dtype=torch.bool).tril()


def banded_causal_mask(length: int, window: int) -> torch.Tensor:
    """(length, length) Boolean: query i may attend to the ``window`` keys i - window + 1 .. i."""
    positive_int(window, "window")
    return dense_causal_mask(length).triu(-(window - 1))


def alternating_masks(n_layer: int, length: int, window: int) -> list[torch.Tensor]:
    """GPT-3's pattern: dense causal attention in even layers, locally banded in odd ones."""
    positive_int(n_layer, "n_layer")
    dense, banded = dense_causal_mask(length), banded_causal_mask(length, window)
    return [dense if i % 2 == 0 else banded for i in range(n_layer)]


def attended_pairs(length: int, window: int | None = None) -> int:
    """How many (query, key) scores a mask allows: L (L + 1) / 2 dense, about L w banded."""
    positive_int(length, "length")
    if window is None or window >= length:
        return length * (length + 1) // 2
    positive_int(window, "window")
    return window * (window + 1) // 2 + (length - window) * window


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v over the pairs ``mask`` allows (PyTorch's SDPA, True = attend)."""
    if mask.dtype != torch.bool or mask.shape != (q.shape[-2], k.shape[-2]):
        raise ValueError(f"mask must be Boolean of shape {(q.shape[-2], k.shape[-2])}, got {mask.dtype} "
                         f"{tuple(mask.shape)}")
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


# ------------------------------------------------------------------------------------------------
# Power laws

KAPLAN_ALPHA_N, KAPLAN_ALPHA_C = 0.076, 0.050  # Kaplan et al. 2020: loss vs N, and vs compute on the frontier


@dataclass(frozen=True)
class PowerLaw:
    """L(x) = (scale / x) ** alpha, fitted by least squares on log L against log x (r2 in log space)."""

    scale: float
    alpha: float
    r2: float

    def __call__(self, x):
        return (self.scale / np.asarray(x, dtype=float)) ** self.alpha


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLaw:
    """Fit y = (scale / x) ** alpha: log y = alpha log scale - alpha log x is a straight line."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2 or np.ptp(x) == 0:
        raise ValueError(f"x and y must be 1-D of equal length >= 2 with distinct x, got {len(x)} and {len(y)}")
    if not ((x > 0).all() and (y > 0).all() and np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be positive")
    log_x, log_y = np.log(x), np.log(y)
    slope, intercept = np.polyfit(log_x, log_y, 1)
    residual = log_y - (slope * log_x + intercept)
    total = ((log_y - log_y.mean()) ** 2).sum()
    r2 = 1.0 - (residual ** 2).sum() / total if total > 0 else 1.0
    alpha = -slope
    scale = float(np.exp(intercept / alpha)) if alpha != 0 else float("inf")
    return PowerLaw(scale=scale, alpha=float(alpha), r2=float(r2))


def compute_frontier(curves: Sequence[Sequence[tuple[float, float]]]) -> list[tuple[float, float]]:
    """The (compute, loss) points no other point beats: lowest loss for at most that compute."""
    points = sorted((float(c), float(loss)) for curve in curves for c, loss in curve)
    frontier: list[tuple[float, float]] = []
    for c, loss in points:
        if not frontier or loss < frontier[-1][1]:
            frontier.append((c, loss))
    return frontier
