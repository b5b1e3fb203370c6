"""Self-checks for the exercises of the chapter "LSH attention" (book/reformer/lsh-attention.md).

Each check takes the reader's answer (or function), prints whether it is right (with a hint when it is not)
and returns True or False. The answer keys are computed here from the sizes below, or by
`companion.attention.lsh_attention` on fresh random inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.attention import default_n_buckets, lsh_attention
from companion.device import make_generator
from companion.exercises._feedback import as_function, as_int, as_number, close, report
from companion.lsh import hash_vectors, total_buckets

# Exercise 1: chunks and the keys one query sees in one hash round.
CHUNK_LENGTH = 4096
CHUNK_BUCKET_SIZE = 64

# Exercise 2: how much smaller LSH attention's scores are than full attention's.
RATIO_LENGTH = 65536
RATIO_BUCKET_SIZE = 64
RATIO_N_HASHES = 4

# Exercise 3: the paper's number of buckets, and what hashing into them costs.
BUCKETS_LENGTH = 65536
BUCKETS_CHUNK = 64

# Exercise 4: sort six tokens by (bucket, position).
SORT_BUCKETS = (2, 0, 1, 0, 2, 1)

LshRound = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int, bool], torch.Tensor]


def chunk_counts(length: int, bucket_size: int) -> tuple[int, int]:
    """(number of chunks after padding to a multiple of bucket_size, keys one query sees per round)."""
    n_chunks = -(-length // bucket_size)
    return n_chunks, 2 * bucket_size  # its own chunk and the one before


def check_chunks(n_chunks: int, keys_per_query: int) -> bool:
    """Exercise 1: for L = 4096 and bucket_size = 64, the number of chunks and the keys per query per round."""
    got = (as_int(n_chunks, "n_chunks"), as_int(keys_per_query, "keys_per_query"))
    expected = chunk_counts(CHUNK_LENGTH, CHUNK_BUCKET_SIZE)
    hint = []
    if got[0] != expected[0]:
        hint.append("the sorted sequence is cut into pieces of bucket_size tokens")
    if got[1] != expected[1]:
        hint.append("a chunk attends to itself and to the chunk before it")
    return report(
        got == expected,
        f"Right: {expected[0]} chunks of {CHUNK_BUCKET_SIZE}; each query sees its own chunk and the previous "
        f"one, {expected[1]} keys (a few of them masked: itself, and later positions when causal).",
        f"Not quite ({got[0]}, {got[1]}). Hint: " + "; ".join(hint) + ".",
    )


def score_ratio(length: int, bucket_size: int, n_hashes: int) -> float:
    """Full scores (L * L) over LSH scores (n_hashes * L * 2 * bucket_size)."""
    return length / (2 * bucket_size * n_hashes)


def check_score_ratio(answer: float) -> bool:
    """Exercise 2: how many times fewer scores LSH attention computes at L = 65536, bucket 64, 4 hashes."""
    value = as_number(answer, "answer")
    expected = score_ratio(RATIO_LENGTH, RATIO_BUCKET_SIZE, RATIO_N_HASHES)
    return report(
        close(value, expected, rel=1e-6),
        f"Right: L^2 / (n_hashes x L x 2 x bucket_size) = L / {2 * RATIO_BUCKET_SIZE * RATIO_N_HASHES} = "
        f"{expected:g}. The ratio grows linearly with L.",
        f"Not quite ({value:g}). Hint: per round every query scores 2 x bucket_size keys, and there are "
        "n_hashes rounds; full attention scores all L keys.",
    )


def check_buckets(n_buckets: int, flat_directions: int, factorised_directions: int) -> bool:
    """Exercise 3: at L = 65536 and chunks of 64, the paper's n_buckets = 2L/m, the directions per token of a
    flat hash into that many buckets, and those of the factorised hash `default_n_buckets` returns."""
    got = (as_int(n_buckets, "n_buckets"), as_int(flat_directions, "flat_directions"),
           as_int(factorised_directions, "factorised_directions"))
    expected_buckets = 2 * BUCKETS_LENGTH // BUCKETS_CHUNK
    factors = default_n_buckets(BUCKETS_LENGTH, BUCKETS_CHUNK)
    expected = (expected_buckets, expected_buckets // 2, sum(factors) // 2)
    return report(
        got == expected,
        f"Right: m = 2L / n_buckets gives n_buckets = {expected[0]}; a flat hash projects each token on "
        f"{expected[1]} directions, the factorised one {factors} on {expected[2]} "
        f"(covering {total_buckets(factors)} buckets).",
        f"Not quite ({got}). Hint: solve m = 2L / n_buckets for n_buckets; b buckets need b/2 directions "
        f"(argmax over [xR; -xR]); a factorised hash (b1, b2) needs b1/2 + b2/2. "
        f"default_n_buckets({BUCKETS_LENGTH}, {BUCKETS_CHUNK}) gives the factors.",
    )


def sort_order(buckets: tuple[int, ...]) -> list[int]:
    """Positions sorted by bucket, ties by position (a stable sort)."""
    return sorted(range(len(buckets)), key=lambda i: (buckets[i], i))


def check_sort_order(answer: list[int]) -> bool:
    """Exercise 4: the positions of buckets (2, 0, 1, 0, 2, 1) after sorting by (bucket, position)."""
    if not isinstance(answer, (list, tuple)) or not all(isinstance(a, int) for a in answer):
        raise TypeError("answer must be a list of int positions")
    expected = sort_order(SORT_BUCKETS)
    return report(
        list(answer) == expected,
        f"Right: {expected}. Bucket 0 first (positions 1, 3), then bucket 1 (2, 5), then bucket 2 (0, 4).",
        f"Not quite ({list(answer)}). Hint: list the positions (0 to 5) whose bucket is 0 in increasing "
        "order, then those in bucket 1, then bucket 2.",
    )


def _round_cases() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, bool, torch.Tensor]]:
    """Fresh inputs: (qk, v, buckets, bucket_size, causal, expected output of one round)."""
    cases = []
    shapes = [(16, 4, 4), (24, 8, 8), (40, 8, 6), (64, 8, 16), (48, 16, 8), (8, 8, 4)]  # (L, m, d)
    for i, (length, bucket_size, dim) in enumerate(shapes):
        generator = make_generator(1000 + i)
        qk = torch.randn(length, dim, generator=generator)
        v = torch.randn(length, 3, generator=generator)
        n_buckets = default_n_buckets(length, bucket_size)
        buckets = hash_vectors(qk, n_buckets, 1, make_generator(2000 + i))[0]
        for causal in (True, False):
            expected = lsh_attention(qk, v, bucket_size=bucket_size, n_hashes=1, n_buckets=n_buckets,
                                     causal=causal, generator=make_generator(2000 + i))
            cases.append((qk, v, buckets, bucket_size, causal, expected))
    return cases


def check_lsh_round(my_round: LshRound) -> bool:
    """Exercise 5: ``my_round(qk, v, buckets, bucket_size, causal)`` computes one round of LSH attention.

    ``qk`` is ``(L, d)``, ``v`` is ``(L, dv)``, ``buckets`` the ``(L,)`` bucket of each token, ``L`` a
    multiple of ``bucket_size``. It must return the ``(L, dv)`` outputs in the original order, equal to
    ``companion.attention.lsh_attention(..., n_hashes=1)`` with the same hash.
    """
    as_function(my_round, "my_round(qk, v, buckets, bucket_size, causal)")
    cases = _round_cases()
    for qk, v, buckets, bucket_size, causal, expected in cases:
        got = my_round(qk.clone(), v.clone(), buckets.clone(), bucket_size, causal)
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            return report(False, "", f"Not quite: return a tensor of shape {tuple(expected.shape)} (one output "
                                     f"row per token), got {getattr(got, 'shape', type(got).__name__)}.")
        if not torch.allclose(got, expected, atol=1e-5, rtol=1e-4):
            error = (got - expected).abs().max().item()
            return report(False, "", f"Not quite: L={len(qk)}, bucket_size={bucket_size}, causal={causal}: "
                                     f"your outputs differ by up to {error:.3g}. Hint: sort by (bucket, position); "
                                     "each chunk of bucket_size sorted tokens attends to itself and to the chunk "
                                     "before it (chunk 0 to the last one); keys are qk / |qk|, scores are divided "
                                     "by sqrt(d); mask later positions (when causal) with -1e9 and the token "
                                     "itself with -1e5; then put the outputs back in the original order.")
    return report(True, "Right: your round equals companion.attention.lsh_attention with one hash round on "
                        f"{len(cases)} fresh cases, causal and not, one to eight chunks.", "")
