"""Self-checks for the exercises of the chapter "Downstream tasks" (book/transfer/downstream-tasks.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed with `companion.transfer_data` and `companion.transfer`.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

import torch

from companion import transfer as tr
from companion import transfer_data as td
from companion.exercises._feedback import as_number, close, report

# Exercise 1: two docstrings, are they near copies?
EXERCISE_A = "Return the number of items in the queue. This is not reliable when other threads are active."
EXERCISE_B = "Return the number of items in the deque. This is not reliable when other threads are active."


def check_jaccard(answer: float) -> bool:
    """Exercise 1: the Jaccard similarity of the word 5-gram shingles of EXERCISE_A and EXERCISE_B."""
    value = as_number(answer, "answer")
    a, b = td.shingles(EXERCISE_A), td.shingles(EXERCISE_B)
    expected = td.jaccard(a, b)
    right = (f"Right: {len(a & b)} shared shingles out of {len(a | b)}, {expected:.3f}; below 0.8, so the two "
             "may sit on opposite sides of the split, although a reader would call them copies.")
    return report(close(value, expected, 1e-2), right,
                  f"Not quite: one changed word spoils every 5-gram that contains it. Count the {len(a)} "
                  "shingles of each text (lowercased), then shared / all distinct.")


def _random_case(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
    batch, time, width = rng.randint(1, 4), rng.randint(2, 7), rng.randint(1, 5)
    states = torch.randn(batch, time, width, generator=torch.Generator().manual_seed(rng.randrange(10**6)))
    lengths = [rng.randint(1, time) for _ in range(batch)]
    mask = torch.tensor([[t < n for t in range(time)] for n in lengths])
    return states, mask


def check_mean_pool(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Exercise 2: ``fn(states, mask)`` (B, T, C), (B, T) bool -> (B, C), the mean over real tokens only."""
    rng = random.Random(2024)
    for _ in range(20):
        states, mask = _random_case(rng)
        got = fn(states.clone(), mask.clone())
        expected = tr.pool(states, mask)
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return report(False, "", f"Not quite: for states {tuple(states.shape)} the result must have shape "
                                     f"{tuple(expected.shape)}, got {shape}.")
        if not torch.allclose(got.float(), expected, atol=1e-5):
            plain = states.mean(1)
            hint = ("your function averages over the padding too: divide the masked sum by the number of real "
                    "tokens of each row" if torch.allclose(got.float(), plain, atol=1e-5)
                    else "sum the states where mask is True and divide by mask.sum(1) for each row")
            return report(False, "", f"Not quite: {hint}.")
    return report(True, "Right: padding no longer changes a text's feature, so a text gets the same feature in "
                        "any batch.", "")


def _random_docstring(rng: random.Random) -> tuple[str, list[str]]:
    words = ["path", "mode", "key", "value", "name", "the", "a", "of", "default", "return", "paths", "keyword"]
    params = rng.sample(["path", "mode", "key", "value", "name", "default"], rng.randint(1, 3))
    chunks = []
    for _ in range(rng.randint(4, 14)):
        word = rng.choice(words)
        chunks.append(word.capitalize() if rng.random() < 0.1 else word)
        chunks.append(rng.choice([" ", " ", ", ", ". ", " (", ") ", "*", "``", "_x "]))
    text = "".join(chunks) + rng.choice(string.ascii_letters)
    return text, params


def check_tag_params(fn: Callable[[str, list[str]], list[tuple[str, int]]]) -> bool:
    """Exercise 3: ``fn(text, params)`` -> [(word, 1 if it names a parameter else 0), ...] for every word
    (a run of letters, digits and underscores starting with a letter or underscore), in order."""
    rng = random.Random(7)
    for _ in range(30):
        text, params = _random_docstring(rng)
        tagged = td.tag_params(text, params)
        expected = [(text[a:b], label) for (a, b), label in zip(tagged.spans, tagged.labels, strict=True)]
        got = fn(text, list(params))
        if [tuple(pair) for pair in got] != expected:
            return report(False, "", f"Not quite: for {text!r} with parameters {params} the tags are {expected}, "
                                     f"got {got}. A word matches a parameter only as a whole word, case and all.")
    return report(True, "Right: the labels come from the signature, so nobody had to tag a word by hand.", "")
