"""The self-checks of the LSH chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import math

import pytest
import torch

from companion.exercises import lsh as ex


def test_bucket() -> None:
    assert ex.check_bucket(2)
    assert not ex.check_bucket(1)
    with pytest.raises(TypeError, match="answer must be an int"):
        ex.check_bucket(2.0)


def test_bucket_follows_the_argmax_convention_of_companion_lsh() -> None:
    # [xR, -xR] = [-3, 1, 3, -1]: the largest entry is the negation of the first column
    assert ex.bucket_of((-1.0, 2.0), ((1.0, 1.0), (-1.0, 1.0))) == 2
    assert ex.bucket_of((1.0, 0.0), ((1.0, 0.0), (0.0, 1.0))) == 0
    assert ex.bucket_of((0.0, -1.0), ((1.0, 0.0), (0.0, 1.0))) == 3


def test_and_or() -> None:
    assert ex.check_and_or(1 - (5 / 9) ** 3)
    assert not ex.check_and_or(1 - (1 / 3) ** 3)  # forgot the AND of the two factors
    assert not ex.check_and_or((4 / 9) ** 3)  # ANDed the rounds too
    with pytest.raises(TypeError, match="answer must be a number"):
        ex.check_and_or("0.83")


def test_rounds_needed() -> None:
    assert ex.check_rounds_needed(5)
    assert not ex.check_rounds_needed(4)
    assert ex.rounds_needed(2 / 3, 0.99) == math.ceil(math.log(0.01) / math.log(1 / 3))


def test_bucket_answer_key_agrees_with_companion_lsh() -> None:
    from companion import lsh

    x = torch.tensor([ex.BUCKET_VECTOR])
    rotations = torch.tensor([ex.BUCKET_ROTATION])  # (n_hashes=1, d=2, b/2=2)
    assert lsh.hash_vectors(x, 4, 1, rotations=rotations).item() == ex.bucket_of(ex.BUCKET_VECTOR,
                                                                                 ex.BUCKET_ROTATION)
    assert lsh.collision_probability(math.radians(ex.COLLISION_ANGLE_DEGREES), 2) == pytest.approx(2 / 3)


def solution(x, rotations, n_buckets, *, negate=True):
    """The chapter's solution; negate=False is a plausible mistake."""
    factors = (n_buckets,) if isinstance(n_buckets, int) else tuple(n_buckets)
    projected = x @ rotations  # (rounds, L, columns)
    bucket, start, radix = 0, 0, 1
    for b in factors:
        p = projected[..., start:start + b // 2]
        index = torch.cat([p, -p], dim=-1).argmax(dim=-1) if negate else p.argmax(dim=-1)
        bucket = bucket + index * radix
        start, radix = start + b // 2, radix * b
    return bucket


def test_hash_vectors_accepts_the_solution(capsys) -> None:
    assert ex.check_hash_vectors(solution)
    assert "Right" in capsys.readouterr().out


def test_hash_vectors_rejects_plausible_mistakes(capsys) -> None:
    assert not ex.check_hash_vectors(lambda *a: solution(*a, negate=False))
    assert "[xR; -xR]" in capsys.readouterr().out

    def last_factor_fastest(x, rotations, n_buckets):
        # the factors' columns in order, but the last index varying fastest: i_1 * b_2 + i_2
        if isinstance(n_buckets, int):
            return solution(x, rotations, n_buckets)
        projected, start, indices = x @ rotations, 0, []
        for b in n_buckets:
            p = projected[..., start:start + b // 2]
            indices.append(torch.cat([p, -p], dim=-1).argmax(dim=-1))
            start += b // 2
        bucket = 0
        for b, index in zip(n_buckets, indices, strict=True):
            bucket = bucket * b + index
        return bucket

    assert not ex.check_hash_vectors(last_factor_fastest)
    assert "first factor changes fastest" in capsys.readouterr().out
    assert not ex.check_hash_vectors(lambda x, rotations, n_buckets: solution(x, rotations, n_buckets)[0])
    with pytest.raises(TypeError, match="my_hash_vectors must be a function"):
        ex.check_hash_vectors("argmax")
