"""Self-checks for the exercises of the chapter "Why generated text degenerates" (book/decoding/degeneration.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed by `companion.metrics` itself, not typed in, so a check can never
disagree with the metrics the chapter reports.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import torch

from companion import metrics
from companion.exercises._feedback import as_function, as_number, close, report
from companion.sampling import no_repeat_ngram_filter

# Exercise 1: which of these end in a repetition loop by the chapter's rule? (tokens: the words)
LOOP_SEQUENCES = (
    "I don't know . I don't know . I don't know .",
    "the file is closed when the block ends",
    "and so on and on and on",
    "no no no no no no no no no no",
    "Return a string . Return a string . Return a",
    "a b c a b c a b c x",
)

# Exercise 2: distinct-2 of these three generations, pooled.
DISTINCT_SEQUENCES = ("the cat sat on the mat", "the cat ran to the mat", "I don't know . I don't know .")

# Exercise 3: two token distributions as counts, most frequent first.
ZIPF_COUNTS = {"A": (3600, 900, 400, 225, 144, 100), "B": (600, 300, 200, 150, 120, 100)}

# Exercise 4: the probabilities a model gave the tokens of two generations.
PERPLEXITY_PROBS = ((0.5, 0.5, 0.5, 0.5), (0.25, 0.125))


def tokens_of(text: str) -> list[str]:
    """The tokens of an exercise sequence: its space-separated words."""
    return text.split()


# ------------------------------------------------------------------------------------------------ exercise 1
def loop_answers() -> list[bool]:
    """The answer key of exercise 1, from `companion.metrics.ends_in_repetition`."""
    return [metrics.ends_in_repetition(tokens_of(text)) for text in LOOP_SEQUENCES]


def check_loops(answer: Sequence[bool]) -> bool:
    """Exercise 1: one True/False per sequence of `LOOP_SEQUENCES`: does it end in a repetition loop?"""
    if isinstance(answer, (str, bytes)) or not isinstance(answer, Sequence) \
            or not all(isinstance(a, bool) for a in answer):
        raise TypeError("answer must be a list of True/False, one per sequence of LOOP_SEQUENCES")
    expected = loop_answers()
    if len(answer) != len(expected):
        return report(False, "", f"Not quite: give {len(expected)} answers, one per sequence; you gave {len(answer)}.")
    wrong = [i for i, (a, e) in enumerate(zip(answer, expected, strict=True)) if a != e]
    if not wrong:
        return report(True, "Right. A loop counts when the phrase that repeats most at the very end is at least 3 "
                            "tokens long and occurs twice or more; a shorter phrase needs 51 copies. The cut "
                            "phrase 'Return a string . Return a' still loops: the repeating unit "
                            "'string . Return a' ends exactly at the end.", "")
    i = wrong[0]
    n, copies = metrics.repeated_suffix(tokens_of(LOOP_SEQUENCES[i]))
    return report(False, "", f"Not quite: sequence {i + 1} ({LOOP_SEQUENCES[i]!r}) is wrong. Hint: find the n "
                             f"whose last n tokens repeat the most times back to back at the very end (here n = "
                             f"{n}, {copies} copies), then apply the rule: n >= 3 and at least 2 copies, or 51 "
                             "copies of a shorter phrase.")


# ------------------------------------------------------------------------------------------------ exercise 2
def check_distinct_2(answer: float) -> bool:
    """Exercise 2: distinct-2 of `DISTINCT_SEQUENCES` (words as tokens), pooled over the three."""
    value = as_number(answer, "answer")
    generations = [tokens_of(text) for text in DISTINCT_SEQUENCES]
    expected = metrics.distinct_n(generations, 2)
    grams = [list(zip(g[:-1], g[1:], strict=True)) for g in generations]
    total, distinct = sum(map(len, grams)), len({gram for g in grams for gram in g})
    per_sequence = sum(len(set(g)) / len(g) for g in grams) / len(grams)
    if close(value, expected):
        return report(True, f"Right: {distinct} distinct bigrams out of {total}, {expected:.4f}. The loop "
                            "repeats its bigrams, and the first two share 'the cat' and 'the mat'.", "")
    if close(value, per_sequence):
        return report(False, "", f"Not quite: {value:.4f} is the mean of each sequence's own distinct-2. Pool the "
                                 "bigrams of all three first, then count the distinct ones among them.")
    return report(False, "", f"Not quite ({value:.4f}). Hint: list the bigrams of each sequence (a sequence of "
                             "k words has k - 1), pool them, and divide the number of distinct ones by the total.")


# ------------------------------------------------------------------------------------------------ exercise 3
def check_zipf(coefficient_a: float, coefficient_b: float, fewer_words: str) -> bool:
    """Exercise 3: the Zipf coefficients of `ZIPF_COUNTS` "A" and "B", and which leans on fewer words."""
    a, b = as_number(coefficient_a, "coefficient_a"), as_number(coefficient_b, "coefficient_b")
    if fewer_words not in ("A", "B"):
        raise TypeError(f"fewer_words must be 'A' or 'B', got {fewer_words!r}")
    s = {name: metrics.zipf_coefficient(counts) for name, counts in ZIPF_COUNTS.items()}
    steeper = max(s, key=s.get)
    if close(-a, s["A"]) and close(-b, s["B"]):
        return report(False, "", "Not quite: the signs. The slope of log(count) against log(rank) is negative; "
                                 "the Zipf coefficient is minus the slope, so it is positive.")
    if not (close(a, s["A"]) and close(b, s["B"])):
        return report(False, "", f"Not quite (A: {a:g}, B: {b:g}). Hint: count ~ C / rank^s; compare the first "
                                 "count with the second or the fourth (ranks 1, 2, 4) and solve for s.")
    return report(fewer_words == steeper,
                  f"Right: A falls as 1/rank^{s['A']:g} and B as 1/rank^{s['B']:g}. The steeper fall of {steeper} "
                  "puts more of its tokens on its top ranks, like a greedy decoder that reuses a few words.",
                  f"Not quite: the coefficients are right, but a larger coefficient means the counts fall faster "
                  f"with rank, so the text leans on fewer words: that is {steeper}.")


# ------------------------------------------------------------------------------------------------ exercise 4
def check_perplexity(answer: float) -> bool:
    """Exercise 4: the perplexity of the two generations of `PERPLEXITY_PROBS`, every token weighing the same."""
    value = as_number(answer, "answer")
    expected = metrics.perplexity([[math.log(p) for p in probs] for probs in PERPLEXITY_PROBS])
    mean_of_each = sum(metrics.perplexity([math.log(p) for p in probs]) for probs in PERPLEXITY_PROBS) / 2
    if close(value, expected):
        n = sum(map(len, PERPLEXITY_PROBS))
        return report(True, f"Right: the mean negative log-probability of the {n} tokens is 1.5 ln 2, so the "
                            f"perplexity is 2^1.5 = {expected:.4f}: the model was as unsure as a fair choice "
                            "among about 2.8 tokens at each step.", "")
    if close(value, mean_of_each):
        return report(False, "", f"Not quite: {value:.4f} averages the two generations' perplexities. Pool the "
                                 "tokens: average the log-probabilities of all six, then exponentiate.")
    return report(False, "", f"Not quite ({value:.4f}). Hint: perplexity = exp(-mean of ln p) over all tokens "
                             "together; with probabilities that are powers of 2 you can work in bits.")


# ------------------------------------------------------------------------------------------------ exercise 5
def banned_answer(previous: Sequence[int], n: int) -> set[int]:
    """The answer key of exercise 5, from `companion.sampling.no_repeat_ngram_filter`."""
    vocab = max(previous, default=0) + 1
    logits = torch.zeros(1, vocab)
    history = torch.tensor([list(previous)], dtype=torch.long).reshape(1, -1)
    return set(torch.isinf(no_repeat_ngram_filter(logits, history, n))[0].nonzero().flatten().tolist())


def _ngram_cases(rng: random.Random) -> list[tuple[list[int], int]]:
    cases = [([5, 6, 7, 5, 6], 3), ([5, 6, 7, 5, 6], 1), ([1, 2], 3), ([1, 2, 1, 2], 2), ([4, 4, 4], 2),
             ([1, 2, 3, 1, 2, 3], 4), ([9, 8, 9, 8, 7, 9, 8], 3), ([3], 1)]
    for _ in range(40):  # fresh histories with few distinct tokens, so n-grams recur
        previous = [rng.randrange(4) for _ in range(rng.randrange(1, 16))]
        cases.append((previous, rng.randrange(1, 5)))
    return cases


def check_banned_next(banned_next: Callable[[list[int], int], set[int]]) -> bool:
    """Exercise 5: the reader's ``banned_next(previous, n)`` against `companion.sampling.no_repeat_ngram_filter`.

    Runs on fixed edge cases and on random histories drawn afresh at every call.
    """
    as_function(banned_next, "banned_next(previous, n)")
    for previous, n in _ngram_cases(random.Random()):
        expected = banned_answer(previous, n)
        got = banned_next(list(previous), n)
        try:
            got = set(got)
        except TypeError:
            return report(False, "", f"Not quite: return a set of token ids, got {type(got).__name__}.")
        if got != expected:
            return report(False, "", f"Not quite: for previous={previous} and n={n} you ban {sorted(got)}, the "
                                     f"rule bans {sorted(expected)}. Hint: compare the last n - 1 tokens with "
                                     "every earlier window of n - 1 tokens, and ban the token that follows a match.")
    return report(True, "Right: your ban equals companion.sampling.no_repeat_ngram_filter on the edge cases "
                        "and on fresh random histories, n from 1 to 4.", "")
