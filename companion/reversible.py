"""Reversible residual layers (RevNet, Gomez et al. 2017; used by the Reformer, Kitaev et al. 2020).

A reversible block splits the activations into two halves and computes

    y1 = x1 + f(x2)
    y2 = x2 + g(y1)

Its inputs can be computed back from its outputs,

    x2 = y2 - g(y1)
    x1 = y1 - f(x2)

so a stack of such blocks does not need to keep every block's activations for the
backward pass: it keeps only the final outputs and rebuilds each block's inputs on
the way back, one block at a time. Memory for activations then stays flat in depth,
for the price of running f and g forward once more in the backward pass.

Two details make this exact rather than approximate:

* Randomness. Dropout inside f or g draws new masks every call. We record the
  random-number state (CPU, and CUDA for CUDA tensors) before each call of f and g
  in the forward pass and restore it when we call them again in the backward pass,
  so they draw the same masks. (The autocast setting is replayed the same way.)
* Parameters. The autograd Function takes the parameters as inputs and returns
  their gradients from backward, so autograd (``torch.autograd.grad``, gradient
  accumulation, DistributedDataParallel's hooks) sees them like any other gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint

MODES = ("reversible", "residual", "checkpoint")


class ReversibleBlock(nn.Module):
    """``(x1, x2) -> (x1 + f(x2), x2 + g(y1))``; ``f`` and ``g`` map a tensor to one of the same shape."""

    def __init__(self, f: nn.Module, g: nn.Module) -> None:
        super().__init__()
        for name, module in (("f", f), ("g", g)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be a torch.nn.Module, got {type(module).__name__}")
        self.f = f
        self.g = g

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The block as an ordinary residual layer (autograd stores its activations)."""
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return y1, y2

    @torch.no_grad()
    def inverse(self, y1: torch.Tensor, y2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Recover ``(x1, x2)`` from the outputs (exact up to rounding if f and g are deterministic,
        e.g. in eval mode; with dropout the random state must be the forward one, see the module doc)."""
        x2 = y2 - self.g(y1)
        x1 = y1 - self.f(x2)
        return x1, x2


class _CallState:
    """What a call of f or g depended on besides its input: the random state (CPU and, for CUDA
    tensors, that device's) and the autocast setting. Captured in the forward, replayed in the backward."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        # The backward pass may run on another thread, where autocast is off.
        self.autocast = torch.is_autocast_enabled(device.type)
        self.autocast_dtype = torch.get_autocast_dtype(device.type)

    @contextlib.contextmanager
    def replay(self):
        """Run the body with gradients on and the captured state; the global RNG state is left untouched."""
        devices = [self.device] if self.cuda_rng is not None else []
        autocast = (torch.autocast(self.device.type, self.autocast_dtype) if self.autocast
                    else contextlib.nullcontext())
        with torch.random.fork_rng(devices=devices), torch.enable_grad(), autocast:
            torch.set_rng_state(self.cpu_rng)
            if self.cuda_rng is not None:
                torch.cuda.set_rng_state(self.cuda_rng, self.device)
            yield


class _ReversibleFunction(torch.autograd.Function):
    """Forward through all blocks without building a graph; backward rebuilds inputs block by block.

    The parameters are passed as inputs (``*params``) only so that autograd routes their gradients:
    backward returns one gradient per parameter instead of writing into ``.grad`` itself.
    """

    @staticmethod
    def forward(ctx, x1, x2, blocks, *params):
        ctx.blocks = blocks
        ctx.param_index = {id(p): i for i, p in enumerate(params)}
        ctx.states = []  # per block: (state before f, state before g); a few kB each, no activations
        for block in blocks:
            f_state = _CallState(x1.device)
            x1 = x1 + block.f(x2)
            g_state = _CallState(x1.device)
            x2 = x2 + block.g(x1)
            ctx.states.append((f_state, g_state))
        ctx.save_for_backward(x1, x2)  # the only tensors kept for backward: the final outputs
        return x1, x2

    @staticmethod
    @once_differentiable
    def backward(ctx, dy1, dy2):
        # (Gradients autograd did not need arrive as zeros: Functions materialize them by default.)
        y1, y2 = ctx.saved_tensors
        param_grads: list[torch.Tensor | None] = [None] * len(ctx.param_index)
        for block, (f_state, g_state) in zip(reversed(ctx.blocks), reversed(ctx.states), strict=True):
            # y2 = x2 + g(y1): recompute g(y1) with g's forward randomness, backprop through it,
            # and subtract it to get x2 back.
            y1 = y1.detach().requires_grad_(True)
            with g_state.replay():
                g_out = block.g(y1)
            dy1_via_g, g_out = _backprop(g_out, y1, block.g, dy2, ctx.param_index, param_grads)
            x2 = (y2 - g_out).requires_grad_(True)
            dx1 = dy1 + dy1_via_g  # y1 is an output and also the input of g
            y2 = dy1 = g_out = dy1_via_g = None  # free before f runs: lower peak memory
            # y1 = x1 + f(x2): the same for f.
            with f_state.replay():
                f_out = block.f(x2)
            dx2_via_f, f_out = _backprop(f_out, x2, block.f, dx1, ctx.param_index, param_grads)
            x1 = y1.detach() - f_out
            dx2 = dy2 + dx2_via_f  # x2 goes straight into y2 and also into f
            f_out = dx2_via_f = None  # likewise, before the next block
            y1, y2, dy1, dy2 = x1, x2.detach(), dx1, dx2
        return (dy1, dy2, None, *param_grads)


def _backprop(out: torch.Tensor, x: torch.Tensor, module: nn.Module, grad_out: torch.Tensor,
              param_index: dict, param_grads: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of ``out = module(x)`` wrt x (returned) and the module's parameters (added to param_grads).
    Also returns ``out`` detached, so the caller can drop the graph."""
    params = [p for p in module.parameters() if id(p) in param_index]
    grads = torch.autograd.grad(out, [x, *params], grad_out, allow_unused=True)
    for p, grad in zip(params, grads[1:], strict=True):
        if grad is not None:  # a parameter used in several places (weight sharing) gets the sum
            i = param_index[id(p)]
            param_grads[i] = grad if param_grads[i] is None else param_grads[i] + grad
    dx = torch.zeros_like(x) if grads[0] is None else grads[0]
    return dx, out.detach()


class ReversibleSequence(nn.Module):
    """A stack of `ReversibleBlock` called as ``seq(x1, x2) -> (y1, y2)``.

    ``mode`` picks how the backward pass gets each block's activations:

    * ``"reversible"`` (default): keep only the final outputs, rebuild inputs backwards;
    * ``"residual"``: ordinary autograd, every activation stored (the reference);
    * ``"checkpoint"``: ``torch.utils.checkpoint`` per block, storing each block's inputs.

    All three give the same outputs and gradients (up to rounding), also with dropout.
    With gradients off (``torch.no_grad()``, or nothing requiring grad) every mode is a plain forward.
    """

    def __init__(self, blocks: Iterable[ReversibleBlock], mode: str = "reversible") -> None:
        super().__init__()
        blocks = list(blocks)
        if not blocks:
            raise ValueError("blocks must contain at least one ReversibleBlock, got none")
        for i, block in enumerate(blocks):
            if not isinstance(block, ReversibleBlock):
                raise TypeError(f"blocks[{i}] must be a ReversibleBlock, got {type(block).__name__}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.blocks = nn.ModuleList(blocks)
        self.mode = mode

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_inputs(x1, x2)
        params = [p for p in self.parameters() if p.requires_grad]
        needs_graph = torch.is_grad_enabled() and (x1.requires_grad or x2.requires_grad or bool(params))
        if self.mode == "residual" or not needs_graph:
            return residual_forward(self.blocks, x1, x2)
        if self.mode == "checkpoint":
            for block in self.blocks:
                x1, x2 = checkpoint(block, x1, x2, use_reentrant=False)
            return x1, x2
        return _ReversibleFunction.apply(x1, x2, tuple(self.blocks), *params)

    def inverse(self, y1: torch.Tensor, y2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Recover the inputs from the outputs, last block first (see `ReversibleBlock.inverse`)."""
        _check_inputs(y1, y2, names=("y1", "y2"))
        for block in reversed(self.blocks):
            y1, y2 = block.inverse(y1, y2)
        return y1, y2


def residual_forward(blocks: Iterable[ReversibleBlock], x1: torch.Tensor,
                     x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the blocks as ordinary residual layers with ordinary autograd (the reference)."""
    for block in blocks:
        x1, x2 = block(x1, x2)
    return x1, x2


def _check_inputs(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str] = ("x1", "x2")) -> None:
    for name, x in zip(names, (a, b), strict=True):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    pair = f"{names[0]} and {names[1]}"
    if a.shape != b.shape:
        raise ValueError(f"{pair} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.device != b.device or a.dtype != b.dtype:
        raise ValueError(f"{pair} must share device and dtype, got {a.device}/{a.dtype} and {b.device}/{b.dtype}")

