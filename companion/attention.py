"""Attention three ways: exact, exact with shared query/key, and the Reformer's LSH attention.

`lsh_attention` (Kitaev, Kaiser, Levskaya 2020) never builds the L x L score matrix. In each hash round it
sorts the tokens by (bucket, position), cuts the sorted sequence into chunks of ``bucket_size`` and lets
every chunk attend to itself and to the previous chunk. Rounds are computed one after the other, chunks in
cache-sized blocks, and merged with a running log-sum-exp, so the working memory is a few sorted copies of
the inputs (O(L d)) and one block of scores, whatever the number of rounds (plus what autograd keeps for
the backward pass when gradients are needed: O(n_hashes * L * bucket_size)). A key met in
several rounds is counted once, as in the paper, which makes the result exact softmax attention over the
union of the keys met: more rounds can only add keys, so the error falls as ``n_hashes`` grows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .checks import positive_int
from .device import get_device, make_generator
from .lsh import Buckets, hash_vectors, total_buckets

MASK_VALUE = -1e9  # a forbidden pair (a future position, padding): its weight underflows to exactly 0
SELF_MASK_VALUE = -1e5  # a token and itself: attended only when it has no other target (as in Trax)
MAX_FLAT_BUCKETS = 64  # above this the default hash is factorised into two even factors
_BLOCK_SCORES = 1 << 19  # scores per block of chunks (2 MiB in float32), a size that stays in the cache


def _check_pair(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if a.dim() < 2 or b.dim() < 2 or a.shape[:-1] != b.shape[:-1]:
        raise ValueError(f"{names} must have shapes (..., L, d) with the same leading dims and L, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")


def full_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                   causal: bool = False) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v on ``(..., L, d)`` tensors: the textbook version with its L x L matrix."""
    _check_pair(k, v, "k and v")
    if q.shape[:-2] != k.shape[:-2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must agree in leading dims and d, "
                         f"got {tuple(q.shape)} and {tuple(k.shape)}")
    if causal and q.shape[-2] != k.shape[-2]:
        raise ValueError(f"causal=True needs as many queries as keys, got {q.shape[-2]} and {k.shape[-2]}")
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        future = torch.ones(scores.shape[-2:], dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def shared_qk_attention(qk: torch.Tensor, v: torch.Tensor, *, causal: bool = False) -> torch.Tensor:
    """Exact attention with one projection for queries and keys, as the Reformer uses it.

    The score of query i and key j is ``qk_i . (qk_j / |qk_j|) / sqrt(d)``. With shared QK a token's score
    with itself is almost always the largest, so it is masked: a token attends to itself only when it has
    no other target (the first token under ``causal``). This is the exact answer LSH attention approximates.
    """
    _check_pair(qk, v, "qk and v")
    length = qk.shape[-2]
    scores = qk @ F.normalize(qk, dim=-1).transpose(-1, -2) / math.sqrt(qk.shape[-1])
    pos = torch.arange(length, device=qk.device)
    if causal:
        scores = scores.masked_fill(pos[None, :] > pos[:, None], MASK_VALUE)
    scores = scores.masked_fill(pos[None, :] == pos[:, None], SELF_MASK_VALUE)
    return torch.softmax(scores, dim=-1) @ v


def default_n_buckets(length: int, bucket_size: int) -> int | tuple[int, int]:
    """About two buckets per chunk, as in the paper: ``2 * L / bucket_size``, even and >= 2.

    The Reformer paper sets the chunk length to m = 2l / n_buckets, so a bucket holds on average half a
    chunk (``n_buckets = 2 * n_chunks``). HF transformers' ``_set_num_buckets`` follows this rule and rounds
    down to a power of two; reformer-pytorch instead uses ``L // bucket_size`` buckets, one per chunk. Our
    hash takes any even count, so we round up to even. Hashing into b buckets projects every token on b/2
    directions, so with b ~ 2 L / bucket_size the hash alone would cost L^2 d / bucket_size: a quadratic
    term. Past `MAX_FLAT_BUCKETS` we therefore return two even factors (b1, b2) with b1 * b2 >= the target
    and b1 + b2 as small as possible: (b1 + b2) / 2, about sqrt(2 L / bucket_size), directions per token
    (a factorised hash, see `companion.lsh`). At 64k tokens and chunks of 64: 46 directions instead of 1024.
    """
    positive_int(bucket_size, "bucket_size")
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    n_chunks = -(-length // bucket_size)
    target = max(2, 2 * n_chunks)
    if target <= MAX_FLAT_BUCKETS:
        return target
    best: tuple[tuple[int, int], tuple[int, int]] | None = None
    for b1 in range(2, math.isqrt(target) + 3, 2):
        b2 = 2 * -(-target // (2 * b1))
        key = (b1 + b2, b1 * b2)
        if best is None or key < best[0]:
            best = (key, (min(b1, b2), max(b1, b2)))
    assert best is not None
    return best[1]


def _windows(x: torch.Tensor, bucket_size: int) -> torch.Tensor:
    """Sorted ``(B, Lp, *f)`` -> ``(B, chunks, *f, 2m)``: for every chunk, the previous chunk then itself.

    One copy of the sequence with its last chunk put in front (chunk 0 looks back to it), then overlapping
    views of it: no copy per window.
    """
    if x.shape[1] == bucket_size:  # a single chunk looks at itself only
        return x.unsqueeze(1).movedim(2, -1)
    return torch.cat([x[:, -bucket_size:], x], dim=1).unfold(1, 2 * bucket_size, bucket_size)


def _attend_in_chunks(q: torch.Tensor, k_t: torch.Tensor, v_t: torch.Tensor, pos_q: torch.Tensor,
                  pos_k: torch.Tensor, chunk_q: torch.Tensor | None, chunk_k: torch.Tensor | None,
                  n_chunks: int, length: int, causal: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A block of chunks of one round: queries ``(B, n, m, d)``, windows of keys ``(B, n, d, w)``, values
    ``(B, n, dv, w)`` and positions; ``chunk_*`` are the chunks of the same tokens in the other rounds
    (``(R, B, n, m)`` and ``(R, B, n, w)``). Returns outputs ``(B, n, m, dv)`` and log-sum-exps
    ``(B, n, m)``."""
    scores = q @ k_t  # (B, n, m, w)
    pq, pk = pos_q[..., :, None], pos_k[..., None, :]
    if causal:
        scores = scores.masked_fill(pk > pq, MASK_VALUE)
    if length % q.shape[-2]:  # the length is not a multiple of the chunk size: there is padding
        scores = scores.masked_fill(pk >= length, MASK_VALUE)
    scores = scores.masked_fill(pk == pq, SELF_MASK_VALUE)

    # softmax by hand so the log-sum-exp comes for free; the max is only a shift, so no gradient through it
    shift = scores.amax(dim=-1, keepdim=True).detach()
    weights = torch.exp(scores - shift)
    if chunk_q is not None and chunk_k is not None:
        # A key that i meets in N rounds would be counted N times when the rounds are merged; dividing its
        # weight by N (the paper's m_ij = log N) makes the merged result exact attention over the union.
        counts = torch.ones(scores.shape, dtype=torch.uint8, device=scores.device)  # this round: all meet
        for cq, ck in zip(chunk_q[..., :, None], chunk_k[..., None, :], strict=True):
            # in that round the key was in the query's chunk or in the one before
            counts += (ck == cq).view(torch.uint8)  # a bool is a 0/1 byte: no conversion
            if n_chunks > 1:  # (with one chunk "the one before" is the same chunk: count it once)
                counts += (ck == (cq - 1) % n_chunks).view(torch.uint8)
        weights = weights / counts
    total = weights.sum(dim=-1, keepdim=True)
    out = (weights @ v_t.transpose(-1, -2)) / total
    return out, (shift + total.log()).squeeze(-1)


def _one_round(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, order: torch.Tensor,
               other_chunks: torch.Tensor | None, length: int, bucket_size: int,
               causal: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One hash round. ``queries``, ``keys``, ``values`` are flat ``(B * Lp, d)`` rows, ``order`` ``(B, Lp)``
    lists them sorted, ``other_chunks`` ``(B * Lp, R)`` holds each token's chunk in the R other rounds.
    Returns outputs ``(B * Lp, dv)`` and log-sum-exps ``(B * Lp,)``, in sorted order."""
    batch, padded = order.shape
    n_chunks = padded // bucket_size

    def sort(x: torch.Tensor) -> torch.Tensor:
        return x.index_select(0, order.reshape(-1)).view(batch, padded, *x.shape[1:])

    q = sort(queries).view(batch, n_chunks, bucket_size, -1)
    k_t, v_t = _windows(sort(keys), bucket_size), _windows(sort(values), bucket_size)
    positions = order % padded
    pos_q, pos_k = positions.view(batch, n_chunks, bucket_size), _windows(positions, bucket_size)
    chunk_q = chunk_k = None
    if other_chunks is not None:  # as (R, B, ...) so that each round's comparisons read contiguous memory
        chunks = sort(other_chunks).permute(2, 0, 1).reshape(-1, padded)  # (R * B, Lp)
        chunk_q = chunks.view(-1, batch, n_chunks, bucket_size)
        chunk_k = _windows(chunks, bucket_size).reshape(-1, batch, n_chunks, pos_k.shape[-1])
    # blocks of chunks small enough to stay in the cache: time per token does not grow with L
    step = max(1, _BLOCK_SCORES // (bucket_size * pos_k.shape[-1]))
    outs, lses = [], []
    for c in range(0, n_chunks, step):
        block = slice(c, c + step)
        out, lse = _attend_in_chunks(q[:, block], k_t[:, block], v_t[:, block], pos_q[:, block],
                                     pos_k[:, block], None if chunk_q is None else chunk_q[:, :, block],
                                     None if chunk_k is None else chunk_k[:, :, block], n_chunks, length,
                                     causal)
        outs.append(out)
        lses.append(lse)
    return torch.cat(outs, dim=1).reshape(batch * padded, -1), torch.cat(lses, dim=1).reshape(-1)


def lsh_attention(qk: torch.Tensor, v: torch.Tensor, *, bucket_size: int = 64, n_hashes: int = 4,
                  n_buckets: Buckets | None = None, causal: bool = False,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Reformer LSH attention on ``(..., L, d)`` shared query/keys ``qk`` and values ``v`` (``(..., L, dv)``).

    Per round: hash (`companion.lsh.hash_vectors`), sort by (bucket, position), chunk, attend to the own and
    the previous chunk (no mask between buckets inside a chunk), with the self-mask of `shared_qk_attention`,
    causal masking by original position, and padding of L up to a multiple of ``bucket_size`` (the padding
    goes in an extra last bucket and is never attended). Rounds are merged with their log-sum-exp weights
    after discounting keys met in several rounds, so the output is exact shared-QK attention restricted to
    the keys a token met in any round; with a single chunk it is exact. The random rotations are shared by
    all leading (batch, head) dims and drawn on ``generator`` (CPU). ``n_buckets=None`` uses
    `default_n_buckets`.
    """
    _check_pair(qk, v, "qk and v")
    positive_int(bucket_size, "bucket_size")
    batch_shape, (length, dim), dim_v = qk.shape[:-2], qk.shape[-2:], v.shape[-1]
    if n_buckets is None:
        n_buckets = default_n_buckets(length, bucket_size)
    qk, v = qk.reshape(math.prod(batch_shape), length, dim), v.reshape(math.prod(batch_shape), length, dim_v)
    buckets = hash_vectors(qk, n_buckets, n_hashes, generator)  # (B, n_hashes, L); validates both
    if length == 0 or len(qk) == 0:  # nothing to attend
        return v.reshape(*batch_shape, length, dim_v)

    padded = -(-length // bucket_size) * bucket_size
    if padded > length:
        qk, v = (F.pad(t, (0, 0, 0, padded - length)) for t in (qk, v))
        buckets = F.pad(buckets, (0, padded - length), value=total_buckets(n_buckets))
    positions = torch.arange(padded, device=qk.device)
    sort_order = (buckets * padded + positions).argsort(dim=-1)  # by bucket, then position
    rank = sort_order.argsort(dim=-1)  # where each token sits in each round's sorted order
    chunk_of = (rank // bucket_size).to(torch.int32).transpose(1, 2).reshape(-1, n_hashes)  # small ints
    # from here on the batch is flattened into rows: token i of batch b is row b * padded + i
    offsets = (torch.arange(len(qk), device=qk.device) * padded)[:, None, None]
    sort_rows, rank_rows = (sort_order + offsets).unbind(1), (rank + offsets).unbind(1)
    queries = (qk / math.sqrt(dim)).reshape(-1, dim)
    keys, values = F.normalize(qk, dim=-1).reshape(-1, dim), v.reshape(-1, dim_v)

    out = lse = None
    for r in range(n_hashes):  # one round at a time: memory does not grow with n_hashes
        others = chunk_of[:, [i for i in range(n_hashes) if i != r]] if n_hashes > 1 else None
        out_r, lse_r = _one_round(queries, keys, values, sort_rows[r], others, length, bucket_size, causal)
        back = rank_rows[r].reshape(-1)  # back to the input order
        out_r, lse_r = out_r.index_select(0, back), lse_r.index_select(0, back)
        if out is None:
            out, lse = out_r, lse_r
        else:  # weights relative to the larger lse, then renormalised: exact even when both are ~ -1e5
            top = torch.maximum(lse, lse_r)
            w, w_r = (lse - top).exp()[..., None], (lse_r - top).exp()[..., None]
            out = (out * w + out_r * w_r) / (w + w_r)
            lse = top + (w + w_r).squeeze(-1).log()
    return out.view(len(qk), padded, dim_v)[:, :length].reshape(*batch_shape, length, dim_v)


class LSHSelfAttention(nn.Module):
    """Multi-head self-attention with a shared query/key projection, computed by `lsh_attention`.

    ``forward(x, n_hashes=...)`` may override the number of rounds, e.g. to evaluate with more rounds
    than were used in training (the paper's Table 2).
    """

    def __init__(self, dim: int, heads: int = 1, *, dim_head: int | None = None, bucket_size: int = 64,
                 n_hashes: int = 4, n_buckets: Buckets | None = None, causal: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if heads < 1 or (dim_head is None and dim % heads):
            raise ValueError(f"heads must be >= 1 and divide dim={dim} (or give dim_head), got {heads}")
        dim_head = dim_head or dim // heads
        inner = heads * dim_head
        self.heads, self.bucket_size, self.n_hashes = heads, bucket_size, n_hashes
        self.n_buckets, self.causal = n_buckets, causal
        self.to_qk = nn.Linear(dim, inner, bias=False, device=device, dtype=dtype)
        self.to_v = nn.Linear(dim, inner, bias=False, device=device, dtype=dtype)
        self.to_out = nn.Linear(inner, dim, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, *, n_hashes: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        batch, length, _ = x.shape

        def split_heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, -1).transpose(1, 2)

        rounds = self.n_hashes if n_hashes is None else n_hashes
        out = lsh_attention(split_heads(self.to_qk(x)), split_heads(self.to_v(x)),
                            bucket_size=self.bucket_size, n_hashes=rounds, n_buckets=self.n_buckets,
                            causal=self.causal, generator=generator)
        return self.to_out(out.transpose(1, 2).reshape(batch, length, -1))


METHODS = ("lsh", "sdpa", "full", "shared_qk")


def attention_case(method: str, length: int, dim: int = 64, *, batch: int = 1, heads: int = 1,
                   causal: bool = False, bucket_size: int = 64, n_hashes: int = 4, seed: int = 0,
                   device: torch.device | str | None = None) -> Callable[[], torch.Tensor]:
    """Random inputs and a no-grad closure running one attention ``method`` on them (for benchmarks).

    ``method`` is "lsh", "sdpa" (`torch.nn.functional.scaled_dot_product_attention`), "full" or "shared_qk".
    The closure is run once on a short prefix first, so one-time set-up is not measured. Made for
    ``companion.memory.peak_memory("companion.attention:attention_case", method, length)``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    device = torch.device(device) if device is not None else get_device()
    generator = make_generator(seed)
    q, k, v = (torch.randn(batch, heads, length, dim, generator=generator).to(device) for _ in range(3))

    def run_on(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if method == "lsh":
                return lsh_attention(q, v, bucket_size=bucket_size, n_hashes=n_hashes, causal=causal,
                                     generator=make_generator(seed))
            if method == "sdpa":
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            if method == "full":
                return full_attention(q, k, v, causal=causal)
            return shared_qk_attention(q, v, causal=causal)

    warm = min(length, 2 * bucket_size)
    run_on(q[..., :warm, :], k[..., :warm, :], v[..., :warm, :])
    return lambda: run_on(q, k, v)
