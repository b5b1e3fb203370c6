"""The same K labelled examples used in context and used for fine-tuning, in and out of distribution.

    x, y = ood.shifted_tasks(2000, points=10, dim=3, noise=0.5, scale=3.0, generator=g)   # x ~ N(0, 9 I)
    w = ood.fine_tune_linear(x[:, :6], y[:, :6], lam=0.25)      # gradient descent on the 6 examples, from w = 0
    ood.compare(model, k=6, scales=(1.0, 3.0))                  # errors of both, per input scale

The learner that reads its examples in context is `companion.icl_regression`'s transformer, meta-trained by
an outer loop of SGD over many regression tasks with inputs ``x ~ N(0, I)``; its inner loop is one forward
pass. The learner that is fine-tuned starts from the prior's weights ``w = 0`` and takes gradient steps on
the same K examples (squared error plus ``lam |w|^2``, the prior as weight decay); run long enough it lands on
ridge regression. Out of distribution means larger inputs, ``x ~ N(0, scale^2 I)``, with the same kind of
weights and noise.
"""

from __future__ import annotations

import torch

from companion.checks import positive_int
from companion.icl_regression import InContextRegressor, ridge


def shifted_tasks(n: int, points: int, dim: int, noise: float, *, scale: float = 1.0,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` prompts as in `icl_regression.sample_tasks`, but with inputs ``x ~ N(0, scale^2 I)``.

    ``scale = 1`` is the training distribution; ``w ~ N(0, I)`` and the noise are unchanged, so the labels'
    variance is ``scale^2 dim + noise^2``.
    """
    for value, name in ((n, "n"), (points, "points"), (dim, "dim")):
        positive_int(value, name)
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    w = torch.randn(n, dim, generator=generator)
    x = scale * torch.randn(n, points, dim, generator=generator)
    y = (x @ w[:, :, None])[:, :, 0] + noise * torch.randn(n, points, generator=generator)
    return x, y


def fine_tune_linear(X: torch.Tensor, Y: torch.Tensor, *, lam: float, steps: int = 500) -> torch.Tensor:
    """Weights (n, d) after ``steps`` of full-batch gradient descent on ``|X w - Y|^2 + lam |w|^2`` from w = 0.

    One task per row of ``X`` (n, k, d) and ``Y`` (n, k). The step size of each task is 1 / L, with L the
    largest curvature ``2 (largest eigenvalue of X^T X + lam)``, so the descent converges on every input
    scale without tuning; the limit is ridge regression.
    """
    positive_int(steps, "steps")
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    if X.dim() != 3 or Y.shape != X.shape[:2]:
        raise ValueError(f"X must be (n, k, d) and Y (n, k), got {tuple(X.shape)} and {tuple(Y.shape)}")
    gram = X.transpose(1, 2) @ X
    curvature = 2 * (torch.linalg.eigvalsh(gram)[:, -1] + lam)
    rate = (1 / curvature.clamp_min(1e-12))[:, None]
    w = torch.zeros(X.shape[0], X.shape[2], dtype=X.dtype)
    for _ in range(steps):
        residual = (X @ w[:, :, None])[:, :, 0] - Y
        gradient = 2 * (X.transpose(1, 2) @ residual[:, :, None])[:, :, 0] + 2 * lam * w
        w = w - rate * gradient
    return w


@torch.no_grad()
def compare(model: InContextRegressor, k: int, scales: tuple[float, ...] = (1.0, 2.0, 3.0), *, n: int = 2000,
            seed: int = 0, steps: int = 500) -> list[dict]:
    """For each input scale, the mean squared error on the query after ``k`` examples of each learner.

    Rows: ``scale``, ``in_context`` (the transformer reading the k examples), ``fine_tuned``
    (`fine_tune_linear` on the same k examples, ``lam = noise^2``), ``ridge`` (its closed-form limit) and
    ``label_variance`` (the error of always predicting 0), all on the same prompts.
    """
    config = model.config
    if not 0 < k < config.points:
        raise ValueError(f"k must be in 1..{config.points - 1}, got {k}")
    rows = []
    for i, scale in enumerate(scales):
        x, y = shifted_tasks(n, config.points, config.dim, config.noise, scale=scale,
                             generator=torch.Generator().manual_seed(seed * 1000 + i))
        in_context = ((model(x, y)[:, k] - y[:, k]) ** 2).mean()
        X, Y, query = x[:, :k].double(), y[:, :k].double(), x[:, k].double()
        w = fine_tune_linear(X, Y, lam=config.noise**2, steps=steps)
        fine_tuned = (((query * w).sum(1) - y[:, k].double()) ** 2).mean()
        closed = ((ridge(X, Y, query, config.noise**2) - y[:, k].double()) ** 2).mean()
        rows.append({"scale": scale, "in_context": float(in_context), "fine_tuned": float(fine_tuned),
                     "ridge": float(closed), "label_variance": float((y[:, k] ** 2).mean())})
    return rows
