"""Chunked feed-forward equals the unchunked layer (outputs and gradients), holds less memory, validates."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from companion import feedforward
from companion.feedforward import ChunkedFeedForward, chunked_feed_forward, feed_forward


def make_ff(d_model: int = 8, d_ff: int = 32, dtype: torch.dtype = torch.float64, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return feed_forward(d_model, d_ff, dtype=dtype)


@settings(derandomize=True, deadline=None, max_examples=30)
@given(batch=st.integers(1, 3), length=st.integers(1, 40), chunk_size=st.integers(1, 50),
       seed=st.integers(0, 2**16))
def test_chunked_equals_unchunked_on_random_inputs(batch, length, chunk_size, seed):
    ff = make_ff(seed=seed)
    x = torch.randn(batch, length, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    expected = ff(x)
    got = chunked_feed_forward(ff, x, chunk_size)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("recompute", [False, True])
def test_gradients_equal_unchunked(recompute):
    ff = make_ff()
    x = torch.randn(2, 13, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 13, 8, dtype=torch.float64)  # a loss that weighs every position differently
    params = list(ff.parameters())
    expected = torch.autograd.grad((ff(x) * weight).sum(), [x, *params])
    got = torch.autograd.grad((chunked_feed_forward(ff, x, 4, recompute=recompute) * weight).sum(), [x, *params])
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)


def test_chunks_run_on_the_sequence_dimension():
    seen = []

    def spy(chunk: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(chunk.shape))
        return 2 * chunk

    x = torch.arange(2 * 10 * 3, dtype=torch.float32).view(2, 10, 3)
    torch.testing.assert_close(chunked_feed_forward(spy, x, 4), 2 * x)
    assert seen == [(2, 4, 3), (2, 4, 3), (2, 2, 3)]  # the last chunk is shorter
    seen.clear()
    chunked_feed_forward(spy, x, 2, dim=0)
    assert seen == [(2, 10, 3)]  # one chunk: the whole batch dimension fits


def test_module_wrapper_matches_function_and_keeps_parameters():
    ff = make_ff()
    wrapped = ChunkedFeedForward(ff, chunk_size=5)
    x = torch.randn(3, 11, 8, dtype=torch.float64)
    torch.testing.assert_close(wrapped(x), ff(x), rtol=1e-12, atol=1e-12)
    assert list(wrapped.parameters()) == list(ff.parameters())


class _PeakHidden(TorchDispatchMode):
    """Records the largest number of elements of any tensor created while active (a proxy for the peak)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_chunking_bounds_the_largest_hidden_tensor():
    d_model, d_ff, length, chunk = 8, 64, 256, 16
    ff = make_ff(d_model, d_ff, dtype=torch.float32)
    x = torch.randn(1, length, d_model)
    with torch.no_grad():
        with _PeakHidden() as full:
            ff(x)
        with _PeakHidden() as chunked:
            chunked_feed_forward(ff, x, chunk)
    assert full.largest == length * d_ff
    assert chunked.largest == max(chunk * d_ff, length * d_model)  # a chunk's hidden, or the output


def test_recompute_keeps_only_chunk_inputs_for_backward():
    # With recompute, the graph saves each chunk's input (L x d_model in all), not the L x d_ff hiddens.
    d_model, d_ff, length = 8, 64, 64
    ff = make_ff(d_model, d_ff, dtype=torch.float32)
    x = torch.randn(1, length, d_model, requires_grad=True)
    saved = []

    def pack(t: torch.Tensor):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        chunked_feed_forward(ff, x, 8, recompute=True)
    assert max(saved) < length * d_ff / 4
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        chunked_feed_forward(ff, x, 8, recompute=False)
    assert sum(saved) >= length * d_ff  # every chunk's hidden activations are kept


def test_memory_cases_compute_the_same_layer_whole_and_chunked():
    whole = feedforward.feed_forward_case(300, d_model=16, d_ff=64, batch=2, seed=3)()
    chunked = feedforward.feed_forward_case(300, chunk_size=64, d_model=16, d_ff=64, batch=2, seed=3)()
    assert whole.shape == (2, 300, 16) and not whole.requires_grad
    torch.testing.assert_close(chunked, whole)


def test_validation():
    ff = make_ff()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"chunk_size must be an int >= 1, got 0"):
        chunked_feed_forward(ff, x, 0)
    with pytest.raises(ValueError, match=r"chunk_size must be an int >= 1, got 2.0"):
        chunked_feed_forward(ff, x, 2.0)
    with pytest.raises(ValueError, match=r"dim must be in \[-3, 2\]"):
        chunked_feed_forward(ff, x, 2, dim=3)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., L, d\)"):
        chunked_feed_forward(ff, torch.randn(5), 2)
    with pytest.raises(TypeError, match="ff must be callable"):
        chunked_feed_forward(3, x, 2)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        chunked_feed_forward(ff, [1.0, 2.0], 2)
    with pytest.raises(ValueError, match=r"chunk_size must be an int >= 1, got -1"):
        ChunkedFeedForward(ff, -1)
    with pytest.raises(ValueError, match=r"d_ff must be an int >= 1, got 0"):
        feed_forward(4, 0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.0"):
        feed_forward(4, 8, dropout=1.0)
