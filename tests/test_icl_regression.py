"""Tests for companion.icl_regression: baselines against numpy and by hand, the model's causality, a folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from companion import icl_regression as R


def _tasks(n=20, points=8, dim=3, noise=0.5, seed=0):
    return R.sample_tasks(n, points, dim, noise, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_least_squares_matches_numpy(k):
    x, y = _tasks(points=9)
    x, y = x.double(), y.double()
    got = R.least_squares(x[:, :k], y[:, :k], x[:, k])
    for i in range(len(x)):
        w = np.linalg.lstsq(x[i, :k].numpy(), y[i, :k].numpy(), rcond=None)[0]  # minimum norm if k < d
        assert got[i].item() == pytest.approx(float(x[i, k].numpy() @ w), rel=1e-8, abs=1e-8)


def test_ridge_by_hand_and_its_limits():
    x, y = _tasks(points=9)
    x, y = x.double(), y.double()
    X, Y, q = x[:, :6], y[:, :6], x[:, 6]
    w = np.linalg.solve(X[0].numpy().T @ X[0].numpy() + 0.25 * np.eye(3), X[0].numpy().T @ Y[0].numpy())
    assert R.ridge(X, Y, q, 0.25)[0].item() == pytest.approx(float(q[0].numpy() @ w))
    torch.testing.assert_close(R.ridge(X, Y, q, 1e-12), R.least_squares(X, Y, q))
    assert R.ridge(X, Y, q, 1e12).abs().max() < 1e-9


def test_nearest_neighbours_and_averaging_by_hand():
    X = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]]])
    Y = torch.tensor([[1.0, 3.0, 100.0]])
    q = torch.tensor([[0.4, 0.0]])
    assert R.nearest_neighbours(X, Y, q, neighbours=2).item() == pytest.approx(2.0)
    assert R.nearest_neighbours(X, Y, q, neighbours=10).item() == pytest.approx(104 / 3)
    # averaging: w = mean(y_i x_i) = ((0, 0) + (3, 0) + (500, 500)) / 3
    assert R.averaging(X, Y, q).item() == pytest.approx(0.4 * 503 / 3)
    empty = X[:, :0], Y[:, :0]
    for f in (R.least_squares, R.nearest_neighbours, R.averaging):
        assert f(*empty, q).item() == 0.0


def test_least_squares_is_exact_without_noise():
    x, y = _tasks(points=8, noise=0.0)
    errors = R.errors_by_k(R.least_squares, x.double(), y.double())
    assert errors[3:].max() < 1e-12 and errors[1] > 0.1  # d = 3 points determine w


def test_regressor_is_causal_and_shaped():
    config = R.RegressionConfig(dim=2, points=5, n_layer=1, n_head=2, n_embd=8, steps=1)
    model = R.InContextRegressor(config).eval()
    x, y = _tasks(n=2, points=5, dim=2)
    out = model(x, y)
    assert out.shape == (2, 5)
    y2 = y.clone()
    y2[:, 3] += 10.0  # y_3 may change the predictions of x_4 only
    changed = (model(x, y2) - out).abs().amax(dim=0) > 1e-6
    assert changed.tolist() == [False, False, False, False, True]


def test_config_checks_and_a_short_training_run(tmp_path):
    with pytest.raises(ValueError, match="dim must be <= 5"):
        R.RegressionConfig(dim=6)
    with pytest.raises(ValueError, match="noise"):
        R.RegressionConfig(noise=-1.0)
    config = R.RegressionConfig(dim=2, points=5, n_layer=1, n_head=2, n_embd=16, steps=30, batch_size=16)
    model, history = R.train_regressor(config, eval_every=10, show_progress=False)
    assert [h["step"] for h in history] == [10, 20, 30]
    x, y = _tasks(n=50, points=5, dim=2)
    errors = R.all_errors(model, x, y)
    assert set(errors) == {"transformer", "least squares", "ridge (Bayes-optimal)", "3 nearest neighbours",
                           "averaging"} and all(len(v) == 5 for v in errors.values())


def test_shipped_regression_result_meets_its_target():
    model, manifest = R.load("icl-regression")
    d = manifest["config"]["dim"]
    errors = manifest["errors"]
    assert manifest["eval_prompts"] >= 1000
    assert errors["transformer"][2 * d] <= 1.5 * errors["least squares"][2 * d]
    assert errors["transformer"][2 * d] < min(errors["3 nearest neighbours"][2 * d], errors["averaging"][2 * d])
    # the weights reproduce the shipped curve
    x, y = R.sample_tasks(manifest["eval_prompts"], model.config.points, d, model.config.noise,
                          generator=torch.Generator().manual_seed(manifest["eval_seed"]))
    assert R.all_errors(model, x, y)["transformer"] == pytest.approx(errors["transformer"], rel=1e-3, abs=1e-4)
