"""Self-checks for the exercises of the chapter "In-context learning" (book/gpt3/in-context-learning.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed with `companion.icl`, not typed in.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._feedback import as_function, as_int, as_number, close, report
from companion.icl_tasks import DESCRIPTIONS, MAX_LETTERS, SEPARATOR

# Exercise 1: the longest 10-shot prompt, with the longest description, plus its answer and newline.
EXERCISE_SHOTS = 10
# Exercise 2: the regression prompts' prior and noise.
EXERCISE_NOISE = 0.5


def longest_prompt_bytes(shots: int = EXERCISE_SHOTS) -> int:
    """Bytes of the longest ``shots``-shot word-task prompt with its answer (`companion.icl.longest_prompt`)."""
    from companion.icl_tasks import longest_prompt

    return longest_prompt(shots)


def check_longest_prompt(answer: int) -> bool:
    """Exercise 1: how many bytes the longest 10-shot prompt, answer and final newline take."""
    answer = as_int(answer, "answer")
    expected = longest_prompt_bytes()
    demo = (2 * MAX_LETTERS - 1) + len(SEPARATOR) + MAX_LETTERS + 1
    head = max(len(d) for d in DESCRIPTIONS.values()) + 1
    return report(
        answer == expected,
        f"Right: {head} (description line) + {EXERCISE_SHOTS} x {demo} (demonstrations of a {MAX_LETTERS}-letter "
        f"word with a symbol between letters) + {2 * MAX_LETTERS - 1 + len(SEPARATOR)} (the query) + "
        f"{MAX_LETTERS + 1} (answer and newline) = {expected} bytes, inside the model's 512.",
        f"Not quite (you said {answer}). Hint: the longest question is random insertion of a {MAX_LETTERS}-letter "
        f"word ({MAX_LETTERS} letters and {MAX_LETTERS - 1} symbols); count the ' = ' and the newlines too.",
    )


def check_ridge_lambda(answer: float) -> bool:
    """Exercise 2: the ridge penalty that gives the posterior mean for w ~ N(0, I) and the chapter's noise."""
    answer = as_number(answer, "answer")
    expected = EXERCISE_NOISE ** 2
    return report(
        close(answer, expected, rel=1e-6),
        f"Right: lambda = noise^2 / prior variance = {EXERCISE_NOISE}^2 / 1 = {expected}. The posterior mean of "
        "w is (X^T X + lambda I)^-1 X^T y: ridge regression.",
        f"Not quite (you said {answer}). Hint: write the log posterior, -|y - Xw|^2 / (2 noise^2) - |w|^2 / 2, "
        "multiply by 2 noise^2 and compare with the ridge objective |y - Xw|^2 + lambda |w|^2.",
    )


def prefix_matching(pattern: torch.Tensor) -> float:
    """The answer key of exercise 3: mean attention from position L + j to position j + 1 (rows L .. 2L - 1)."""
    length = pattern.shape[0] // 2
    rows = torch.arange(length, 2 * length)
    return pattern[rows, rows - length + 1].mean().item()


def _patterns() -> list[torch.Tensor]:
    """Causal attention patterns of one head on a repeated sequence: random, induction-like, previous-token."""
    generator = torch.Generator().manual_seed(0)
    cases = []
    for length in (4, 7, 12):
        T = 2 * length
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        scores = torch.randn(T, T, generator=generator)
        cases.append(scores.masked_fill(~causal, float("-inf")).softmax(-1))
        induction = torch.zeros(T, T)
        induction[torch.arange(length), torch.arange(length)] = 1.0
        induction[torch.arange(length, T), torch.arange(1, length + 1)] = 1.0
        cases.append(0.7 * induction + 0.3 * cases[-1])
        previous = torch.zeros(T, T)
        previous[0, 0] = 1.0
        previous[torch.arange(1, T), torch.arange(T - 1)] = 1.0
        cases.append(previous)
    return cases


def check_prefix_matching(my_score: Callable[[torch.Tensor], float]) -> bool:
    """Exercise 3: ``my_score(pattern)`` for one head's (2L, 2L) attention on a sequence followed by itself."""
    as_function(my_score, "my_score(pattern)")
    for pattern in _patterns():
        expected = prefix_matching(pattern)
        got = my_score(pattern.clone())
        got = float(got.item() if isinstance(got, torch.Tensor) else as_number(got, "my_score(pattern)"))
        if abs(got - expected) > 1e-5:
            length = pattern.shape[0] // 2
            return report(False, "", f"Not quite: for L = {length} you gave {got:.4f}, expected {expected:.4f}. "
                                      "Hint: position L + j holds the same token as position j; an induction "
                                      "head looks at j + 1, the token that came next. Average over j = 0 .. L - 1.")
    return report(True, "Right: your score agrees with the package's on random, induction-like and "
                         "previous-token heads (a previous-token head scores 0: it looks one step back, "
                         "not at what followed the earlier occurrence).", "")
