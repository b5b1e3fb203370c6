"""The logits filters used by decoding: temperature, top-k and top-p (nucleus), and two penalties on repetition.

Each takes logits of shape ``(..., vocab)`` and returns logits of the same shape, with the
tokens it rules out set to ``-inf`` so that a softmax gives them probability zero. They
return the same masked logits as ``transformers``' ``TemperatureLogitsWarper``,
``TopKLogitsWarper`` and ``TopPLogitsWarper`` (ties and ``min_tokens_to_keep`` included),
and `companion.decoding.sample` applies them in the same order: temperature, top-k, top-p.
`min_p_filter` (min-p sampling, Nguyen et al. 2024) equals ``MinPLogitsWarper``.

The two penalties look at the tokens so far, ``previous`` ``(batch, time)``, prompt included:
`penalize_repetition` (CTRL's repetition penalty, Keskar et al. 2019) makes every token that
already occurs less likely, and `no_repeat_ngram_filter` forbids any token that would complete
an n-gram that already occurs. They equal ``transformers``' ``RepetitionPenaltyLogitsProcessor``
and ``NoRepeatNGramLogitsProcessor``, and the decoders apply them first, in that order.
"""

from __future__ import annotations

import torch

from companion.checks import positive_int


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ``ValueError`` naming the first parameter outside its allowed range."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None:
        positive_int(top_k, "top_k")
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


def min_p_filter(logits: torch.Tensor, min_p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep the tokens at least ``min_p`` times as likely as the most likely one (min-p, Nguyen et al. 2024).

    The cut scales with the model's confidence: a peaked distribution keeps few tokens, a flat one
    many. The ``min_tokens_to_keep`` most likely tokens always stay. Equals ``transformers``'
    ``MinPLogitsWarper``.
    """
    if isinstance(min_p, bool) or not isinstance(min_p, (int, float)) or not 0 <= min_p <= 1:
        raise ValueError(f"min_p must be in [0, 1], got {min_p!r}")
    _check_min_tokens(min_tokens_to_keep)
    probs = logits.softmax(dim=-1)
    drop = probs < min_p * probs.amax(dim=-1, keepdim=True)
    most_likely = torch.topk(probs, min(min_tokens_to_keep, probs.size(-1)), dim=-1).indices
    drop = drop.scatter(-1, most_likely, False)
    return logits.masked_fill(drop, float("-inf"))


def _check_min_tokens(min_tokens_to_keep: int) -> None:
    positive_int(min_tokens_to_keep, "min_tokens_to_keep")


def check_penalty_args(repetition_penalty: float, no_repeat_ngram_size: int) -> None:
    """Raise ``ValueError`` naming the first penalty parameter outside its allowed range."""
    if isinstance(repetition_penalty, bool) or not isinstance(repetition_penalty, (int, float)) \
            or not repetition_penalty > 0:
        raise ValueError(f"repetition_penalty must be a number > 0 (1.0: no penalty), got {repetition_penalty!r}")
    if isinstance(no_repeat_ngram_size, bool) or not isinstance(no_repeat_ngram_size, int) or no_repeat_ngram_size < 0:
        raise ValueError(f"no_repeat_ngram_size must be an int >= 0 (0: off), got {no_repeat_ngram_size!r}")


def penalize_repetition(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty: the logit of every token in ``previous`` is divided by ``penalty``.

    A negative logit is multiplied instead, so that a penalty above 1 always makes the token less
    likely (Keskar et al. divide every logit, which raises a negative one). ``logits`` ``(batch,
    vocab)``; ``previous`` ``(batch, time)``, the tokens so far. A token counts once, however often
    it occurs.
    """
    check_penalty_args(penalty, 0)
    _check_previous(logits, previous)
    seen = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, previous, True)
    penalized = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(seen, penalized, logits)


def no_repeat_ngram_filter(logits: torch.Tensor, previous: torch.Tensor, n: int) -> torch.Tensor:
    """Mask with ``-inf`` every token that would complete an ``n``-gram already in ``previous``.

    The last ``n - 1`` tokens of each row are a prefix; wherever the same ``n - 1`` tokens occur
    earlier in the row, the token that followed them there is banned. ``n = 1`` bans every token
    seen so far. ``logits`` ``(batch, vocab)``; ``previous`` ``(batch, time)``.
    """
    positive_int(n, "n")
    _check_previous(logits, previous)
    if previous.size(1) < n:  # no complete n-gram yet
        return logits
    windows = previous.unfold(1, n, 1)  # (batch, time - n + 1, n): every n-gram so far
    prefix = previous[:, previous.size(1) - n + 1:]  # the last n - 1 tokens
    matches = (windows[..., :-1] == prefix[:, None, :]).all(-1)
    vocab = logits.size(-1)
    # each matching n-gram bans its last token; the others point at a spare column past the vocabulary
    banned = torch.zeros(logits.size(0), vocab + 1, dtype=torch.bool, device=logits.device)
    banned.scatter_(1, windows[..., -1].clamp(max=vocab).masked_fill(~matches, vocab), True)
    return logits.masked_fill(banned[:, :vocab], float("-inf"))


def _check_previous(logits: torch.Tensor, previous: torch.Tensor) -> None:
    if logits.dim() != 2 or previous.dim() != 2 or previous.size(0) != logits.size(0):
        raise ValueError(f"logits must be (batch, vocab) and previous (batch, time) with the same batch, got "
                         f"{tuple(logits.shape)} and {tuple(previous.shape)}")
    if previous.dtype != torch.long:
        raise TypeError(f"previous must be a LongTensor of token ids, got {previous.dtype}")
