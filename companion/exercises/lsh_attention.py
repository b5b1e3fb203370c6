"""Self-checks for the exercises of the chapter "LSH attention" (book/reformer/lsh-attention.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed here from the sizes below.
"""

from __future__ import annotations

from companion.exercises._feedback import as_int, report

# Exercise 1: the score matrix of full attention, one head, batch 1, float32.
FULL_LENGTH = 65536
BYTES_PER_FLOAT32 = 4

# Exercise 2: chunks and the keys one query sees in one hash round.
CHUNK_LENGTH = 4096
CHUNK_BUCKET_SIZE = 64

# Exercise 3: how much smaller LSH attention's scores are than full attention's.
RATIO_LENGTH = 65536
RATIO_BUCKET_SIZE = 64
RATIO_N_HASHES = 4

# Exercise 4: sort six tokens by (bucket, position).
SORT_BUCKETS = (2, 0, 1, 0, 2, 1)


def full_attention_bytes(length: int, bytes_per_value: int = BYTES_PER_FLOAT32) -> int:
    """One L x L score matrix: L * L values."""
    return length * length * bytes_per_value


def check_full_attention_memory(answer: int) -> bool:
    """Exercise 1: bytes of one float32 score matrix at L = 65536."""
    value = as_int(answer, "answer")
    expected = full_attention_bytes(FULL_LENGTH)
    return report(
        value == expected,
        f"Right: {FULL_LENGTH}^2 x 4 bytes = {expected:,} bytes = {expected / 2**30:g} GiB, for one head of "
        "one sequence in one layer.",
        f"Not quite ({value:,}). Hint: the matrix has one float32 (4 bytes) per pair (query, key).",
    )


def chunk_counts(length: int, bucket_size: int) -> tuple[int, int]:
    """(number of chunks after padding to a multiple of bucket_size, keys one query sees per round)."""
    n_chunks = -(-length // bucket_size)
    return n_chunks, 2 * bucket_size  # its own chunk and the one before


def check_chunks(n_chunks: int, keys_per_query: int) -> bool:
    """Exercise 2: for L = 4096 and bucket_size = 64, the number of chunks and the keys per query per round."""
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
    """Exercise 3: how many times fewer scores LSH attention computes at L = 65536, bucket 64, 4 hashes."""
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise TypeError(f"answer must be a number, got {type(answer).__name__}")
    expected = score_ratio(RATIO_LENGTH, RATIO_BUCKET_SIZE, RATIO_N_HASHES)
    return report(
        abs(answer - expected) < 1e-6 * expected,
        f"Right: L^2 / (n_hashes x L x 2 x bucket_size) = L / {2 * RATIO_BUCKET_SIZE * RATIO_N_HASHES} = "
        f"{expected:g}. The ratio grows linearly with L.",
        f"Not quite ({answer:g}). Hint: per round every query scores 2 x bucket_size keys, and there are "
        "n_hashes rounds; full attention scores all L keys.",
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
