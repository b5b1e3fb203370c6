"""The self-checks of the LSH attention chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from companion.exercises import lsh_attention as ex


def test_chunks() -> None:
    assert ex.check_chunks(64, 128)
    assert not ex.check_chunks(64, 64)
    assert not ex.check_chunks(32, 128)
    assert ex.chunk_counts(1000, 64) == (16, 128)  # padded up to 1024


def test_score_ratio() -> None:
    assert ex.check_score_ratio(128)
    assert ex.check_score_ratio(128.0)
    assert not ex.check_score_ratio(512)
    with pytest.raises(TypeError, match="answer must be a number"):
        ex.check_score_ratio("128")


def test_buckets() -> None:
    assert ex.check_buckets(2048, 1024, 46)  # factors (38, 54)
    assert not ex.check_buckets(1024, 512, 46)  # one bucket per chunk, as reformer-pytorch
    assert not ex.check_buckets(2048, 2048, 46)  # forgot that [xR; -xR] doubles the directions
    with pytest.raises(TypeError, match="n_buckets must be an int"):
        ex.check_buckets(2048.0, 1024, 46)


def test_sort_order() -> None:
    assert ex.check_sort_order([1, 3, 2, 5, 0, 4])
    assert not ex.check_sort_order([0, 4, 2, 5, 1, 3])
    with pytest.raises(TypeError, match="list of int positions"):
        ex.check_sort_order("1 3 2 5 0 4")


def one_round(qk, v, buckets, bucket_size, causal, *, look_back=True, self_mask=True):
    """The chapter's solution, with switches for two plausible mistakes."""
    length, dim = qk.shape
    positions = torch.arange(length)
    order = (buckets * length + positions).argsort()
    n_chunks = length // bucket_size
    q = (qk / math.sqrt(dim))[order].view(n_chunks, bucket_size, dim)
    k = F.normalize(qk, dim=-1)[order].view(n_chunks, bucket_size, dim)
    vs = v[order].view(n_chunks, bucket_size, -1)
    pos = positions[order].view(n_chunks, bucket_size)
    if look_back and n_chunks > 1:
        k, vs, pos_k = (torch.cat([t.roll(1, dims=0), t], dim=1) for t in (k, vs, pos))
    else:
        pos_k = pos
    scores = q @ k.transpose(-1, -2)
    if causal:
        scores = scores.masked_fill(pos_k[:, None, :] > pos[:, :, None], -1e9)
    if self_mask:
        scores = scores.masked_fill(pos_k[:, None, :] == pos[:, :, None], -1e5)
    sorted_out = (scores.softmax(-1) @ vs).reshape(length, -1)
    out = torch.empty_like(sorted_out)
    out[order] = sorted_out
    return out


def test_lsh_round_accepts_the_solution(capsys) -> None:
    assert ex.check_lsh_round(one_round)
    assert "Right" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", [{"look_back": False}, {"self_mask": False}])
def test_lsh_round_rejects_plausible_mistakes(mistake, capsys) -> None:
    assert not ex.check_lsh_round(lambda *args: one_round(*args, **mistake))
    assert "Not quite" in capsys.readouterr().out


def test_lsh_round_rejects_sorted_order_and_wrong_shapes(capsys) -> None:
    def forgot_to_unsort(qk, v, buckets, bucket_size, causal):
        out = one_round(qk, v, buckets, bucket_size, causal)
        return out[(buckets * len(qk) + torch.arange(len(qk))).argsort()]

    assert not ex.check_lsh_round(forgot_to_unsort)
    assert not ex.check_lsh_round(lambda qk, v, *rest: v[:, :1])
    with pytest.raises(TypeError, match="my_round must be a function"):
        ex.check_lsh_round(3)
