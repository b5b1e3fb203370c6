"""companion.attention: references against PyTorch and brute force, LSH attention against exact attention."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from companion import attention as att
from companion.device import make_generator
from companion.lsh import hash_vectors, total_buckets

SETTINGS = settings(derandomize=True, deadline=None, max_examples=25)


def randn(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=make_generator(seed), dtype=dtype)


@SETTINGS
@given(length=st.integers(1, 40), dim=st.integers(1, 16), causal=st.booleans(), seed=st.integers(0, 10**6))
def test_full_attention_matches_pytorch(length: int, dim: int, causal: bool, seed: int) -> None:
    q, k, v = (randn(2, 3, length, dim, seed=seed + i, dtype=torch.float64) for i in range(3))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(att.full_attention(q, k, v, causal=causal), expected, rtol=1e-10, atol=1e-10)


def brute_force_shared_qk(qk: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor | None = None,
                          causal: bool = False) -> torch.Tensor:
    """Row by row on (L, d): softmax over the allowed targets other than i; i itself only if none is left."""
    length, dim = qk.shape
    out = torch.empty(length, v.shape[-1], dtype=v.dtype)
    for i in range(length):
        targets = [j for j in range(length) if j != i and (not causal or j <= i)
                   and (allowed is None or allowed[i, j])]
        if not targets:
            out[i] = v[i]
            continue
        scores = torch.stack([qk[i] @ qk[j] / qk[j].norm() / math.sqrt(dim) for j in targets])
        out[i] = torch.softmax(scores, dim=0) @ v[targets]
    return out


@pytest.mark.parametrize("causal", [False, True])
def test_shared_qk_attention_matches_its_definition(causal: bool) -> None:
    qk, v = randn(17, 5, seed=1, dtype=torch.float64), randn(17, 3, seed=2, dtype=torch.float64)
    got = att.shared_qk_attention(qk, v, causal=causal)
    torch.testing.assert_close(got, brute_force_shared_qk(qk, v, causal=causal), rtol=1e-10, atol=1e-10)
    if causal:
        assert torch.equal(got[0], v[0])  # the first token has only itself


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("length", [1, 23, 64])
@pytest.mark.parametrize("n_hashes", [1, 3])
def test_one_chunk_equals_shared_qk_attention(causal: bool, length: int, n_hashes: int) -> None:
    qk, v = randn(2, 3, length, 16, seed=length), randn(2, 3, length, 8, seed=length + 1)
    got = att.lsh_attention(qk, v, bucket_size=64, n_hashes=n_hashes, causal=causal,
                            generator=make_generator(0))
    expected = att.shared_qk_attention(qk, v, causal=causal)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def union_of_rounds(qk: torch.Tensor, bucket_size: int, n_buckets, n_hashes: int, seed: int) -> torch.Tensor:
    """Which keys each query meets in some round, by the recipe: sort by (bucket, position), chunk, look
    back one chunk."""
    length = qk.shape[-2]
    buckets = hash_vectors(qk, n_buckets, n_hashes, make_generator(seed))
    n_chunks = -(-length // bucket_size)
    allowed = torch.zeros(length, length, dtype=torch.bool)
    for r in range(n_hashes):
        order = sorted(range(length), key=lambda i: (buckets[r, i].item(), i))
        chunk = torch.empty(length, dtype=torch.long)
        chunk[order] = torch.arange(length) // bucket_size
        allowed |= chunk[None, :] == chunk[:, None]
        if n_chunks > 1:
            allowed |= chunk[None, :] == (chunk[:, None] - 1) % n_chunks
    return allowed


@pytest.mark.parametrize("block_scores", [att._BLOCK_SCORES, 150])  # one block per round, or 1-2 chunks
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("length,bucket_size,n_buckets,n_hashes",
                         [(64, 8, 8, 3), (61, 8, 8, 2), (32, 16, 4, 4), (45, 4, (4, 4), 2), (50, 10, 6, 1)])
def test_lsh_attention_is_exact_attention_over_the_keys_met_in_any_round(
        causal: bool, length: int, bucket_size: int, n_buckets, n_hashes: int, block_scores: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(att, "_BLOCK_SCORES", block_scores)
    qk, v = randn(length, 6, seed=3, dtype=torch.float64), randn(length, 4, seed=4, dtype=torch.float64)
    got = att.lsh_attention(qk, v, bucket_size=bucket_size, n_hashes=n_hashes, n_buckets=n_buckets,
                            causal=causal, generator=make_generator(7))
    allowed = union_of_rounds(qk, bucket_size, n_buckets, n_hashes, seed=7)
    # with two chunks every chunk sees both (and each key once); with more it is a real approximation
    assert allowed.all() == (-(-length // bucket_size) <= 2)
    expected = brute_force_shared_qk(qk, v, allowed, causal=causal)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


def test_batch_and_head_dims_are_independent() -> None:
    qk, v = randn(2, 3, 40, 8, seed=5), randn(2, 3, 40, 4, seed=6)
    together = att.lsh_attention(qk, v, bucket_size=8, n_hashes=2, generator=make_generator(1))
    alone = att.lsh_attention(qk[1, 2], v[1, 2], bucket_size=8, n_hashes=2, generator=make_generator(1))
    torch.testing.assert_close(together[1, 2], alone, rtol=1e-6, atol=1e-6)


# Relative error ||lsh - exact|| / ||exact|| on random inputs (L=512, chunks of 32, 16 buckets), averaged over
# 4 seeds. Each doubling of n_hashes must cut it by at least 15% (observed: about 35% per doubling).
def test_error_falls_as_n_hashes_grows() -> None:
    def mean_error(n_hashes: int) -> float:
        errors = []
        for seed in range(4):
            qk, v = randn(1, 512, 32, seed=100 + seed), randn(1, 512, 32, seed=200 + seed)
            exact = att.shared_qk_attention(qk, v)
            approx = att.lsh_attention(qk, v, bucket_size=32, n_hashes=n_hashes,
                                       generator=make_generator(seed))
            errors.append(((approx - exact).norm() / exact.norm()).item())
        return sum(errors) / len(errors)

    errors = [mean_error(n) for n in (1, 2, 4, 8)]
    for fewer, more in zip(errors, errors[1:], strict=False):
        assert more < 0.85 * fewer, errors


@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck_with_fixed_rotations(causal: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(att, "_BLOCK_SCORES", 200)  # blocks of 1 or 2 chunks: gradients cross blocks too
    qk = randn(1, 27, 4, seed=8, dtype=torch.float64).requires_grad_()  # 4 chunks of 8, padded by 5
    v = randn(1, 27, 3, seed=9, dtype=torch.float64).requires_grad_()

    def run(qk: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # a fresh, equally seeded generator each call
        return att.lsh_attention(qk, v, bucket_size=8, n_hashes=2, n_buckets=4, causal=causal,
                                 generator=make_generator(11))

    assert torch.autograd.gradcheck(run, (qk, v), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("t", [0, 20, 47, 98])
def test_causal_outputs_up_to_t_ignore_later_values(t: int) -> None:
    qk, v = randn(2, 99, 8, seed=10), randn(2, 99, 5, seed=11)
    changed = v.clone()
    changed[:, t + 1:] = randn(2, 98 - t, 5, seed=12) * 10
    run = dict(bucket_size=8, n_hashes=3, causal=True)
    before = att.lsh_attention(qk, v, generator=make_generator(2), **run)
    after = att.lsh_attention(qk, changed, generator=make_generator(2), **run)
    torch.testing.assert_close(before[:, :t + 1], after[:, :t + 1], rtol=1e-6, atol=1e-6)
    if t < 98:
        assert not torch.allclose(before[:, t + 1:], after[:, t + 1:])


def test_default_n_buckets_rule() -> None:
    # the paper: chunk length m = 2 L / n_buckets, so about two buckets per chunk
    assert att.default_n_buckets(50, 64) == 2  # one chunk: two buckets
    assert att.default_n_buckets(64, 8) == 16  # the duplication model: 8 chunks, 16 buckets
    assert att.default_n_buckets(1024, 64) == 32
    assert att.default_n_buckets(64 * 7, 64) == 14
    assert att.default_n_buckets(64 * 7 - 5, 64) == 14  # a partial chunk counts as a chunk
    assert att.default_n_buckets(2048, 64) == 64  # the largest flat hash
    assert att.default_n_buckets(4096, 64) == (8, 16)
    assert att.default_n_buckets(16384, 64) == (20, 26)
    for length in [5000, 20000, 65536, 100_000, 10**6]:
        factors = att.default_n_buckets(length, 64)
        target = 2 * -(-length // 64)
        assert all(b % 2 == 0 for b in factors)
        assert target <= total_buckets(factors) <= 1.2 * target + 2
        assert sum(factors) <= 2.5 * math.sqrt(target)  # hash cost grows like sqrt(L), not L


def test_default_n_buckets_matches_hf_rule_up_to_rounding() -> None:
    # HF transformers' _set_num_buckets: 2 * (L // chunk_length), rounded down to a power of two
    for length, chunk in [(1024, 64), (512, 32), (64, 8), (256, 16)]:
        hf = 2 ** ((2 * (length // chunk)).bit_length() - 1)
        assert att.default_n_buckets(length, chunk) == hf  # equal when the chunk count is a power of two
    hf_odd = 2 ** ((2 * (448 // 64)).bit_length() - 1)
    assert hf_odd == 8 and att.default_n_buckets(448, 64) == 14  # we round up to even, HF down to 2^k


def test_lsh_self_attention_module() -> None:
    torch.manual_seed(0)
    layer = att.LSHSelfAttention(12, heads=3, bucket_size=16, n_hashes=2)
    x = randn(2, 10, 12, seed=13)
    out = layer(x, generator=make_generator(0))
    assert out.shape == x.shape
    # one chunk: the module is exact shared-QK attention per head between its projections
    qk = layer.to_qk(x).view(2, 10, 3, 4).transpose(1, 2)
    v = layer.to_v(x).view(2, 10, 3, 4).transpose(1, 2)
    expected = layer.to_out(att.shared_qk_attention(qk, v).transpose(1, 2).reshape(2, 10, 12))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())
    long = randn(1, 100, 12, seed=14)
    one, eight = (layer(long, n_hashes=n, generator=make_generator(1)) for n in (1, 8))
    assert not torch.allclose(one, eight)


def test_attention_case_runs_each_method() -> None:
    outputs = {m: att.attention_case(m, 100, 16, bucket_size=128, device="cpu")() for m in att.METHODS}
    assert all(o.shape == (1, 1, 100, 16) for o in outputs.values())
    torch.testing.assert_close(outputs["full"], outputs["sdpa"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outputs["lsh"], outputs["shared_qk"], rtol=1e-5, atol=1e-5)  # one chunk
    with pytest.raises(ValueError, match="method must be one of"):
        att.attention_case("flash", 10)


def test_bad_arguments_raise() -> None:
    qk, v = randn(20, 4, seed=0), randn(20, 3, seed=1)
    with pytest.raises(ValueError, match="bucket_size must be an int >= 1"):
        att.lsh_attention(qk, v, bucket_size=0)
    with pytest.raises(ValueError, match="n_buckets must be even"):
        att.lsh_attention(qk, v, n_buckets=5)
    with pytest.raises(ValueError, match="n_hashes must be an int >= 1"):
        att.lsh_attention(qk, v, n_hashes=0)
    with pytest.raises(ValueError, match="qk and v must have shapes"):
        att.lsh_attention(qk, v[:10])
    with pytest.raises(ValueError, match="causal=True needs as many queries as keys"):
        att.full_attention(qk[:5], qk, v, causal=True)
    with pytest.raises(ValueError, match="heads must be >= 1 and divide dim=10"):
        att.LSHSelfAttention(10, heads=3)


def test_empty_inputs() -> None:
    assert att.lsh_attention(torch.randn(2, 0, 4), torch.randn(2, 0, 3)).shape == (2, 0, 3)
    assert att.lsh_attention(torch.randn(0, 5, 4), torch.randn(0, 5, 3)).shape == (0, 5, 3)
