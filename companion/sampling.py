"""The logits filters used by sampling: temperature, top-k and top-p (nucleus).

Each takes logits of shape ``(..., vocab)`` and returns logits of the same shape, with the
tokens it rules out set to ``-inf`` so that a softmax gives them probability zero. They
return the same masked logits as ``transformers``' ``TemperatureLogitsWarper``,
``TopKLogitsWarper`` and ``TopPLogitsWarper`` (ties and ``min_tokens_to_keep`` included),
and `companion.decoding.sample` applies them in the same order: temperature, top-k, top-p.
"""

from __future__ import annotations

import torch

from companion.checks import positive_int


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ``ValueError`` naming the first parameter outside its allowed range."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be an int >= 1 (or None), got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (or None), got {top_p}")


def temperature_scale(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide the logits by ``temperature``: below 1 sharpens the distribution, above 1 flattens it."""
    check_sampling_args(temperature, None, None)
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep the ``k`` most likely tokens (at least ``min_tokens_to_keep``), mask the rest with ``-inf``.

    Tokens tied with the k-th largest logit are all kept, so a tie can keep more than ``k``.
    """
    check_sampling_args(1.0, k, None)
    _check_min_tokens(min_tokens_to_keep)
    k = min(max(k, min_tokens_to_keep), logits.size(-1))
    kth_largest = torch.topk(logits, k).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probabilities sum to at least ``p`` (the nucleus).

    Walking up from the least likely token, a token is dropped while it and every token below it
    together hold at most ``1 - p`` of the probability; the ``min_tokens_to_keep`` most likely
    tokens always stay. (Summing from the bottom, in ascending order, is what makes the result
    equal to ``transformers`` to the last bit, ties included.)
    """
    check_sampling_args(1.0, None, p)
    _check_min_tokens(min_tokens_to_keep)
    ascending, order = torch.sort(logits, descending=False)
    mass_from_bottom = ascending.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = mass_from_bottom <= 1 - p
    drop_sorted[..., -min_tokens_to_keep:] = False
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def _check_min_tokens(min_tokens_to_keep: int) -> None:
    positive_int(min_tokens_to_keep, "min_tokens_to_keep")
