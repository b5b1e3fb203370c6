"""Each self-check of "Beyond pretrain-then-fine-tune" accepts the right answer and rejects a plausible wrong one."""

from __future__ import annotations

import pytest
import torch

from companion.exercises import beyond_finetuning as ex


def test_label_variance():
    assert ex.check_label_variance(12.25)
    assert not ex.check_label_variance(12.0)  # the noise forgotten
    assert not ex.check_label_variance(6.25)  # scale not squared
    with pytest.raises(TypeError):
        ex.check_label_variance("12.25")


def test_ood_ratio():
    ratio = ex.ood_ratio()
    assert ratio > 3  # the shipped in-context learner degrades on 3x larger inputs
    assert ex.check_ood_ratio(ratio)
    assert not ex.check_ood_ratio(1 / ratio)  # upside down


def _fine_tune(X, Y, lam, steps):
    gram = X.transpose(1, 2) @ X
    rate = 1 / (2 * (torch.linalg.eigvalsh(gram)[:, -1] + lam))
    w = torch.zeros(X.shape[0], X.shape[2], dtype=X.dtype)
    for _ in range(steps):
        grad = 2 * (X.transpose(1, 2) @ ((X @ w[:, :, None])[:, :, 0] - Y)[:, :, None])[:, :, 0] + 2 * lam * w
        w = w - rate[:, None] * grad
    return w


def _fixed_rate(X, Y, lam, steps):  # a plausible slip: one learning rate for every task and scale
    w = torch.zeros(X.shape[0], X.shape[2], dtype=X.dtype)
    for _ in range(steps):
        grad = 2 * (X.transpose(1, 2) @ ((X @ w[:, :, None])[:, :, 0] - Y)[:, :, None])[:, :, 0] + 2 * lam * w
        w = w - 0.01 * grad
    return w


def test_fine_tune():
    assert ex.check_fine_tune(_fine_tune)
    assert not ex.check_fine_tune(_fixed_rate)
    assert not ex.check_fine_tune(lambda X, Y, lam, steps: _fine_tune(X, Y, 0.0, steps))  # no weight decay
