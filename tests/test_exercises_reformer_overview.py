"""The self-checks of the Reformer overview chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import math

import pytest

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


def test_chunk_saving() -> None:
    assert ex.check_chunk_saving(8 * 65536 * 4096 * 4, 8 * 4096 * 4096 * 4)
    assert not ex.check_chunk_saving(8 * 65536 * 4096 * 4, 8 * 4096 * 1024 * 4)  # d_model, not d_ff
    assert not ex.check_chunk_saving(8 * 65536 * 1024 * 4, 8 * 4096 * 4096 * 4)


def test_exponent() -> None:
    assert ex.check_exponent(math.log(580 / 40) / math.log(4))
    assert not ex.check_exponent(2.0)
    assert not ex.check_exponent(1.0)
    assert ex.growth_exponent((1, 2), (3.0, 12.0)) == pytest.approx(2.0)


def test_bad_type() -> None:
    with pytest.raises(TypeError, match="answer must be a number"):
        ex.check_attention_bytes("4 GiB")
    with pytest.raises(TypeError, match="chunk_bytes must be a number"):
        ex.check_chunk_saving(1.0, None)
