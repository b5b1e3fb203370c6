"""The self-checks of the Reformer overview chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import math

import pytest
import torch

from companion.exercises import reformer_overview as ex


def test_attention_bytes() -> None:
    assert ex.check_attention_bytes(4 * 8 * 8192**2 * 2)
    assert ex.check_attention_bytes(4 * 2**30)  # the same number, written as 4 GiB
    assert not ex.check_attention_bytes(8 * 8192**2 * 2)  # forgot the batch
    assert not ex.check_attention_bytes(4 * 8 * 8192**2 * 4)  # float32 instead of float16


def test_activation_bytes() -> None:
    assert ex.check_activation_bytes(12 * 8 * 65536 * 1024 * 4)
    assert not ex.check_activation_bytes(8 * 65536 * 1024 * 4)  # one layer only
    assert ex.residual_stream_bytes(65536, 1024, 8, 1, 4) == 2 * 2**30  # the paper's 2 GB per layer


def test_exponent() -> None:
    assert ex.check_exponent(math.log(580 / 40) / math.log(4))
    assert not ex.check_exponent(2.0)
    assert not ex.check_exponent(1.0)
    assert ex.growth_exponent((1, 2), (3.0, 12.0)) == pytest.approx(2.0)


def test_bad_type() -> None:
    with pytest.raises(TypeError, match="answer must be a number"):
        ex.check_attention_bytes("4 GiB")
    with pytest.raises(TypeError, match="my_chunked must be a function"):
        ex.check_chunked_feed_forward(None)


def test_chunked_feed_forward_accepts_the_solution(capsys) -> None:
    def chunked(ff, x, chunk_size):
        return torch.cat([ff(part) for part in x.split(chunk_size, dim=-2)], dim=-2)

    assert ex.check_chunked_feed_forward(chunked)
    assert "Right" in capsys.readouterr().out


def test_chunked_feed_forward_rejects_plausible_mistakes(capsys) -> None:
    def whole(ff, x, chunk_size):  # equal, but not chunked
        return ff(x)

    def drops_the_last_chunk(ff, x, chunk_size):
        full = x.shape[-2] // chunk_size * chunk_size
        return torch.cat([ff(part) for part in x[..., :full, :].split(chunk_size, dim=-2)], dim=-2)

    def along_the_batch(ff, x, chunk_size):
        return torch.cat([ff(part) for part in x.split(chunk_size, dim=0)], dim=0)

    for wrong in (whole, drops_the_last_chunk, along_the_batch):
        assert not ex.check_chunked_feed_forward(wrong), wrong.__name__
        assert "Not quite" in capsys.readouterr().out
