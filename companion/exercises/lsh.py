"""Self-checks for the exercises of the chapter "Locality-sensitive hashing" (book/reformer/lsh.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed here from the formulas, not typed in, so the checks say why.
"""

from __future__ import annotations

import math

from companion.exercises._feedback import as_number, report

# Exercise 1: two buckets, two vectors 60 degrees apart.
COLLISION_ANGLE_DEGREES = 60.0

# Exercise 2: a 2-D vector, a 2 x 2 "rotation" R, four buckets (argmax over [xR, -xR]).
BUCKET_VECTOR = (-1.0, 2.0)
BUCKET_ROTATION = ((1.0, 1.0), (-1.0, 1.0))  # rows: R[0, :], R[1, :]

# Exercise 3: two buckets, vectors 90 degrees apart, four hash rounds.
ROUNDS_ANGLE_DEGREES = 90.0
ROUNDS = 4

# Exercise 4: how many rounds until two vectors 60 degrees apart share a bucket with probability >= 0.99.
TARGET_PROBABILITY = 0.99


def two_bucket_collision(angle_radians: float) -> float:
    """1 - theta / pi: a random hyperplane separates two vectors with probability theta / pi."""
    return 1.0 - angle_radians / math.pi


def check_collision_probability(answer: float) -> bool:
    """Exercise 1: the probability that vectors 60 degrees apart share one of 2 buckets."""
    value = as_number(answer, "answer")
    expected = two_bucket_collision(math.radians(COLLISION_ANGLE_DEGREES))
    return report(
        abs(value - expected) < 1e-3,
        f"Right: 1 - (pi/3)/pi = {expected:.4f}. One random hyperplane separates them a third of the time.",
        f"Not quite ({value:.4f}). Hint: with two buckets the hash is the sign of x . r for one random "
        "direction r; the two signs differ when the hyperplane falls inside the angle between the vectors.",
    )


def bucket_of(vector: tuple[float, ...], rotation: tuple[tuple[float, ...], ...]) -> int:
    """argmax over [xR, -xR]: the bucket index the Reformer's hash gives."""
    columns = len(rotation[0])
    projected = [sum(vector[i] * rotation[i][j] for i in range(len(vector))) for j in range(columns)]
    scores = projected + [-p for p in projected]
    return max(range(len(scores)), key=scores.__getitem__)


def check_bucket(answer: int) -> bool:
    """Exercise 2: the bucket of x = (-1, 2) under R = [[1, 1], [-1, 1]] with 4 buckets."""
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise TypeError(f"answer must be an int bucket index in [0, 4), got {type(answer).__name__}")
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


def check_rounds(answer: float) -> bool:
    """Exercise 3: vectors 90 degrees apart, 2 buckets, 4 rounds: share a bucket at least once."""
    value = as_number(answer, "answer")
    p = two_bucket_collision(math.radians(ROUNDS_ANGLE_DEGREES))
    expected = at_least_once(p, ROUNDS)
    return report(
        abs(value - expected) < 1e-3,
        f"Right: one round collides with p = {p:.2f}, so at least one of {ROUNDS} rounds with "
        f"1 - (1 - p)^{ROUNDS} = {expected:.4f}.",
        f"Not quite ({value:.4f}). Hint: first find the chance that they are apart in every round; the "
        "rounds use independent rotations.",
    )


def rounds_needed(p: float, target: float) -> int:
    """The smallest n with 1 - (1 - p)^n >= target."""
    n = 1
    while at_least_once(p, n) < target:
        n += 1
    return n


def check_rounds_needed(answer: int) -> bool:
    """Exercise 4: fewest rounds so vectors 60 degrees apart (2 buckets) collide at least once w.p. >= 0.99."""
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise TypeError(f"answer must be a positive int, got {type(answer).__name__}")
    p = two_bucket_collision(math.radians(COLLISION_ANGLE_DEGREES))
    expected = rounds_needed(p, TARGET_PROBABILITY)
    return report(
        answer == expected,
        f"Right: {expected} rounds give {at_least_once(p, expected):.4f}, while {expected - 1} give only "
        f"{at_least_once(p, expected - 1):.4f}.",
        f"Not quite (you said {answer}). Hint: solve (1 - p)^n <= 1 - {TARGET_PROBABILITY} for the smallest "
        "whole n, with p = 2/3.",
    )
