"""The self-checks of the LSH attention chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import pytest
import torch

from companion.exercises import lsh_attention as ex

torch.set_num_threads(1)


def test_full_attention_memory() -> None:
    assert ex.check_full_attention_memory(16 * 2**30)
    assert not ex.check_full_attention_memory(65536 * 4)
    assert not ex.check_full_attention_memory(8 * 2**30)


def test_chunks() -> None:
    assert ex.check_chunks(64, 128)
    assert not ex.check_chunks(64, 64)
    assert not ex.check_chunks(32, 128)
    assert ex.chunk_counts(1000, 64) == (16, 128)  # padded up to 1024


def test_score_ratio() -> None:
    assert ex.check_score_ratio(128)
    assert ex.check_score_ratio(128.0)
    assert not ex.check_score_ratio(512)


def test_sort_order() -> None:
    assert ex.check_sort_order([1, 3, 2, 5, 0, 4])
    assert not ex.check_sort_order([3, 1, 5, 2, 4, 0])
    with pytest.raises(TypeError, match="list of int"):
        ex.check_sort_order("1 3 2 5 0 4")


def test_sort_order_matches_torch_stable_argsort() -> None:
    buckets = torch.tensor(ex.SORT_BUCKETS)
    assert torch.argsort(buckets, stable=True).tolist() == ex.sort_order(ex.SORT_BUCKETS)
