"""Tests for companion.ood: the shifted tasks, fine-tuning by gradient descent, the side-by-side comparison."""

from __future__ import annotations

import pytest
import torch

from companion import icl_regression, ood


def test_shifted_tasks_scale_the_inputs_only():
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    x1, y1 = ood.shifted_tasks(3000, 5, 2, 0.0, scale=1.0, generator=g())
    x3, y3 = ood.shifted_tasks(3000, 5, 2, 0.0, scale=3.0, generator=g())
    assert torch.allclose(x3, 3 * x1) and torch.allclose(y3, 3 * y1, atol=1e-5)  # same draws, x and y scaled
    assert x3.std().item() == pytest.approx(3.0, rel=0.03)
    with pytest.raises(ValueError, match="scale"):
        ood.shifted_tasks(2, 5, 2, 0.1, scale=0.0, generator=g())
    with pytest.raises(ValueError, match="points"):
        ood.shifted_tasks(2, 0, 2, 0.1, generator=g())


@pytest.mark.parametrize("scale", [0.5, 1.0, 4.0])
def test_fine_tune_linear_converges_to_ridge_on_every_scale(scale):
    x, y = ood.shifted_tasks(50, 6, 3, 0.5, scale=scale, generator=torch.Generator().manual_seed(1))
    X, Y = x.double(), y.double()
    w = ood.fine_tune_linear(X, Y, lam=0.25, steps=2000)
    query = torch.eye(3, dtype=torch.float64)
    for i in range(3):  # w . e_i is the ridge prediction at e_i
        expected = icl_regression.ridge(X, Y, query[i].expand(50, 3), 0.25)
        assert torch.allclose(w[:, i], expected, atol=1e-6)


def test_fine_tune_linear_moves_from_zero_towards_the_fit():
    x, y = ood.shifted_tasks(20, 4, 2, 0.1, generator=torch.Generator().manual_seed(2))
    X, Y = x.double(), y.double()
    loss = lambda w: (((X @ w[:, :, None])[:, :, 0] - Y) ** 2).sum(1) + 0.01 * (w**2).sum(1)  # noqa: E731
    one, many = ood.fine_tune_linear(X, Y, lam=0.01, steps=1), ood.fine_tune_linear(X, Y, lam=0.01, steps=300)
    assert (loss(many) <= loss(one) + 1e-12).all() and (loss(one) < loss(torch.zeros_like(one))).all()
    with pytest.raises(ValueError, match="lam"):
        ood.fine_tune_linear(X, Y, lam=-1.0)
    with pytest.raises(ValueError, match="X must be"):
        ood.fine_tune_linear(X[0], Y, lam=0.1)


def test_compare_rows_on_the_shipped_regressor():
    model, _ = icl_regression.load()
    rows = ood.compare(model, 6, (1.0, 3.0), n=300)
    assert [r["scale"] for r in rows] == [1.0, 3.0]
    for r in rows:
        assert r["fine_tuned"] == pytest.approx(r["ridge"], rel=0.02)  # 500 steps: close to the limit
        assert r["in_context"] < r["label_variance"]  # both learners learn something from 6 examples
    # in distribution the meta-trained transformer is close to ridge; at 3x larger inputs it is not
    assert rows[0]["in_context"] < 1.5 * rows[0]["ridge"]
    assert rows[1]["in_context"] > 3 * rows[1]["ridge"]
    with pytest.raises(ValueError, match="k must be"):
        ood.compare(model, 0)
