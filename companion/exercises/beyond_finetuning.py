"""Self-checks for the exercises of the chapter "Beyond pretrain-then-fine-tune" (book/gpt3/beyond-finetuning.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed with `companion.ood` and the shipped in-context regressor.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from companion.exercises._feedback import as_function, as_number, close, report
from companion.ood import compare, fine_tune_linear, shifted_tasks

DIM, NOISE = 3, 0.5  # the shipped regressor's task family
VARIANCE_SCALE = 2.0  # exercise 1
K, SCALES, N = 6, (1.0, 2.0, 3.0), 1000  # exercise 2: the chapter's comparison


def check_label_variance(answer: float) -> bool:
    """Exercise 1: the variance of y = w . x + noise with w ~ N(0, I_3), x ~ N(0, 4 I_3), noise sd 0.5."""
    value = as_number(answer, "answer")
    expected = VARIANCE_SCALE**2 * DIM + NOISE**2
    return report(close(value, expected, 1e-3),
                  f"Right: E[(w . x)^2] = sum_i E[w_i^2] E[x_i^2] = 3 x 4 = 12, plus the noise's 0.25: {expected}. "
                  "Predicting 0 has exactly this error, the ceiling every learner should stay below.",
                  f"Not quite ({value:g}). Hint: w and x are independent with mean 0, so E[(w . x)^2] is "
                  "the sum over the d coordinates of E[w_i^2] E[x_i^2]; add the noise's variance.")


def ood_ratio() -> float:
    """The in-context learner's error at 3x larger inputs over its error in distribution, k = 6."""
    from companion.icl_regression import load

    rows = compare(load()[0], K, SCALES, n=N)
    return rows[-1]["in_context"] / rows[0]["in_context"]


def check_ood_ratio(answer: float) -> bool:
    """Exercise 2: the ratio of the in-context learner's error at scale 3 to its error at scale 1 (k = 6)."""
    value = as_number(answer, "answer")
    expected = ood_ratio()
    return report(close(value, expected, 0.03),
                  f"Right: {expected:.1f}x. The fine-tuned linear model's error grows only with the noise it "
                  "cannot remove, because a fit on the k examples knows nothing of the training distribution.",
                  f"Not quite ({value:.3g}). Hint: divide the in-context column's value at scale 3 by its value "
                  "at scale 1 (k = 6), in the chapter's table.")


def check_fine_tune(fn: Callable[..., torch.Tensor]) -> bool:
    """Exercise 3: the reader's ``fn(X, Y, lam, steps)``, gradient descent from w = 0, on fresh tasks."""
    fn = as_function(fn, "fn(X, Y, lam, steps)")
    rng = random.Random()
    # a few steps (the path matters, not only the limit), then long runs on small and large inputs
    for scale, lam, steps in ((1.0, 0.25, 20), (0.3, 1.0, 400), (3.0, 0.01, 400)):
        k = rng.randint(4, 8)
        generator = torch.Generator().manual_seed(rng.randrange(10**6))
        x, y = shifted_tasks(5, k, DIM, NOISE, scale=scale, generator=generator)
        X, Y = x.double(), y.double()
        got = torch.as_tensor(fn(X, Y, lam, steps), dtype=torch.float64)
        expected = fine_tune_linear(X, Y, lam=lam, steps=steps)
        if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-3, atol=1e-5):
            return report(False, "", f"On tasks with inputs of scale {scale}, k = {k}, lam = {lam}, {steps} "
                          "steps, your weights differ from gradient descent's. Hint: start from zeros (n, d); "
                          "the gradient of |Xw - Y|^2 + lam |w|^2 is 2 X^T (Xw - Y) + 2 lam w; step size "
                          "1 / (2 (largest eigenvalue of X^T X + lam)) per task, so that larger inputs do not "
                          "diverge.")
    return report(True, "Right: your fine-tuning matches on three input scales, small, usual and large.", "")
