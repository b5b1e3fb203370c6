"""The self-checks of the LSH chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import math

import pytest
import torch

from companion.exercises import lsh as ex

torch.set_num_threads(1)


def test_collision_probability() -> None:
    assert ex.check_collision_probability(2 / 3)
    assert not ex.check_collision_probability(1 / 3)
    assert not ex.check_collision_probability(0.5)


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


def test_rounds() -> None:
    assert ex.check_rounds(15 / 16)
    assert not ex.check_rounds(0.5**4)
    assert not ex.check_rounds(0.5)


def test_rounds_needed() -> None:
    assert ex.check_rounds_needed(5)
    assert not ex.check_rounds_needed(4)
    assert ex.rounds_needed(2 / 3, 0.99) == math.ceil(math.log(0.01) / math.log(1 / 3))


def test_bad_type() -> None:
    with pytest.raises(TypeError, match="answer must be a number"):
        ex.check_collision_probability("2/3")


def test_bucket_answer_key_agrees_with_companion_lsh() -> None:
    from companion import lsh

    x = torch.tensor([ex.BUCKET_VECTOR])
    rotations = torch.tensor([ex.BUCKET_ROTATION])  # (n_hashes=1, d=2, b/2=2)
    assert lsh.hash_vectors(x, 4, 1, rotations=rotations).item() == ex.bucket_of(ex.BUCKET_VECTOR,
                                                                                 ex.BUCKET_ROTATION)
    assert lsh.collision_probability(math.radians(ex.COLLISION_ANGLE_DEGREES), 2) == pytest.approx(2 / 3)
