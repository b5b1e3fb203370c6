"""Self-checks for the exercises of the chapter "Locality-sensitive hashing" (book/reformer/lsh.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed here from the formulas, not typed in, so the checks say why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from companion.device import make_generator
from companion.exercises._feedback import as_function, as_int, as_number, close, report
from companion.lsh import hash_vectors, random_rotations

# Two buckets, two vectors 60 degrees apart (the chapter's first example; also used by exercise 3).
COLLISION_ANGLE_DEGREES = 60.0

# Exercise 1: a 2-D vector, a 2 x 2 "rotation" R, four buckets (argmax over [xR, -xR]).
BUCKET_VECTOR = (-1.0, 2.0)
BUCKET_ROTATION = ((1.0, 1.0), (-1.0, 1.0))  # rows: R[0, :], R[1, :]

# Exercise 2: AND then OR. Vectors 60 degrees apart, a factorised hash (2, 2) (two hyperplanes that must both
# agree), three rounds.
AND_OR_FACTORS = (2, 2)
AND_OR_ROUNDS = 3

# Exercise 3: how many rounds until two vectors 60 degrees apart share a bucket with probability >= 0.99.
TARGET_PROBABILITY = 0.99


def two_bucket_collision(angle_radians: float) -> float:
    """1 - theta / pi: a random hyperplane separates two vectors with probability theta / pi."""
    return 1.0 - angle_radians / math.pi


def bucket_of(vector: tuple[float, ...], rotation: tuple[tuple[float, ...], ...]) -> int:
    """argmax over [xR, -xR]: the bucket index the Reformer's hash gives."""
    columns = len(rotation[0])
    projected = [sum(vector[i] * rotation[i][j] for i in range(len(vector))) for j in range(columns)]
    scores = projected + [-p for p in projected]
    return max(range(len(scores)), key=scores.__getitem__)


def check_bucket(answer: int) -> bool:
    """Exercise 1: the bucket of x = (-1, 2) under R = [[1, 1], [-1, 1]] with 4 buckets."""
    as_int(answer, "answer")
    expected = bucket_of(BUCKET_VECTOR, BUCKET_ROTATION)
    projected = [sum(BUCKET_VECTOR[i] * BUCKET_ROTATION[i][j] for i in range(2)) for j in range(2)]
    return report(
        answer == expected,
        f"Right: xR = ({projected[0]:g}, {projected[1]:g}), so [xR, -xR] = "
        f"({projected[0]:g}, {projected[1]:g}, {-projected[0]:g}, {-projected[1]:g}) and its largest entry "
        f"is at index {expected}.",
        f"Not quite (you said {answer}). Hint: compute xR (a row vector times the 2 x 2 matrix), append its "
        "negation, and return the index (0 to 3) of the largest of the four numbers.",
    )


def at_least_once(p: float, rounds: int) -> float:
    """Probability of at least one collision in independent rounds: 1 - (1 - p)^rounds."""
    return 1.0 - (1.0 - p) ** rounds


def check_and_or(answer: float) -> bool:
    """Exercise 2: vectors 60 degrees apart, n_buckets=(2, 2), 3 rounds: share a bucket in some round."""
    value = as_number(answer, "answer")
    p = two_bucket_collision(math.radians(COLLISION_ANGLE_DEGREES)) ** len(AND_OR_FACTORS)
    expected = at_least_once(p, AND_OR_ROUNDS)
    return report(
        close(value, expected, rel=0, abs_tol=1e-3),
        f"Right: both hyperplanes agree with p = (2/3)^2 = {p:.4f} (AND), and at least one of "
        f"{AND_OR_ROUNDS} rounds succeeds with 1 - (1 - p)^{AND_OR_ROUNDS} = {expected:.4f} (OR).",
        f"Not quite ({value:.4f}). Hint: inside one round the two factors must both collide (multiply their "
        "probabilities); across rounds one success is enough (one minus the chance that all rounds fail).",
    )


def rounds_needed(p: float, target: float) -> int:
    """The smallest n with 1 - (1 - p)^n >= target."""
    n = 1
    while at_least_once(p, n) < target:
        n += 1
    return n


def check_rounds_needed(answer: int) -> bool:
    """Exercise 3: fewest rounds so vectors 60 degrees apart (2 buckets) collide at least once w.p. >= 0.99."""
    as_int(answer, "answer")
    p = two_bucket_collision(math.radians(COLLISION_ANGLE_DEGREES))
    expected = rounds_needed(p, TARGET_PROBABILITY)
    return report(
        answer == expected,
        f"Right: {expected} rounds give {at_least_once(p, expected):.4f}, while {expected - 1} give only "
        f"{at_least_once(p, expected - 1):.4f}.",
        f"Not quite (you said {answer}). Hint: solve (1 - p)^n <= 1 - {TARGET_PROBABILITY} for the smallest "
        "whole n, with p = 2/3.",
    )


HashFunction = Callable[[torch.Tensor, torch.Tensor, int | Sequence[int]], torch.Tensor]


def _hash_cases() -> list[tuple[torch.Tensor, torch.Tensor, int | tuple[int, ...]]]:
    """Fresh inputs (x, rotations, n_buckets): flat and factorised hashes, one to five rounds."""
    cases = []
    for i, (n_buckets, n_hashes, dim) in enumerate([(2, 1, 3), (6, 2, 5), (8, 3, 16), (32, 1, 8), ((4, 6), 2, 7),
                                                    ((2, 4, 8), 5, 12)]):
        generator = make_generator(300 + i)
        x = torch.randn(20 + 7 * i, dim, generator=generator)
        cases.append((x, random_rotations(dim, n_buckets, n_hashes, generator=generator), n_buckets))
    return cases


def check_hash_vectors(my_hash_vectors: HashFunction) -> bool:
    """Exercise 4: ``my_hash_vectors(x, rotations, n_buckets)`` gives the ``(n_hashes, L)`` buckets of x.

    ``x`` is ``(L, d)``, ``rotations`` ``(n_hashes, d, sum(b // 2 for b in factors))``, ``n_buckets`` an even int
    or a tuple of them (factor k uses the next ``b_k / 2`` columns; the bucket is ``i_1 + b_1 i_2 + b_1 b_2 i_3``).
    Compared with `companion.lsh.hash_vectors` on fresh cases.
    """
    as_function(my_hash_vectors, "my_hash_vectors(x, rotations, n_buckets)")
    cases = _hash_cases()
    for x, rotations, n_buckets in cases:
        expected = hash_vectors(x, n_buckets, rotations.shape[0], rotations=rotations)
        got = my_hash_vectors(x.clone(), rotations.clone(), n_buckets)
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            return report(False, "", f"Not quite: for n_buckets={n_buckets} and {rotations.shape[0]} rounds return "
                                     f"a tensor of shape {tuple(expected.shape)} (rounds, tokens), got "
                                     f"{getattr(got, 'shape', type(got).__name__)}.")
        if not torch.equal(got.long(), expected):
            wrong = (got.long() != expected).float().mean().item()
            hint = ("Hint: the argmax runs over [xR; -xR], b numbers, so every bucket from 0 to b - 1 can occur."
                    if isinstance(n_buckets, int) else
                    "Hint: hash each factor with its own b_k / 2 columns of R, then combine the indices as "
                    "i_1 + b_1 * i_2 + b_1 * b_2 * i_3 (the first factor changes fastest).")
            return report(False, "", f"Not quite: with n_buckets={n_buckets}, {wrong:.0%} of your buckets differ. "
                                     + hint)
    return report(True, f"Right: your hash equals companion.lsh.hash_vectors on {len(cases)} fresh cases, flat "
                        "and factorised, one to five rounds.", "")
