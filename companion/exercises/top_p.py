"""Self-checks for the exercises of the chapter "Top-p (nucleus) sampling" (book/decoding/top-p.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed with `companion.sampling`'s filters, not typed in.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable

import torch

from companion.exercises._feedback import as_function, as_int, as_number, close, report
from companion.sampling import min_p_filter, temperature_scale, top_p_filter

# Exercises 1-3: one next-token distribution, written as probabilities.
EXERCISE_PROBS = {"the": 0.42, "a": 0.20, "this": 0.15, "our": 0.10, "its": 0.06, "my": 0.04, "an": 0.03}
EXERCISE_P = 0.9
EXERCISE_WORD = "a"  # exercise 2: its probability after the nucleus is renormalised
EXERCISE_TEMPERATURE = 0.5  # exercise 3: applied before top-p


def _logits(probs: dict[str, float]) -> torch.Tensor:
    return torch.tensor([math.log(p) for p in probs.values()], dtype=torch.float64)


def nucleus(probs: dict[str, float], p: float, temperature: float = 1.0) -> list[str]:
    """The words `top_p_filter` keeps (after `temperature_scale`), in the order of `probs`."""
    kept = top_p_filter(temperature_scale(_logits(probs), temperature), p).isfinite().tolist()
    return [word for word, keep in zip(probs, kept, strict=True) if keep]


def _as_words(answer: object) -> set[str]:
    if isinstance(answer, str) or not isinstance(answer, Iterable):
        raise TypeError("answer must be a collection of words such as {'the', 'a'}")
    words = list(answer)
    if not all(isinstance(w, str) for w in words):
        raise TypeError(f"answer must be a collection of words such as {{'the', 'a'}}, got {words!r}")
    return set(words)


def check_nucleus(answer: Iterable[str]) -> bool:
    """Exercise 1: the words in the top-p set of `EXERCISE_PROBS` for p = `EXERCISE_P`."""
    given = _as_words(answer)
    expected = nucleus(EXERCISE_PROBS, EXERCISE_P)
    mass = sum(EXERCISE_PROBS[w] for w in expected)
    if given == set(expected):
        return report(True, f"Right: {len(expected)} words, {', '.join(expected)}, holding {mass:.2f} of the "
                             f"probability: the shortest prefix of the sorted list to reach {EXERCISE_P}.", "")
    if given < set(expected):
        hint = (f"you stop too early: your words hold {sum(EXERCISE_PROBS.get(w, 0) for w in given):.2f}, "
                f"which is less than p = {EXERCISE_P}. The nucleus includes the word that crosses p.")
    else:
        hint = "sort the words by probability and add them up; stop at the first word that brings the sum to p."
    return report(False, "", f"Not quite: {hint}")


def check_renormalised(answer: float) -> bool:
    """Exercise 2: the probability that top-p sampling (p = `EXERCISE_P`) draws `EXERCISE_WORD`."""
    answer = as_number(answer, "answer")
    filtered = top_p_filter(_logits(EXERCISE_PROBS), EXERCISE_P).softmax(-1)
    expected = filtered[list(EXERCISE_PROBS).index(EXERCISE_WORD)].item()
    kept_mass = sum(EXERCISE_PROBS[w] for w in nucleus(EXERCISE_PROBS, EXERCISE_P))
    return report(
        close(answer, expected, rel=0, abs_tol=1e-3),
        f"Right: {EXERCISE_PROBS[EXERCISE_WORD]} / {kept_mass:.2f} = {expected:.4f}. Every word in the nucleus "
        f"gains the same factor 1/{kept_mass:.2f}; the others get 0.",
        f"Not quite ({answer:.4f}). Hint: after the cut, the kept probabilities are divided by their sum so "
        "they add up to 1 again.",
    )


def check_temperature_nucleus(answer: int) -> bool:
    """Exercise 3: how many words the nucleus holds when `EXERCISE_TEMPERATURE` is applied before top-p."""
    as_int(answer, "answer")
    before = nucleus(EXERCISE_PROBS, EXERCISE_P)
    after = nucleus(EXERCISE_PROBS, EXERCISE_P, EXERCISE_TEMPERATURE)
    return report(
        answer == len(after),
        f"Right: {len(after)} words ({', '.join(after)}), against {len(before)} at temperature 1. Dividing the "
        f"logits by {EXERCISE_TEMPERATURE} raises every probability to the power {1 / EXERCISE_TEMPERATURE:g} "
        "before renormalising, so the head takes "
        "more of the mass and p is reached sooner.",
        f"Not quite (you said {answer}). Hint: logits / {EXERCISE_TEMPERATURE} means each probability is raised "
        f"to the power {1 / EXERCISE_TEMPERATURE:g} and then renormalised; recompute the cumulative sum.",
    )


def _filter_cases() -> list[tuple[torch.Tensor, float]]:
    generator = torch.Generator().manual_seed(0)
    cases = [(_logits(EXERCISE_PROBS).float()[None], EXERCISE_P)]
    for i, p in enumerate([0.05, 0.3, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0]):
        scale = [0.5, 1.0, 3.0][i % 3]  # flat and peaked rows
        cases.append((scale * torch.randn(3, 50 + 10 * i, generator=generator), p))
    return cases


def _compare_filters(my_filter: Callable, reference: Callable, cases: list[tuple[torch.Tensor, float]],
                     knob: str, size_hint: str) -> str | None:
    """None if ``my_filter`` keeps what ``reference`` keeps on every case (kept logits unchanged), else a hint."""
    for logits, value in cases:
        expected = reference(logits, value)
        got = my_filter(logits.clone(), value)
        if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
            return (f"Not quite: return a tensor of the same shape as logits {tuple(logits.shape)}, with -inf "
                    "where a token is cut.")
        kept, expected_kept = got.isfinite(), expected.isfinite()
        if not torch.equal(kept, expected_kept):
            diff = (kept.sum(-1) - expected_kept.sum(-1)).tolist()
            return f"Not quite: with {knob}={value} you keep {diff} tokens more (+) or fewer (-) per row. {size_hint}"
        if not torch.equal(got[kept], logits[kept]):
            return "Not quite: the kept tokens' logits must stay unchanged (the softmax renormalises them later)."
    return None


def check_top_p_filter(my_top_p: Callable[[torch.Tensor, float], torch.Tensor]) -> bool:
    """Exercise 4: ``my_top_p(logits, p)`` for logits ``(batch, vocab)`` returns them with the non-nucleus -inf."""
    as_function(my_top_p, "my_top_p(logits, p)")
    hint = _compare_filters(my_top_p, top_p_filter, _filter_cases(), "p",
                            "Hint: sort descending, take the cumulative sum of the softmax, and keep a token if the "
                            "tokens before it hold less than p (so the one crossing p stays); then map the mask back "
                            "to the vocabulary order.")
    return report(hint is None, "Right: your filter keeps exactly the nucleus that companion.sampling.top_p_filter "
                                "keeps, on flat and peaked random logits and p from 0.05 to 1.", hint or "")


def _min_p_cases() -> list[tuple[torch.Tensor, float]]:
    """Edge cases, then random flat and peaked logits drawn afresh at every call."""
    cases = [(_logits(EXERCISE_PROBS).float()[None], 0.1), (_logits(EXERCISE_PROBS).float()[None], 0.5),
             (torch.zeros(2, 6), 0.5), (torch.tensor([[4.0, 0.0, 0.0, -1.0]]), 0.0)]
    generator = torch.Generator().manual_seed(random.randrange(2**31))
    for i, min_p in enumerate([0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0]):
        scale = [0.5, 1.0, 3.0, 6.0][i % 4]  # flat and peaked rows
        cases.append((scale * torch.randn(3, 40 + 10 * i, generator=generator), min_p))
    return cases


def check_min_p_filter(my_min_p: Callable[[torch.Tensor, float], torch.Tensor]) -> bool:
    """Exercise 5: ``my_min_p(logits, min_p)`` for logits ``(batch, vocab)`` keeps the tokens at least ``min_p``
    times as likely as the most likely one, and sets the others to -inf (compared with
    `companion.sampling.min_p_filter`)."""
    as_function(my_min_p, "my_min_p(logits, min_p)")
    hint = _compare_filters(my_min_p, min_p_filter, _min_p_cases(), "min_p",
                            "Hint: the cut is a probability, min_p times the probability of the most likely token "
                            "of the row (softmax first, then compare).")
    return report(hint is None, "Right: your filter keeps exactly what companion.sampling.min_p_filter keeps, on "
                                "flat and peaked random logits and min_p from 0 to 1.", hint or "")
