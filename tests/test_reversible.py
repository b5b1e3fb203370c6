"""Reversible layers: gradients equal ordinary backprop, inverses, memory flat in depth, validation."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from companion.reversible import ReversibleBlock, ReversibleSequence, residual_forward

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                reason="needs CUDA"))]


def mlp(width: int, dropout: float = 0.2) -> nn.Module:
    return nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.GELU(),
                         nn.Dropout(dropout), nn.Linear(2 * width, width))


def make_blocks(depth: int, width: int = 6, dropout: float = 0.2, device: str = "cpu",
                dtype: torch.dtype = torch.float64, seed: int = 0) -> list[ReversibleBlock]:
    torch.manual_seed(seed)
    return [ReversibleBlock(mlp(width, dropout), mlp(width, dropout)).to(device, dtype) for _ in range(depth)]


def make_inputs(width: int = 6, device: str = "cpu", seed: int = 1, requires_grad: bool = True):
    generator = torch.Generator().manual_seed(seed)
    x1, x2 = (torch.randn(3, 4, width, generator=generator, dtype=torch.float64).to(device) for _ in range(2))
    return x1.requires_grad_(requires_grad), x2.requires_grad_(requires_grad)


def loss_of(y1: torch.Tensor, y2: torch.Tensor) -> torch.Tensor:
    # Uses both outputs unevenly so a swapped or dropped gradient would show.
    return (y1 * y2).sum() + 0.5 * y1.pow(2).sum() - y2.sin().sum()


def gradients(seq: ReversibleSequence, x1, x2, rng_seed: int = 123):
    """Gradients of the loss wrt the inputs and all parameters, with dropout masks drawn from rng_seed."""
    torch.manual_seed(rng_seed)
    y1, y2 = seq(x1, x2)
    params = list(seq.parameters())
    grads = torch.autograd.grad(loss_of(y1, y2), [x1, x2, *params])
    return (y1.detach(), y2.detach()), grads


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("depth", [1, 3, 8])
@pytest.mark.parametrize("mode", ["reversible", "checkpoint"])
def test_gradients_equal_ordinary_residual_layers_with_dropout(device, depth, mode):
    blocks = make_blocks(depth, device=device)
    x1, x2 = make_inputs(device=device)
    reference_out, reference = gradients(ReversibleSequence(blocks, mode="residual"), x1, x2)
    out, grads = gradients(ReversibleSequence(blocks, mode=mode), x1, x2)
    torch.testing.assert_close(out, reference_out, rtol=0, atol=1e-12)
    assert len(grads) == 2 + 2 * depth * 6  # inputs, and 6 parameter tensors in each of f and g
    for grad, expected in zip(grads, reference, strict=True):
        torch.testing.assert_close(grad, expected, rtol=0, atol=1e-6)
    # Dropout really was on: a different seed changes the gradients.
    _, other = gradients(ReversibleSequence(blocks, mode="residual"), x1, x2, rng_seed=999)
    assert (other[0] - reference[0]).abs().max() > 1e-3


def test_backward_fills_dot_grad_like_ordinary_layers():
    blocks = make_blocks(4)
    expected = []
    for mode in ("residual", "reversible"):
        seq = ReversibleSequence(blocks, mode=mode)
        seq.zero_grad(set_to_none=True)
        torch.manual_seed(5)
        loss_of(*seq(*make_inputs())).backward()
        expected.append([p.grad.clone() for p in seq.parameters()])
    for got, want in zip(*expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_autograd_grad_returns_parameter_gradients_and_leaves_dot_grad_alone():
    seq = ReversibleSequence(make_blocks(3))
    params = list(seq.parameters())
    grads = torch.autograd.grad(loss_of(*seq(*make_inputs(requires_grad=False))), params)
    assert all(g is not None and g.shape == p.shape and g.abs().sum() > 0 for g, p in zip(grads, params, strict=True))
    assert all(p.grad is None for p in params)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="needs torch.distributed")
def test_distributed_data_parallel_sees_the_gradients(tmp_path):
    # DDP reduces gradients from autograd hooks; its reducer raises on the second step if a parameter's
    # hook did not fire in the first.
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        grads = []
        for mode in ("residual", "reversible"):
            seq = ReversibleSequence(make_blocks(2), mode=mode)
            model = DistributedDataParallel(seq)
            for step in range(2):
                model.zero_grad(set_to_none=True)
                torch.manual_seed(step)
                loss_of(*model(*make_inputs())).backward()
            grads.append([p.grad for p in seq.parameters()])
    finally:
        dist.destroy_process_group()
    for got, want in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_shared_and_frozen_parameters():
    block = make_blocks(1)[0]
    block.f[0].weight.requires_grad_(False)  # a frozen LayerNorm weight
    blocks = [block, make_blocks(1, seed=3)[0], block]  # the same block twice: weights shared
    x1, x2 = make_inputs()
    reference_out, reference = gradients_trainable(ReversibleSequence(blocks, mode="residual"), x1, x2)
    out, grads = gradients_trainable(ReversibleSequence(blocks), x1, x2)
    for grad, expected in zip(grads, reference, strict=True):
        torch.testing.assert_close(grad, expected, rtol=0, atol=1e-6)
    assert block.f[0].weight.grad is None


def gradients_trainable(seq, x1, x2):
    torch.manual_seed(7)
    y1, y2 = seq(x1, x2)
    params = [p for p in seq.parameters() if p.requires_grad]
    return (y1, y2), torch.autograd.grad(loss_of(y1, y2), [x1, x2, *params])


@pytest.mark.parametrize("grad_x1, grad_x2", [(True, False), (False, True), (False, False)])
def test_inputs_that_do_not_require_grad(grad_x1, grad_x2):
    blocks = make_blocks(2)
    results = []
    for mode in ("residual", "reversible"):
        x1, x2 = make_inputs()
        x1.requires_grad_(grad_x1)
        x2.requires_grad_(grad_x2)
        seq = ReversibleSequence(blocks, mode=mode)
        torch.manual_seed(11)
        inputs = [x for x in (x1, x2) if x.requires_grad] + list(seq.parameters())
        results.append(torch.autograd.grad(loss_of(*seq(x1, x2)), inputs))
    for got, want in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_one_tensor_as_both_halves():
    # The Reformer feeds the embedding as both halves: seq(x, x). Its gradient is the sum of both.
    blocks = make_blocks(3)
    x = make_inputs()[0]
    results = []
    for mode in ("residual", "reversible"):
        torch.manual_seed(2)
        results.append(torch.autograd.grad(loss_of(*ReversibleSequence(blocks, mode=mode)(x, x)), x)[0])
    torch.testing.assert_close(results[1], results[0], rtol=0, atol=1e-6)


def test_no_grad_mode_is_a_plain_forward():
    seq = ReversibleSequence(make_blocks(3, dropout=0.0)).eval()
    x1, x2 = make_inputs()
    with torch.no_grad():
        y1, y2 = seq(x1, x2)
    assert y1.grad_fn is None and not y1.requires_grad
    torch.testing.assert_close((y1, y2), residual_forward(seq.blocks, x1.detach(), x2.detach()))


def test_backward_leaves_the_global_random_state_as_the_ordinary_pass_does():
    states = []
    for mode in ("residual", "reversible"):
        seq = ReversibleSequence(make_blocks(3), mode=mode)
        torch.manual_seed(0)
        loss_of(*seq(*make_inputs())).backward()
        states.append(torch.get_rng_state())
    assert torch.equal(states[0], states[1])


@settings(derandomize=True, deadline=None, max_examples=15)
@given(depth=st.integers(1, 5), width=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_inverse_recovers_the_inputs(depth, width, seed):
    seq = ReversibleSequence(make_blocks(depth, width=width, seed=seed)).eval()  # eval: dropout off
    x1, x2 = make_inputs(width=width, seed=seed, requires_grad=False)
    y1, y2 = seq(x1, x2)
    assert not torch.allclose(y1, x1)
    torch.testing.assert_close(seq.inverse(y1, y2), (x1, x2), rtol=0, atol=1e-10)
    torch.testing.assert_close(seq.blocks[0].inverse(*seq.blocks[0](x1, x2)), (x1, x2), rtol=0, atol=1e-12)


def saved_bytes(mode: str, depth: int) -> int:
    """Bytes autograd saves for backward during the forward pass (parameters excluded)."""
    seq = ReversibleSequence(make_blocks(depth, width=16), mode=mode)
    param_ids = {p.untyped_storage().data_ptr() for p in seq.parameters()}
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        if t.untyped_storage().data_ptr() not in param_ids:
            total += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        seq(*make_inputs(width=16))
    return total


def test_saved_tensors_do_not_grow_with_depth():
    x_bytes = 3 * 4 * 16 * 8  # one float64 input of shape (3, 4, 16)
    reversible = [saved_bytes("reversible", depth) for depth in (1, 4, 16)]
    assert reversible == [2 * x_bytes] * 3  # only the two final outputs
    checkpointed = [saved_bytes("checkpoint", depth) for depth in (1, 4, 16)]
    assert checkpointed[0] >= x_bytes and checkpointed == [checkpointed[0] * d for d in (1, 4, 16)]
    residual = [saved_bytes("residual", depth) for depth in (1, 4, 16)]
    per_block = residual[0]
    assert per_block > 4 * x_bytes and residual == [per_block * d for d in (1, 4, 16)]


class LiveTensorBytes(TorchDispatchMode):
    """Counts the bytes of tensors made by operators in its scope that are still alive, leaving out
    those that share storage with ``exclude`` (the parameters: ``weight.t()`` is a view of a weight)."""

    def __init__(self, exclude: list[torch.Tensor]) -> None:
        super().__init__()
        self.excluded = {t.untyped_storage().data_ptr() for t in exclude}
        self.storages: list[weakref.ref] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in self.excluded:
                self.storages.append(weakref.ref(t.untyped_storage()))
        return out

    def alive(self) -> int:
        gc.collect()
        seen = {s.data_ptr(): s.nbytes() for ref in self.storages if (s := ref()) is not None}
        return sum(seen.values())


@pytest.mark.parametrize("mode", ["reversible", "residual"])
def test_no_per_block_activations_stay_alive_after_forward(mode):
    alive = []
    for depth in (2, 5, 8):
        seq = ReversibleSequence(make_blocks(depth, width=16), mode=mode)
        x1, x2 = make_inputs(width=16)
        with LiveTensorBytes(exclude=list(seq.parameters())) as tracker:
            y1, y2 = seq(x1, x2)
        alive.append(tracker.alive() - y1.untyped_storage().nbytes() - y2.untyped_storage().nbytes())
        del y1, y2
    if mode == "residual":
        per_block = alive[1] - alive[0]  # linear in depth, more than a block's two outputs
        assert alive[2] - alive[1] == per_block > 3 * 2 * 3 * 4 * 16 * 8
    else:
        assert alive == [0, 0, 0]  # nothing but the outputs (the random states are not activations)


def test_validation_messages():
    f, g = mlp(4), mlp(4)
    with pytest.raises(TypeError, match="f must be a torch.nn.Module"):
        ReversibleBlock(lambda x: x, g)
    with pytest.raises(TypeError, match="g must be a torch.nn.Module"):
        ReversibleBlock(f, None)
    with pytest.raises(ValueError, match="blocks must contain at least one ReversibleBlock"):
        ReversibleSequence([])
    with pytest.raises(TypeError, match=r"blocks\[1\] must be a ReversibleBlock, got Linear"):
        ReversibleSequence([ReversibleBlock(f, g), nn.Linear(4, 4)])
    with pytest.raises(ValueError, match="mode must be one of .*'reversible'.*got 'fast'"):
        ReversibleSequence([ReversibleBlock(f, g)], mode="fast")
    seq = ReversibleSequence([ReversibleBlock(f, g)])
    with pytest.raises(ValueError, match=r"x1 and x2 must have the same shape, got \(2, 4\) and \(3, 4\)"):
        seq(torch.zeros(2, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="x1 and x2 must share device and dtype"):
        seq(torch.zeros(2, 4), torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="x2 must be a torch.Tensor, got list"):
        seq(torch.zeros(2, 4), [0.0] * 4)
    with pytest.raises(ValueError, match=r"y1 and y2 must have the same shape"):
        seq.inverse(torch.zeros(2, 4), torch.zeros(2, 5))
