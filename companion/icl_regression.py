"""Linear regression learned in context (Garg et al. 2022), and the estimators it is measured against.

Each prompt is a fresh task: ``w ~ N(0, I_d)``, points ``x_i ~ N(0, I_d)``, labels ``y_i = w . x_i + e_i``
with noise ``e_i ~ N(0, noise^2)``. A small transformer reads ``x_1, y_1, ..., x_k, y_k, x_query`` and
predicts ``y_query``; trained over many tasks, it must estimate ``w`` from the prompt alone. Baselines:

* `least_squares` (minimum-norm when ``k < d``), `ridge` (with ``lam = noise^2`` the Bayes-optimal
  estimate under this prior), `nearest_neighbours` (mean label of the closest points), `averaging`
  (``w = mean(y_i x_i)``).

    python -m companion.icl_regression --out companion/results/icl-regression    # about 5 minutes on a CPU
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from companion.checks import positive_int
from companion.folders import read_folder, shipped, write_folder
from companion.gpt import Block, GPTConfig


@dataclass(frozen=True)
class RegressionConfig:
    """The task family and the model that learns it in context."""

    dim: int = 3  # d, the dimension of x
    points: int = 10  # examples per prompt: predictions are made after k = 0 .. points - 1 of them
    noise: float = 0.5  # standard deviation of the label noise
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 64
    steps: int = 4000
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("dim", "points", "n_layer", "n_head", "n_embd", "steps", "batch_size"):
            positive_int(getattr(self, name), name)
        if self.dim > 5:
            raise ValueError(f"dim must be <= 5, got {self.dim}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")


def sample_tasks(n: int, points: int, dim: int, noise: float, *, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` prompts: points (n, points, dim) and their noisy labels (n, points), each with its own w."""
    w = torch.randn(n, dim, generator=generator)
    x = torch.randn(n, points, dim, generator=generator)
    y = (x @ w[:, :, None])[:, :, 0] + noise * torch.randn(n, points, generator=generator)
    return x, y


# ------------------------------------------------------------------------------------------------
# Baselines: each maps examples X (n, k, d), Y (n, k) and queries (n, d) to predictions (n,)


def least_squares(X: torch.Tensor, Y: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Predict with the least-squares w (the minimum-norm one when the k points do not determine it)."""
    if X.shape[1] == 0:
        return torch.zeros(len(query), dtype=query.dtype)
    w = torch.linalg.pinv(X) @ Y[:, :, None]
    return (query[:, None] @ w)[:, 0, 0]


def ridge(X: torch.Tensor, Y: torch.Tensor, query: torch.Tensor, lam: float) -> torch.Tensor:
    """Predict with ``w = (X^T X + lam I)^-1 X^T y``; ``lam = noise^2`` is Bayes-optimal for w ~ N(0, I)."""
    d = query.shape[1]
    gram = X.transpose(1, 2) @ X + lam * torch.eye(d, dtype=X.dtype)
    w = torch.linalg.solve(gram, X.transpose(1, 2) @ Y[:, :, None])
    return (query[:, None] @ w)[:, 0, 0]


def nearest_neighbours(X: torch.Tensor, Y: torch.Tensor, query: torch.Tensor, neighbours: int = 3) -> torch.Tensor:
    """The mean label of the ``neighbours`` examples closest to the query (all of them if fewer)."""
    positive_int(neighbours, "neighbours")
    if X.shape[1] == 0:
        return torch.zeros(len(query), dtype=query.dtype)
    distances = (X - query[:, None]).norm(dim=2)
    nearest = distances.topk(min(neighbours, X.shape[1]), largest=False).indices
    return Y.gather(1, nearest).mean(dim=1)


def averaging(X: torch.Tensor, Y: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Predict with ``w = mean_i y_i x_i``, unbiased for isotropic x (Garg et al.'s averaging baseline)."""
    if X.shape[1] == 0:
        return torch.zeros(len(query), dtype=query.dtype)
    w = (Y[:, :, None] * X).mean(dim=1)
    return (query * w).sum(dim=1)


# ------------------------------------------------------------------------------------------------
# The transformer


class InContextRegressor(nn.Module):
    """A causal transformer over the tokens x_1, y_1, x_2, y_2, ...; at each x_i it predicts y_i.

    A token is ``(x, y, is_query)``: the query token of x_i is ``(x_i, 0, 1)``, the example token that follows
    it ``(x_i, y_i, 0)`` (carrying x_i again, so every example is one token and no head has to bring x_i and
    y_i together first). The blocks are the course GPT's (`companion.gpt.Block`), causal, so the prediction
    at x_i sees only x_1 .. x_i and y_1 .. y_{i-1}.
    """

    def __init__(self, config: RegressionConfig):
        super().__init__()
        gpt = GPTConfig(vocab_size=1, block_size=2 * config.points, n_layer=config.n_layer,
                        n_head=config.n_head, n_embd=config.n_embd)
        self.config = config
        self.read_in = nn.Linear(config.dim + 2, config.n_embd)
        self.wpe = nn.Embedding(2 * config.points, config.n_embd)
        self.blocks = nn.ModuleList([Block(gpt) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.read_out = nn.Linear(config.n_embd, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Predictions (n, points): entry i is the estimate of y_i from x_i and the i examples before it."""
        n, points, d = x.shape
        tokens = torch.zeros(n, 2 * points, d + 2, device=x.device)
        tokens[:, 0::2, :d] = x
        tokens[:, 0::2, d + 1] = 1.0
        tokens[:, 1::2, :d] = x
        tokens[:, 1::2, d] = y
        h = self.read_in(tokens) + self.wpe(torch.arange(2 * points, device=x.device))
        for block in self.blocks:
            h, _ = block(h)
        return self.read_out(self.ln_f(h))[:, 0::2, 0]


def errors_by_k(predict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error against the noisy label at each k = 0 .. points - 1 (``predict(X, Y, query)``)."""
    return torch.stack([((predict(x[:, :k], y[:, :k], x[:, k]) - y[:, k]) ** 2).mean()
                        for k in range(x.shape[1])])


def all_errors(model: InContextRegressor, x: torch.Tensor, y: torch.Tensor) -> dict[str, list[float]]:
    """Each estimator's error against k on the same prompts: transformer, the four baselines."""
    noise = model.config.noise
    with torch.no_grad():
        transformer = ((model(x, y) - y) ** 2).mean(dim=0)
    x64, y64 = x.double(), y.double()
    curves = {"transformer": transformer,
              "least squares": errors_by_k(least_squares, x64, y64),
              "ridge (Bayes-optimal)": errors_by_k(lambda X, Y, q: ridge(X, Y, q, noise ** 2), x64, y64),
              "3 nearest neighbours": errors_by_k(nearest_neighbours, x64, y64),
              "averaging": errors_by_k(averaging, x64, y64)}
    return {name: [round(float(v), 5) for v in curve] for name, curve in curves.items()}


def train_regressor(config: RegressionConfig, *, eval_every: int = 100, show_progress: bool = True
                    ) -> tuple[InContextRegressor, list[dict]]:
    """AdamW on fresh tasks every step (drawn from ``(seed, step)``); logs the error at k = d and 2d."""
    torch.manual_seed(config.seed)
    model = InContextRegressor(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.steps, pct_start=0.05)
    probe = sample_tasks(1000, config.points, config.dim, config.noise, generator=torch.Generator().manual_seed(999))
    history = []
    for step in tqdm(range(config.steps), disable=not show_progress, ascii=True, ncols=100, mininterval=1.0):
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        x, y = sample_tasks(config.batch_size, config.points, config.dim, config.noise, generator=generator)
        loss = ((model(x, y) - y) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedule.step()
        if (step + 1) % eval_every == 0 or step + 1 == config.steps:
            with torch.no_grad():
                errors = ((model(*probe) - probe[1]) ** 2).mean(dim=0)
            history.append({"step": step + 1, "train_loss": round(loss.item(), 5),
                            f"mse_k{config.dim}": round(errors[config.dim].item(), 5),
                            f"mse_k{2 * config.dim}": round(errors[2 * config.dim].item(), 5)})
    return model.eval(), history


def load(name_or_folder: str | Path = "icl-regression") -> tuple[InContextRegressor, dict]:
    """The shipped regression model (or one in a folder) and its manifest, checksums verified."""
    folder = read_folder(shipped("results", name_or_folder) if isinstance(name_or_folder, str)
                         and not Path(name_or_folder).is_dir() else Path(name_or_folder))
    model = InContextRegressor(RegressionConfig(**folder.manifest["config"]))
    model.load_state_dict(folder.tensors)
    return model.eval(), folder.manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m companion.icl_regression", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=RegressionConfig.steps)
    parser.add_argument("--eval-prompts", type=int, default=2000, help="prompts for the final error curves")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = RegressionConfig(steps=args.steps)
    started = time.perf_counter()
    model, history = train_regressor(config)
    minutes = (time.perf_counter() - started) / 60
    x, y = sample_tasks(args.eval_prompts, config.points, config.dim, config.noise,
                        generator=torch.Generator().manual_seed(12345))
    manifest = {"name": "icl-regression", "config": asdict(config), "history": history,
                "errors": all_errors(model, x, y), "eval_prompts": args.eval_prompts, "eval_seed": 12345,
                "train_minutes": round(minutes, 1), "torch_version": torch.__version__,
                "command": "python -m companion.icl_regression " + shlex.join(argv)}
    write_folder(args.out, manifest, tensors=model.state_dict())
    print(f"wrote {args.out} in {minutes:.1f} min")


if __name__ == "__main__":
    main()
