"""Metrics of generated text, as Holtzman et al. (2020) report them in their Table 1.

Every function takes token sequences (lists of token ids, or of any hashable tokens) of the
*generated* text only: strip the prompt and anything from the first eos on first (see
`companion.decoding.generated_tokens`), or the padding would count as repetition.

- `repetition`: the fraction of generations that end in a loop of a repeated phrase.
- `distinct_n`: the fraction of n-grams that are distinct, a measure of diversity.
- `self_bleu`: how much each generation shares n-grams with the others (high = alike).
- `zipf_coefficient`: the slope of the rank-frequency line of the tokens (human text: about 1).
- `perplexity`: the exponential of the mean negative log-probability per token.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np
import torch

from companion.checks import positive_int

Tokens = Sequence[Hashable]


def repeated_suffix(tokens: Tokens, max_n: int = 90) -> tuple[int, int]:
    """The phrase that repeats most at the end of ``tokens``: ``(phrase_length, copies)``.

    For each n in 1..``max_n``, count how many consecutive copies of the last n tokens end the
    sequence (at least 1). Return the n with the most copies, the shortest one on a tie.
    """
    positive_int(max_n, "max_n")
    tokens = list(tokens)
    best_n, best_copies = 1, 1
    for n in range(1, min(max_n, len(tokens)) + 1):
        phrase, copies = tokens[-n:], 1
        while (copies + 1) * n <= len(tokens) and tokens[-(copies + 1) * n: len(tokens) - copies * n] == phrase:
            copies += 1
        if copies > best_copies:
            best_n, best_copies = n, copies
    return best_n, best_copies


def ends_in_repetition(tokens: Tokens, max_n: int = 90, min_phrase_length: int = 3, short_phrase_copies: int = 51) -> bool:
    """Whether a generation ends in a repetition loop, by the rule of Holtzman et al.'s released script.

    Take the phrase of `repeated_suffix` (the last n tokens, 1 <= n <= ``max_n``, that repeat the
    most times back to back at the very end; the shortest such n on a tie). The generation repeats
    when that phrase occurs at least twice in a row and is at least ``min_phrase_length`` (3)
    tokens long, or, if shorter, occurs at least ``short_phrase_copies`` (51) times in a row. So
    "a b c a b c" repeats; "x y y" does not (a doubled token is common in normal text).
    """
    n, copies = repeated_suffix(tokens, max_n)
    return copies >= 2 and (n >= min_phrase_length or copies >= short_phrase_copies)


def repetition(generations: Iterable[Tokens], max_n: int = 90) -> float:
    """Fraction of generations that `ends_in_repetition` (the paper's "Repetition %" is 100 times this)."""
    flags = [ends_in_repetition(tokens, max_n) for tokens in generations]
    if not flags:
        raise ValueError("generations must not be empty")
    return sum(flags) / len(flags)


def _ngrams(tokens: Tokens, n: int) -> list[tuple]:
    return [tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(generations: Iterable[Tokens], n: int) -> float:
    """Distinct n-grams divided by all n-grams, pooled over the generations (Li et al., 2016).

    1.0 means no n-gram occurs twice; a text stuck in a loop tends to 0.
    """
    positive_int(n, "n")
    grams = [gram for tokens in generations for gram in _ngrams(list(tokens), n)]
    if not grams:
        raise ValueError(f"generations have no {n}-grams (all shorter than n={n})")
    return len(set(grams)) / len(grams)


def self_bleu(generations: Sequence[Tokens], n: int = 4, epsilon: float = 0.1) -> float:
    """Mean BLEU of each generation against all the others as references (Zhu et al., 2018).

    BLEU here is ``nltk``'s ``sentence_bleu`` with uniform weights ``1/n`` over 1..n-grams and
    smoothing method 1 (a precision with no match counts ``epsilon`` matches), which is what
    Holtzman et al. used: clipped n-gram precisions (each n-gram counts at most as often as in
    the reference that has it most), a brevity penalty against the closest reference length
    (the shorter on a tie), and 0 when no unigram matches.
    """
    positive_int(n, "n")
    generations = [list(tokens) for tokens in generations]
    if len(generations) < 2:
        raise ValueError(f"generations must hold at least 2 sequences, got {len(generations)}")

    # For each n-gram, its largest count in any generation and the runner-up from another one:
    # the largest count among the *other* generations is then one of the two.
    counts = [[Counter(_ngrams(tokens, order)) for order in range(1, n + 1)] for tokens in generations]
    top_two: list[dict[tuple, tuple[int, int, int]]] = [{} for _ in range(n)]
    for owner, per_order in enumerate(counts):
        for order_index, counter in enumerate(per_order):
            table = top_two[order_index]
            for gram, count in counter.items():
                best, best_owner, second = table.get(gram, (0, -1, 0))
                table[gram] = (count, owner, best) if count > best else (best, best_owner, max(second, count))

    weight = 1 / n
    lengths = Counter(len(tokens) for tokens in generations)
    distinct_lengths = sorted(lengths)
    scores = []
    for i, tokens in enumerate(generations):
        hyp_len = len(tokens)
        log_precisions = []
        for order_index, counter in enumerate(counts[i]):
            table = top_two[order_index]
            matches = 0
            for gram, count in counter.items():
                best, best_owner, second = table[gram]
                matches += min(count, second if best_owner == i else best)
            total = max(1, sum(counter.values()))
            if order_index == 0 and matches == 0:
                break
            log_precisions.append(math.log((matches or epsilon) / total))
        if len(log_precisions) < n:  # no unigram matched
            scores.append(0.0)
            continue
        ref_len = _closest_other_length(hyp_len, lengths, distinct_lengths)
        penalty = 1.0 if hyp_len > ref_len else (0.0 if hyp_len == 0 else math.exp(1 - ref_len / hyp_len))
        scores.append(penalty * math.exp(math.fsum(weight * log_p for log_p in log_precisions)))
    return sum(scores) / len(scores)


def _closest_other_length(length: int, counts: Counter, distinct_sorted: list[int]) -> int:
    """The length among the other generations closest to ``length``, the shorter one on a tie."""
    if counts[length] >= 2:
        return length
    at = bisect.bisect_left(distinct_sorted, length)
    below = distinct_sorted[at - 1] if at > 0 else None
    above_at = at + 1 if at < len(distinct_sorted) and distinct_sorted[at] == length else at
    above = distinct_sorted[above_at] if above_at < len(distinct_sorted) else None
    if below is None:
        return above
    if above is None or length - below <= above - length:
        return below
    return above


def zipf_coefficient(token_counts: Mapping[Hashable, int] | Iterable[int], max_rank: int | None = 5000) -> float:
    """Zipf's exponent s of a token distribution: frequency ~ rank^(-s).

    The counts are sorted from most to least frequent and the first ``max_rank`` (Holtzman et al.:
    5000; None for all) are fitted by least squares, log(count) against log(rank); s is minus the
    slope. ``token_counts`` is a mapping token -> count (a ``Counter``) or the counts themselves.
    """
    values = token_counts.values() if isinstance(token_counts, Mapping) else token_counts
    counts = sorted((float(c) for c in values), reverse=True)
    if any(c < 0 for c in counts):
        raise ValueError("token_counts must be non-negative")
    counts = [c for c in counts if c > 0][:max_rank]
    if len(counts) < 2:
        raise ValueError(f"token_counts must hold at least 2 positive counts, got {len(counts)}")
    log_rank = np.log(np.arange(1, len(counts) + 1))
    log_count = np.log(np.array(counts))
    slope = np.sum((log_rank - log_rank.mean()) * (log_count - log_count.mean())) / np.sum((log_rank - log_rank.mean()) ** 2)
    return float(-slope)


def perplexity(log_probs: torch.Tensor | np.ndarray | Iterable[float] | Iterable[Iterable[float]]) -> float:
    """``exp(-mean(log_probs))`` over every token: the natural-log probabilities the model gave them.

    Nested sequences (one list per generation) are pooled, so each token weighs the same. For a
    mean negative log-likelihood (a loss) ``nll``, the perplexity is simply ``math.exp(nll)``.
    """
    if isinstance(log_probs, torch.Tensor):
        flat = log_probs.detach().double().flatten().cpu().numpy()
    elif isinstance(log_probs, np.ndarray):
        flat = log_probs.astype(np.float64).ravel()
    else:
        items = list(log_probs)
        nested = [v for item in items for v in (item if isinstance(item, Iterable) else [item])]
        flat = np.array(nested, dtype=np.float64)
    if flat.size == 0:
        raise ValueError("log_probs must not be empty")
    if np.any(flat > 0) or np.any(np.isnan(flat)):
        raise ValueError("log_probs must be log-probabilities (<= 0); for a loss nll use math.exp(nll)")
    return float(np.exp(-flat.mean()))
