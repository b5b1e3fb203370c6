"""companion.lsh: the hash against its argmax definition, collision rates against the independent theory."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from companion import lsh
from companion.device import make_generator

SETTINGS = settings(derandomize=True, deadline=None, max_examples=40)


def test_shape_dtype_and_range() -> None:
    x = torch.randn(2, 3, 50, 16, generator=make_generator(0))
    buckets = lsh.hash_vectors(x, 8, 5, make_generator(1))
    assert buckets.shape == (2, 3, 5, 50) and buckets.dtype == torch.int64
    assert buckets.min() >= 0 and buckets.max() < 8
    assert len(buckets.unique()) == 8  # 750 random vectors fill all 8 buckets
    factored = lsh.hash_vectors(x, (4, 6), 2, make_generator(1))
    assert factored.max() < 24 and len(factored.unique()) == 24


@SETTINGS
@given(half=st.integers(1, 6), n_hashes=st.integers(1, 4), dim=st.integers(1, 9), seed=st.integers(0, 10**6))
def test_equals_argmax_over_rotated_and_negated(half: int, n_hashes: int, dim: int, seed: int) -> None:
    generator = make_generator(seed)
    x = torch.randn(3, 20, dim, generator=generator, dtype=torch.float64)
    rotations = lsh.random_rotations(dim, 2 * half, n_hashes, generator=generator)
    got = lsh.hash_vectors(x, 2 * half, n_hashes, rotations=rotations)
    for r in range(n_hashes):
        projected = x @ rotations[r].double()
        assert torch.equal(got[:, r], torch.cat([projected, -projected], dim=-1).argmax(dim=-1))


def test_factorised_hash_combines_the_factors_mixed_radix() -> None:
    x = torch.randn(40, 8, generator=make_generator(3))
    rotations = lsh.random_rotations(8, (4, 6), 3, generator=make_generator(4))
    got = lsh.hash_vectors(x, (4, 6), 3, rotations=rotations)
    first = lsh.hash_vectors(x, 4, 3, rotations=rotations[..., :2].contiguous())
    second = lsh.hash_vectors(x, 6, 3, rotations=rotations[..., 2:].contiguous())
    assert torch.equal(got, first + 4 * second)


def test_same_generator_seed_gives_same_hash_in_any_dtype() -> None:
    x = torch.randn(30, 12, generator=make_generator(5))
    a = lsh.hash_vectors(x, 16, 3, make_generator(9))
    b = lsh.hash_vectors(x.double(), 16, 3, make_generator(9))
    assert torch.equal(a, b)
    assert not torch.equal(a, lsh.hash_vectors(x, 16, 3, make_generator(10)))


@SETTINGS
@given(n_buckets=st.sampled_from([2, 4, 8, 32, (4, 8)]), dim=st.integers(2, 32), seed=st.integers(0, 10**6))
def test_equal_and_positively_scaled_vectors_always_collide(n_buckets, dim: int, seed: int) -> None:
    generator = make_generator(seed)
    base = torch.randn(10, dim, generator=generator)
    x = torch.cat([base, base, 2.0 * base, 0.5 * base])  # powers of two scale exactly: same argmax
    buckets = lsh.hash_vectors(x, n_buckets, 16, generator)
    for copy in range(1, 4):
        assert torch.equal(buckets[:, :10], buckets[:, 10 * copy:10 * copy + 10])


# Monte Carlo: one pair at a fixed angle, N independent rotations (one per round). The empirical rate of
# equal buckets is binomial(N, p)/N, so it must lie within Z standard errors of the theory.
N_TRIALS, Z_BOUND = 20_000, 4.0


@pytest.mark.parametrize("n_buckets", [2, 4, 8, 16, 64, (4, 4)])
def test_empirical_collision_rate_matches_theory(n_buckets) -> None:
    angles = [0.05, 0.4, 1.0, 1.6, 2.5]
    theory = lsh.collision_probability(torch.tensor(angles), n_buckets)
    generator = make_generator(1234)
    for angle, p in zip(angles, theory.tolist(), strict=True):
        pair = torch.tensor([[1.0, 0.0, 0.0, 0.0], [math.cos(angle), math.sin(angle), 0.0, 0.0]])
        pair = pair @ torch.linalg.qr(torch.randn(4, 4, generator=generator))[0]  # any plane will do
        buckets = lsh.hash_vectors(pair, n_buckets, N_TRIALS, generator)
        rate = (buckets[:, 0] == buckets[:, 1]).double().mean().item()
        stderr = math.sqrt(max(p * (1 - p), 1 / N_TRIALS) / N_TRIALS)
        assert abs(rate - p) < Z_BOUND * stderr, (n_buckets, angle, rate, p)


def test_numerical_integration_reproduces_the_two_bucket_closed_form() -> None:
    for angle in [0.1, 0.7, 1.5, 2.2, 3.0]:
        assert lsh._collision_numeric(angle, 1) == pytest.approx(1 - angle / math.pi, abs=1e-10)


def test_collision_probability_shape_and_limits() -> None:
    angles = torch.linspace(0, math.pi, 9)
    for n_buckets in [2, 8, 32]:
        p = lsh.collision_probability(angles, n_buckets)
        assert p[0] == 1.0 and p[-1] == 0.0
        assert (p.diff() < 0).all()  # farther apart, fewer collisions
    # more buckets separate more: at every angle in (0, pi) the probability drops
    inner = angles[1:-1]
    p2, p8, p32 = (lsh.collision_probability(inner, b) for b in (2, 8, 32))
    assert (p8 < p2).all() and (p32 < p8).all()
    assert lsh.collision_probability(math.pi / 3, 2) == pytest.approx(2 / 3)
    assert lsh.collision_probability(1.0, (4, 8)) == pytest.approx(
        lsh.collision_probability(1.0, 4) * lsh.collision_probability(1.0, 8))


@pytest.mark.parametrize("bad", [3, 1, 0, -2, 2.0, True, (4, 3), ()])
def test_bad_n_buckets_raises(bad) -> None:
    x = torch.randn(5, 4)
    with pytest.raises(ValueError, match="n_buckets must be"):
        lsh.hash_vectors(x, bad, 1)
    with pytest.raises(ValueError, match="n_buckets must be"):
        lsh.collision_probability(0.5, bad)


def test_other_bad_arguments_raise() -> None:
    x = torch.randn(5, 4)
    with pytest.raises(ValueError, match="n_hashes must be an int >= 1"):
        lsh.hash_vectors(x, 4, 0)
    with pytest.raises(ValueError, match=r"rotations must have shape \(2, 4, 2\)"):
        lsh.hash_vectors(x, 4, 2, rotations=torch.randn(2, 4, 3))
    with pytest.raises(ValueError, match="x must have shape"):
        lsh.hash_vectors(torch.randn(4), 4, 1)
    with pytest.raises(ValueError, match=r"angle must be in \[0, pi\]"):
        lsh.collision_probability(-0.1, 4)
    with pytest.raises(ValueError, match=r"angle must be in \[0, pi\]"):
        lsh.collision_probability(torch.tensor([1.0, 4.0]), 4)
