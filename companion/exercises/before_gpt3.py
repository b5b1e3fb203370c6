"""Self-checks for the exercises of the chapter "Before GPT-3" (book/gpt3/before-gpt3.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed with `companion.zero_shot`, not typed in.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from companion.exercises._feedback import as_function, as_int, as_number, close, report
from companion.zero_shot import binomial_tail, sign_test

SIMILARITY_ORDERINGS = 2  # exercise 1: GPT-1 runs a similarity pair in both orders
DISAGREE, CUE_WINS = 20, 15  # exercise 2: items where cue and no cue disagree, and the cue's share
ITEMS, OPTIONS, LEVEL = 200, 4, 0.01  # exercise 3: how many hits beat chance at this level


def check_similarity_sequences(answer: int) -> bool:
    """Exercise 1: how many sequences GPT-1 runs through the transformer for one similarity pair."""
    value = as_int(answer, "answer")
    return report(value == SIMILARITY_ORDERINGS,
                  "Right: a similarity pair has no natural order, so GPT-1 runs both orders (A $ B and B $ A) "
                  "and adds the two final states before the linear layer.",
                  f"Not quite ({value}). Hint: is 'A is similar to B' the same question as 'B is similar to A'?")


def check_sign_test_p(answer: float) -> bool:
    """Exercise 2: the one-sided sign-test p-value when the cue wins 15 of the 20 disagreements."""
    value = as_number(answer, "answer")
    expected = sign_test(CUE_WINS, DISAGREE - CUE_WINS)
    return report(close(value, expected, 0.01),
                  f"Right: P(X >= 15) for X ~ Binomial(20, 1/2) = {expected:.4f}: rare under 'either way is "
                  "equally likely', so the cue's advantage is beyond chance at the 5 % level.",
                  f"Not quite ({value:.4g}). Hint: only the 20 disagreements count; add C(20, k) / 2^20 for "
                  "k = 15, ..., 20.")


def hits_needed(n: int = ITEMS, options: int = OPTIONS, level: float = LEVEL) -> int:
    """The fewest hits out of ``n`` that guessing among ``options`` reaches with probability below ``level``."""
    return next(k for k in range(n + 1) if binomial_tail(k, n, 1 / options) < level)


def check_hits_needed(answer: int) -> bool:
    """Exercise 3: the fewest right answers out of 200 four-option items that beat guessing at p < 0.01."""
    value = as_int(answer, "answer")
    expected = hits_needed()
    return report(value == expected,
                  f"Right: {expected} of {ITEMS} ({expected / ITEMS:.1%}); guessing expects {ITEMS // OPTIONS}, "
                  "and the margin it needs shrinks, relative to n, as the number of items grows.",
                  f"Not quite ({value}). Hint: the smallest k with P(X >= k) < {LEVEL} for X ~ Binomial("
                  f"{ITEMS}, 1/{OPTIONS}); `zero_shot.binomial_tail(k, n, p)` gives the tail.")


def check_sign_test(fn: Callable[[int, int], float]) -> bool:
    """Exercise 4: the reader's ``fn(wins, losses)``, the one-sided exact sign-test p-value, on fresh cases."""
    fn = as_function(fn, "fn(wins, losses)")
    rng = random.Random()
    cases = [(0, 0), (3, 0), (0, 3), (5, 5), (9, 2)] + [(rng.randint(0, 40), rng.randint(0, 40)) for _ in range(6)]
    for wins, losses in cases:
        got, expected = fn(wins, losses), sign_test(wins, losses)
        if not close(float(got), expected, 1e-6, 1e-12):
            return report(False, "", f"fn({wins}, {losses}) returned {got}, expected {expected:.6g}. Hint: "
                          "the p-value is P(X >= wins) for X ~ Binomial(wins + losses, 1/2), wins itself "
                          "included, and 1 when there are no disagreements.")
    return report(True, f"Right on all {len(cases)} cases, ties and empty ones included.", "")
