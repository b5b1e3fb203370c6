"""Self-checks for the exercises of the chapter "Reversible residual layers" (book/reformer/reversible.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed here from the definitions, not typed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from companion.exercises._feedback import as_function, as_number, close, report
from companion.layer_stacks import layer_stack
from companion.reversible import ReversibleBlock, residual_forward

GiB, MiB = 2**30, 2**20

# Exercise 1: a block with f(t) = 3 t and g(t) = t^2 (scalars), seen only through its outputs.
INVERT_OUTPUTS = (2.0, 5.0)  # (y1, y2)


def block_f(t: float) -> float:
    return 3.0 * t


def block_g(t: float) -> float:
    return t * t


# Exercise 2: what a stack stores for the backward pass.
STORE_BATCH, STORE_LENGTH, STORE_WIDTH, STORE_BLOCKS, STORE_BYTES_PER_VALUE = 8, 4096, 512, 48, 4

# Exercise 3: float32 reconstruction of a small x1 next to a large f(x2).
FLOAT_X1, FLOAT_F = 1e-8, 1.0


def invert(y1: float, y2: float) -> tuple[float, float]:
    """The inverse of the block: x2 = y2 - g(y1), then x1 = y1 - f(x2)."""
    x2 = y2 - block_g(y1)
    return y1 - block_f(x2), x2


def check_inverse(x1: float, x2: float) -> bool:
    """Exercise 1: the inputs (x1, x2) of the block whose outputs are (2, 5)."""
    a, b = as_number(x1, "x1"), as_number(x2, "x2")
    e1, e2 = invert(*INVERT_OUTPUTS)
    y1, y2 = INVERT_OUTPUTS
    return report(
        close(a, e1, rel=0, abs_tol=1e-9) and close(b, e2, rel=0, abs_tol=1e-9),
        f"Right: x2 = y2 - g(y1) = {y2:g} - {block_g(y1):g} = {e2:g}, then x1 = y1 - f(x2) = {y1:g} - "
        f"{block_f(e2):g} = {e1:g}. Forward again: {e1:g} + 3 x {e2:g} = {y1:g}, {e2:g} + {y1:g}^2 = {y2:g}.",
        f"Not quite (x1 = {a:g}, x2 = {b:g}). Hint: undo the second line first. y2 = x2 + g(y1), and y1 is "
        "known, so x2 = y2 - g(y1); then y1 = x1 + f(x2) gives x1.",
    )


def stored_bytes(blocks: int, batch: int, length: int, width: int, bytes_per_value: int) -> tuple[int, int]:
    """(checkpointing, reversible): the inputs of every block (two halves each) vs the final outputs only."""
    pair = 2 * batch * length * width * bytes_per_value
    return blocks * pair, pair


def check_stored_bytes(checkpoint_bytes: float, reversible_bytes: float) -> bool:
    """Exercise 2: bytes kept for the backward pass by checkpointing and by the reversible stack."""
    got_c, got_r = as_number(checkpoint_bytes, "checkpoint_bytes"), as_number(reversible_bytes,
                                                                                 "reversible_bytes")
    exp_c, exp_r = stored_bytes(STORE_BLOCKS, STORE_BATCH, STORE_LENGTH, STORE_WIDTH, STORE_BYTES_PER_VALUE)
    ok = close(got_c, exp_c, rel=1e-3) and close(got_r, exp_r, rel=1e-3)
    return report(
        ok,
        f"Right: one pair (x1, x2) is 2 x 8 x 4096 x 512 x 4 bytes = {exp_r / MiB:g} MiB. Checkpointing keeps "
        f"one pair per block, {exp_c / GiB:g} GiB; the reversible stack keeps only the last pair, "
        f"{exp_r / MiB:g} MiB, at any depth.",
        f"Not quite ({got_c:,.0f} and {got_r:,.0f}). Hint: a block's input is two halves of B x L x d values "
        "of 4 bytes. Checkpointing keeps the input of each of the 48 blocks; the reversible stack rebuilds "
        "them from the output. Answer in bytes.",
    )


def float32_reconstruction(x1: float, f_of_x2: float) -> float:
    """x1 rebuilt in float32 as (x1 + f(x2)) - f(x2)."""
    x1_32, f_32 = np.float32(x1), np.float32(f_of_x2)
    return float((x1_32 + f_32) - f_32)


def check_float_reconstruction(answer: float) -> bool:
    """Exercise 3: what x1 = 1e-8 comes back as, in float32, next to f(x2) = 1."""
    value = as_number(answer, "answer")
    expected = float32_reconstruction(FLOAT_X1, FLOAT_F)
    return report(
        value == expected,
        f"Right: it comes back as {expected:g}. float32 has about 7 decimal digits, so 1 + 1e-8 rounds to 1 "
        "and the small x1 is lost; the error is about half a unit in the last place of y1 (6e-8 here), not of x1.",
        f"Not quite ({value:g}). Hint: float32 resolves numbers near 1 only to about 6e-8. What is "
        "1 + 1e-8 in float32, and what is left after subtracting 1?",
    )


ReversibleBackward = Callable[[Sequence[ReversibleBlock], torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
                              tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]


def _backward_cases() -> list[tuple[list[ReversibleBlock], torch.Tensor, torch.Tensor]]:
    """Fresh stacks (float64, no dropout) and inputs: one to five blocks of several widths."""
    cases = []
    for i, (depth, width) in enumerate([(1, 4), (2, 8), (3, 6), (5, 16)]):
        stack = layer_stack(depth, width=width, d_ff=2 * width, dropout=0.0, seed=40 + i).double()
        generator = torch.Generator().manual_seed(50 + i)
        x1, x2 = (torch.randn(2, 3, width, generator=generator, dtype=torch.float64) for _ in range(2))
        cases.append((list(stack.blocks), x1, x2))
    return cases


def check_reversible_backward(my_backward: ReversibleBackward) -> bool:
    """Exercise 4: ``my_backward(blocks, y1, y2, dy1, dy2) -> (x1, x2, dx1, dx2)``.

    Given only the outputs ``(y1, y2)`` of a stack of `ReversibleBlock` and the gradients of a loss with respect to
    them, rebuild the inputs block by block from the top and return them with the gradients with respect to the
    inputs; the gradients of the blocks' parameters must be accumulated into their ``.grad``. Compared with
    ordinary autograd through the same blocks, in float64.
    """
    as_function(my_backward, "my_backward(blocks, y1, y2, dy1, dy2)")
    cases = _backward_cases()
    for blocks, x1, x2 in cases:
        params = [p for block in blocks for p in block.parameters()]
        a1, a2 = x1.clone().requires_grad_(), x2.clone().requires_grad_()
        y1, y2 = residual_forward(blocks, a1, a2)

        def loss_of(o1: torch.Tensor, o2: torch.Tensor) -> torch.Tensor:
            return (o1 * o2).sum() + o1.pow(2).sum() - o2.sin().sum()

        expected = torch.autograd.grad(loss_of(y1, y2), [a1, a2, *params])
        o1, o2 = y1.detach().requires_grad_(), y2.detach().requires_grad_()
        dy1, dy2 = torch.autograd.grad(loss_of(o1, o2), [o1, o2])  # what a backward receives: dL/d(output)
        for p in params:
            p.grad = None
        got = my_backward(blocks, y1.detach(), y2.detach(), dy1, dy2)
        if not isinstance(got, tuple) or len(got) != 4:
            return report(False, "", "Not quite: return a tuple (x1, x2, dx1, dx2).")
        depth = f"a stack of {len(blocks)} block{'s' if len(blocks) > 1 else ''}"
        if not all(torch.allclose(g.detach(), e, atol=1e-10) for g, e in zip(got[:2], (x1, x2), strict=True)):
            return report(False, "", f"Not quite: with {depth} the rebuilt inputs are wrong. Hint: go through "
                                     "the blocks last to first; in each, x2 = y2 - g(y1), then x1 = y1 - f(x2).")
        if not all(torch.allclose(g.detach(), e, atol=1e-8) for g, e in zip(got[2:], expected[:2], strict=True)):
            return report(False, "", f"Not quite: with {depth} the input gradients differ from autograd. Hint: y1 "
                                     "feeds g as well as the output, so dL/dy1 = dy1 + (dg/dy1)^T dy2; x2 feeds f "
                                     "as well as y2, so dL/dx2 = dy2 + (df/dx2)^T dL/dy1.")
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        if not all(torch.allclose(g, e, atol=1e-8) for g, e in zip(grads, expected[2:], strict=True)):
            return report(False, "", f"Not quite: with {depth} the parameter gradients (.grad) differ from "
                                     "autograd. Hint: back-propagate dy2 through g(y1) and dL/dy1 through f(x2) "
                                     "with .backward(...) on the recomputed outputs, once per block.")
        for p in params:
            p.grad = None
    return report(True, f"Right: your backward rebuilds the inputs and matches autograd's gradients (inputs and "
                        f"parameters) on {len(cases)} fresh stacks of one to five blocks.", "")
