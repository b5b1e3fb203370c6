"""Tests for companion.metrics: hand-computed cases, nltk's BLEU as the oracle for Self-BLEU,
a direct transcription of the rule for repetition, and numpy's least squares for Zipf."""

from __future__ import annotations

import math
from collections import Counter

import nltk.translate.bleu_score as nltk_bleu  # noqa: E402  (the oracle must be there, never skipped)
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from companion.metrics import (
    distinct_n,
    ends_in_repetition,
    perplexity,
    repeated_suffix,
    repetition,
    self_bleu,
    zipf_coefficient,
)

# --- repetition ----------------------------------------------------------------------------------

def test_repeated_suffix_hand_cases():
    assert repeated_suffix([9, 1, 2, 3, 1, 2, 3]) == (3, 2)
    assert repeated_suffix([4, 5, 5, 5]) == (1, 3)
    assert repeated_suffix([1, 2, 3]) == (1, 1)
    assert repeated_suffix([]) == (1, 1)
    assert repeated_suffix([1, 2, 2, 1, 2, 2]) == (1, 2)  # n=1 and n=3 both give 2 copies: the shorter wins
    assert repeated_suffix([1, 2, 3, 1, 2, 3], max_n=2) == (1, 1)


def test_ends_in_repetition_follows_the_stated_rule():
    assert ends_in_repetition("the cat sat . the cat sat .".split())
    assert not ends_in_repetition("it was a good good".split())  # a doubled word is normal text
    assert not ends_in_repetition([7] * 50) and ends_in_repetition([7] * 51)  # short phrases need 51 copies
    assert not ends_in_repetition([1, 2] * 50) and ends_in_repetition([1, 2] * 51)
    assert not ends_in_repetition([1, 2, 3, 1, 2, 3, 4])  # the loop must reach the end
    assert repetition([[1, 2, 3, 1, 2, 3], [1, 2, 3, 4], [5] * 60, [1]]) == 0.5


def transcribed_rule(tokens: list[int], max_n: int = 90) -> bool:
    """The rule as Holtzman et al.'s script states it, walking the reversed sequence."""
    rev = tokens[::-1]
    copies_per_n = []
    for n in range(1, max_n + 1):
        copies = 1
        while len(rev[n * copies: n * (copies + 1)]) == n and rev[n * copies: n * (copies + 1)] == rev[:n]:
            copies += 1
        copies_per_n.append(copies)
    best = max(range(max_n), key=lambda i: copies_per_n[i])  # first (shortest) on a tie
    return copies_per_n[best] > 1 and (best + 1 >= 3 or copies_per_n[best] > 50)


@settings(derandomize=True, deadline=None, max_examples=300)
@given(head=st.lists(st.integers(0, 3), max_size=20), phrase=st.lists(st.integers(0, 3), min_size=1, max_size=6),
       copies=st.integers(0, 60), tail=st.lists(st.integers(0, 3), max_size=2))
def test_ends_in_repetition_equals_the_transcribed_rule(head, phrase, copies, tail):
    tokens = head + phrase * copies + tail
    assert ends_in_repetition(tokens, max_n=20) == transcribed_rule(tokens, max_n=20)


# --- distinct-n ----------------------------------------------------------------------------------

def test_distinct_n_hand_cases():
    assert distinct_n([[1, 2, 1, 2]], 1) == 0.5
    assert distinct_n([[1, 2, 1, 2]], 2) == 2 / 3  # (1,2) (2,1) (1,2)
    assert distinct_n([[1, 2], [2, 1], [1, 2, 3]], 2) == 3 / 4  # pooled over generations
    assert distinct_n([[1], [1, 2, 3]], 3) == 1.0  # too-short generations add no n-grams
    with pytest.raises(ValueError, match=r"n must be an int >= 1, got 0"):
        distinct_n([[1, 2]], 0)
    with pytest.raises(ValueError, match=r"generations have no 3-grams"):
        distinct_n([[1, 2]], 3)


# --- Self-BLEU -----------------------------------------------------------------------------------

def nltk_self_bleu(generations: list[list[int]], n: int) -> float:
    smoothing = nltk_bleu.SmoothingFunction().method1
    return sum(
        nltk_bleu.sentence_bleu(generations[:i] + generations[i + 1:], hyp, weights=(1 / n,) * n,
                                smoothing_function=smoothing)
        for i, hyp in enumerate(generations)
    ) / len(generations)


def test_self_bleu_hand_cases():
    # each against the other: unigram precision 3/4, bigram 2/3, equal lengths -> sqrt(1/2)
    assert self_bleu([[1, 2, 3, 4], [1, 2, 3, 5]], n=2) == pytest.approx(math.sqrt(0.5), rel=1e-12)
    assert self_bleu([[1, 2, 3, 4]] * 3) == pytest.approx(1.0)
    assert self_bleu([[1, 2, 3], [4, 5, 6]]) == 0.0
    # shorter hypothesis: brevity penalty exp(1 - 4/2) for [1, 2]; [1, 2, 3, 4] against [1, 2]:
    # precisions 2/4 and 1/3, no penalty (longer than its reference)
    expected = (math.exp(1 - 4 / 2) * 1.0 + math.sqrt(2 / 4 * 1 / 3)) / 2
    assert self_bleu([[1, 2], [1, 2, 3, 4]], n=2) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match=r"generations must hold at least 2 sequences, got 1"):
        self_bleu([[1, 2]])


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(derandomize=True, deadline=None, max_examples=150)
@given(generations=st.lists(st.lists(st.integers(0, 5), max_size=14), min_size=2, max_size=7),
       n=st.integers(1, 5))
def test_self_bleu_equals_nltk(generations, n):
    assert self_bleu(generations, n) == pytest.approx(nltk_self_bleu(generations, n), rel=1e-12, abs=1e-15)


# --- Zipf ----------------------------------------------------------------------------------------

def test_zipf_coefficient_hand_cases():
    assert zipf_coefficient([12, 6, 4, 3]) == pytest.approx(1.0)  # count = 12 / rank
    assert zipf_coefficient(Counter("a" * 12 + "b" * 6 + "c" * 4 + "d" * 3)) == pytest.approx(1.0)  # a Counter
    exact = {f"t{r}": 1000 * r**-1.3 for r in range(1, 50)}
    assert zipf_coefficient(exact) == pytest.approx(1.3)
    assert zipf_coefficient([3, 3, 3]) == pytest.approx(0.0)


def test_zipf_coefficient_equals_numpy_least_squares():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 500, size=300)
    ranked = np.sort(counts)[::-1][:100]
    slope = np.polyfit(np.log(np.arange(1, 101)), np.log(ranked), 1)[0]
    assert zipf_coefficient(counts.tolist(), max_rank=100) == pytest.approx(-slope, rel=1e-10)
    with pytest.raises(ValueError, match=r"token_counts must hold at least 2 positive counts, got 1"):
        zipf_coefficient([5, 0])
    with pytest.raises(ValueError, match=r"token_counts must be non-negative"):
        zipf_coefficient([5, -1])


# --- perplexity ----------------------------------------------------------------------------------

def test_perplexity_hand_cases():
    assert perplexity([math.log(0.5)] * 4) == pytest.approx(2.0)
    assert perplexity(torch.full((3, 5), -math.log(50.0))) == pytest.approx(50.0)  # uniform over 50 tokens
    # pooled per token: (log 1/2 + log 1/2 + log 1/16) / 3 = -log 4 -> 4
    assert perplexity([[math.log(0.5)], [math.log(0.5), math.log(1 / 16)]]) == pytest.approx(4.0)
    assert perplexity(np.zeros(7)) == 1.0
    with pytest.raises(ValueError, match=r"log_probs must be log-probabilities \(<= 0\)"):
        perplexity([2.3])  # a loss passed by mistake
    with pytest.raises(ValueError, match=r"log_probs must not be empty"):
        perplexity([])
