"""Heads trained on frozen features, the bag-of-n-grams baseline, and the scores (`companion.transfer` re-exports
all of them).

* `fit_linear`: a logistic probe, L-BFGS on standardised features; with ``loss="squared"`` it is ridge
  regression and equals the closed form `ridge`.
* `concat_last`: the last k layers side by side. `fit_scalar_mix`: ELMo's softmax-weighted sum of all layers,
  learned with the head. `fit_bigru`: a small bidirectional GRU over frozen token features.
* `ngram_vocab` and `ngram_features`: with `fit_linear`, a logistic bag-of-n-grams classifier.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from companion.checks import positive_int
from companion.gpt import IGNORE  # the label of a token that is not scored


class LinearHead(nn.Module):
    """Standardise the features with the training set's mean and spread, then one linear layer."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, n_out: int):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.linear = nn.Linear(mean.shape[-1], n_out, dtype=mean.dtype)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.std)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).argmax(-1)


def _lbfgs(params, loss_fn, steps: int) -> None:
    optimizer = torch.optim.LBFGS(params, max_iter=steps, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    optimizer.step(closure)


def fit_linear(x: torch.Tensor, y: torch.Tensor, n_classes: int | None = None, *, l2: float = 1e-2,
               loss: str = "logistic", steps: int = 200) -> LinearHead:
    """A linear probe: minimise mean loss + l2/2 ||W||^2 (bias free) on standardised features, by L-BFGS.

    ``loss="logistic"``: softmax cross-entropy on class indices ``y``. ``loss="squared"``: half the mean
    squared error against ``y`` read as targets (N, K): ridge regression.
    """
    if x.dim() != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x must be (N, C) with N = len(y), got {tuple(x.shape)} and {len(y)} labels")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    if loss == "logistic":
        n_out = n_classes or int(y.max()) + 1
        target_loss = lambda out: F.cross_entropy(out, y)  # noqa: E731
    elif loss == "squared":
        n_out = y.shape[1]
        target_loss = lambda out: 0.5 * ((out - y) ** 2).sum(1).mean()  # noqa: E731
    else:
        raise ValueError(f"loss must be 'logistic' or 'squared', got {loss!r}")
    head = LinearHead(mean, std, n_out)
    _lbfgs(list(head.linear.parameters()),
           lambda: target_loss(head(x)) + 0.5 * l2 * head.linear.weight.pow(2).sum(), steps)
    return head.eval()


def ridge(x: torch.Tensor, y: torch.Tensor, l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form ridge on standardised features, unpenalised bias: W = (Xc'Xc/n + l2 I)^-1 Xc'Yc/n."""
    xs = (x - x.mean(0)) / x.std(0, unbiased=False).clamp_min(1e-6)
    n = x.shape[0]
    yc = y - y.mean(0)
    weight = torch.linalg.solve(xs.T @ xs / n + l2 * torch.eye(x.shape[1], dtype=x.dtype), xs.T @ yc / n)
    return weight.T, y.mean(0)


def concat_last(feats: torch.Tensor, k: int) -> torch.Tensor:
    """(L + 1, N, C) -> (N, k C): the last ``k`` layers side by side."""
    positive_int(k, "k")
    if k > feats.shape[0]:
        raise ValueError(f"k must be <= the {feats.shape[0]} layers, got {k}")
    return torch.cat(list(feats[-k:]), dim=-1)


class ScalarMix(nn.Module):
    """ELMo: gamma * sum_j softmax(s)_j * h_j over all layers, followed by a linear head."""

    def __init__(self, feats: torch.Tensor, n_classes: int):
        super().__init__()
        self.register_buffer("mean", feats.mean(1, keepdim=True))
        self.register_buffer("std", feats.std(1, unbiased=False, keepdim=True).clamp_min(1e-6))
        self.scalars = nn.Parameter(torch.zeros(feats.shape[0]))
        self.gamma = nn.Parameter(torch.ones(()))
        self.linear = nn.Linear(feats.shape[-1], n_classes)
        nn.init.zeros_(self.linear.weight)  # a deterministic start: the fit is not convex
        nn.init.zeros_(self.linear.bias)

    def weights(self) -> torch.Tensor:
        return self.scalars.softmax(0)

    def mix(self, feats: torch.Tensor) -> torch.Tensor:
        normed = (feats - self.mean) / self.std  # each layer on the same scale, as ELMo's layer norm option
        return self.gamma * torch.einsum("l,lnc->nc", self.weights(), normed)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.linear(self.mix(feats))

    @torch.no_grad()
    def predict(self, feats: torch.Tensor) -> torch.Tensor:
        return self(feats).argmax(-1)


def fit_scalar_mix(feats: torch.Tensor, y: torch.Tensor, n_classes: int | None = None, *, l2: float = 1e-2,
                   mix_l2: float = 0.1, steps: int = 200) -> ScalarMix:
    """Learn the layer weights and the linear head together (L-BFGS, l2 on the head's weights).

    ``mix_l2`` pulls the scalars towards 0, that is the weights towards equal (ELMo's regulariser; the paper
    compares 0.001 and 1): without it the fit puts all weight on whichever layer fits the training set best.
    gamma stays 1: before a linear head it is redundant, and a free gamma would let the head grow its
    outputs without paying the l2 penalty (large gamma, small weights), that is, without regularisation.
    """
    head = ScalarMix(feats, n_classes or int(y.max()) + 1)
    head.gamma.requires_grad_(False)
    _lbfgs([head.scalars, *head.linear.parameters()],
           lambda: (F.cross_entropy(head(feats), y) + 0.5 * l2 * head.linear.weight.pow(2).sum()
                    + 0.5 * mix_l2 * head.scalars.pow(2).sum()), steps)
    return head.eval()


class BiGRUTagger(nn.Module):
    """A small bidirectional GRU over frozen token features: each token sees its right context too."""

    def __init__(self, n_embd: int, n_classes: int, hidden: int = 64):
        super().__init__()
        self.norm = nn.LayerNorm(n_embd)
        self.rnn = nn.GRU(n_embd, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, n_classes)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(self.norm(states))[0])


def fit_bigru(states: torch.Tensor, labels: torch.Tensor, n_classes: int = 2, *, epochs: int = 10,
              lr: float = 3e-3, seed: int = 0, batch_size: int = 32) -> BiGRUTagger:
    """Train `BiGRUTagger` on (N, T, C) frozen states and (N, T) labels (IGNORE where unscored) with Adam."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = BiGRUTagger(states.shape[-1], n_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(positive_int(epochs, "epochs")):
        for rows in torch.randperm(len(states), generator=generator).split(batch_size):
            logits = model(states[rows])
            loss = F.cross_entropy(logits.reshape(-1, n_classes), labels[rows].reshape(-1), ignore_index=IGNORE)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


# ---------------------------------------------------------------------------------------------------------
# The bag-of-n-grams baseline and the scores


def _ngrams(text: str, n: int) -> list[str]:
    words = text.lower().split()
    return [" ".join(words[i:i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1)]


def ngram_vocab(texts: Sequence[str], n: int = 2, max_size: int = 20000) -> dict[str, int]:
    """The ``max_size`` most frequent word n-grams (1 to ``n`` words, lowercased) of ``texts``."""
    counts = Counter(g for t in texts for g in set(_ngrams(t, n)))
    ranked = sorted(counts, key=lambda g: (-counts[g], g))[:max_size]
    return {g: i for i, g in enumerate(ranked)}


def ngram_features(texts: Sequence[str], vocab: dict[str, int], n: int = 2) -> torch.Tensor:
    """(N, |vocab|) presence of each n-gram: with `fit_linear`, a logistic bag-of-n-grams classifier."""
    x = torch.zeros(len(texts), len(vocab))
    for i, t in enumerate(texts):
        cols = [vocab[g] for g in set(_ngrams(t, n)) if g in vocab]
        x[i, cols] = 1.0
    return x


def accuracy(pred: torch.Tensor, gold: torch.Tensor) -> float:
    return (pred == gold).float().mean().item()


def f1(pred: torch.Tensor, gold: torch.Tensor, positive: int = 1) -> float:
    """F1 of the positive class: 2 TP / (2 TP + FP + FN) (0.0 when there is no positive at all)."""
    tp = ((pred == positive) & (gold == positive)).sum().item()
    wrong = ((pred == positive) != (gold == positive)).sum().item()
    return 2 * tp / (2 * tp + wrong) if tp or wrong else 0.0
