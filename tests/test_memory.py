"""companion.memory: a known allocation measured in a fresh process; LSH attention far below full."""

from __future__ import annotations

import sys

import pytest
import torch

from companion import memory

# Resident-memory peaks are exact to the page on Linux; the macOS fallback (ru_maxrss) is coarser.
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RSS high-water mark is reset only on Linux")


def test_a_200_mb_tensor_measures_200_mb() -> None:
    report = memory.peak_memory("companion.memory:allocate_bytes", 200_000_000, threads=1)
    assert report.device == "cpu" and report.seconds > 0
    assert report.peak_bytes == pytest.approx(200_000_000, rel=0.10), report
    assert report.baseline_bytes > 50 * 2**20  # the interpreter and torch are resident before the call


def test_lsh_attention_memory_matches_its_model_and_stays_far_below_full() -> None:
    length = 8192
    lsh = memory.peak_memory("companion.attention:attention_case", "lsh", length, threads=1)
    full_model = memory.attention_memory_bytes(length, method="full")  # 512 MiB: too slow to measure here
    lsh_model = memory.attention_memory_bytes(length, method="lsh")
    assert lsh.peak_bytes < full_model / 10  # measured: about 1/19
    assert 0.7 * lsh_model < lsh.peak_bytes < 1.4 * lsh_model, (lsh, lsh_model)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_allocation_is_measured() -> None:
    report = memory.peak_memory("companion.memory:allocate_bytes", 100_000_000, device="cuda")
    assert report.peak_bytes == pytest.approx(100_000_000, rel=0.01)


def test_attention_memory_model() -> None:
    assert memory.attention_memory_bytes(1024, 64) == 4 * (2 * 1024**2 + 1024 * 64)
    six_heads = memory.attention_memory_bytes(1024, 64, batch=2, heads=3)
    assert six_heads == 6 * memory.attention_memory_bytes(1024)
    lsh = [memory.attention_memory_bytes(n, method="lsh") for n in (2**16, 2**17)]
    assert lsh[1] == 2 * lsh[0] - 3 * 2**19 * 4  # linear once the block of scores is full
    with pytest.raises(ValueError, match="method must be 'full' or 'lsh'"):
        memory.attention_memory_bytes(10, method="sdpa")


def test_failures_are_reported() -> None:
    with pytest.raises(ValueError, match="target must look like"):
        memory.peak_memory("companion.memory.allocate_bytes", 10)
    with pytest.raises(RuntimeError, match="No module named 'companion.nothing'"):
        memory.peak_memory("companion.nothing:f")
    with pytest.raises(RuntimeError, match="must return a zero-argument callable"):
        memory.peak_memory("builtins:dict")


def test_saved_activation_bytes_counts_each_storage_once_and_no_weights() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16))
    x = torch.randn(5, 16)
    # the first linear keeps x, the ReLU and the second linear both keep the ReLU's output (one storage);
    # the weights are saved too but not counted
    assert memory.saved_activation_bytes(layer, x) == 4 * (5 * 16 + 5 * 64)
    # a layer with no parameters needing a gradient still saves nothing for x that does not need one
    frozen = torch.nn.Linear(16, 16).requires_grad_(False)
    assert memory.saved_activation_bytes(frozen, x) == 0
    assert memory.saved_activation_bytes(frozen, x.requires_grad_()) == 0  # only the weight is kept


def test_saved_activation_bytes_of_a_residual_block() -> None:
    from companion.layer_stacks import layer_stack

    block = layer_stack(1, width=32, d_ff=32, dropout=0.1)
    x = torch.randn(2, 8, 32)
    saved = memory.saved_activation_bytes(block, x, x)
    tensor = x.nbytes
    # per sublayer five tensors of the input's size (LayerNorm input and output, GELU input, dropout mask,
    # second linear map's input) and LayerNorm's mean and 1/std (one float per token each)
    tokens = 2 * 8
    assert saved == 2 * (5 * tensor + 2 * 4 * tokens)
    with pytest.raises(TypeError, match="module must be callable"):
        memory.saved_activation_bytes(3, x)
