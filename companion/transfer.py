"""Feature-based transfer: frozen GPT features, pooled, and the heads trained on them.

    batch = encode(tokenizer, texts, max_tokens=48)               # padded ids, mask of real tokens
    feats = features(model, batch)                                # (n_layer + 1, N, C): mean over real tokens
    head = fit_linear(feats[2][train], labels[train])             # a linear probe on layer 2
    accuracy(head.predict(feats[2][test]), labels[test])

* `features` runs the model once for all its layers (`GPT.hidden_states`) and caches the result in memory,
  keyed by the model's and the batch's checksums, so every head and every layer reuses one forward pass.
* Token-level tasks pass ``positions``: the feature of each labelled token instead of a pooled one.
* Heads: `fit_linear` (a logistic probe, L-BFGS on standardised features; with ``loss="squared"`` it is
  ridge regression and equals the closed form), `concat_last` (the last k layers side by side), `fit_scalar_mix`
  (ELMo's softmax-weighted sum of all layers, learned with the head), `fit_bigru` (a small bidirectional head
  over the frozen token features), and `ngram_features` for the bag-of-n-grams baseline.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from companion.checks import positive_int
from companion.files import atomic_write, sha256_hex
from companion.gpt import GPT

IGNORE = -100  # the label of a token that is not scored


@dataclass
class Batch:
    """Token ids (N, T) right-padded with 0, the mask of real tokens, and token labels (IGNORE if unscored)."""

    ids: torch.Tensor
    mask: torch.Tensor
    token_labels: torch.Tensor | None = None

    def checksum(self) -> str:
        parts = [self.ids, self.mask] + ([self.token_labels] if self.token_labels is not None else [])
        digest = hashlib.sha256()
        for t in parts:
            digest.update(str(tuple(t.shape)).encode())
            digest.update(t.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def __len__(self) -> int:
        return self.ids.shape[0]

    def select(self, index: Sequence[int] | torch.Tensor) -> Batch:
        index = torch.as_tensor(index, dtype=torch.long)
        labels = None if self.token_labels is None else self.token_labels[index]
        return Batch(self.ids[index], self.mask[index], labels)


def first_subtokens(tokenizer, text: str, spans: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """The ids of ``text`` and, for each (start, end) character span, the index of the token holding its start."""
    tokens = tokenizer.tokens(text)  # byte-level strings: one character per byte
    ends = list(_cumulative(len(t) for t in tokens))
    positions = [bisect.bisect_right(ends, len(text[:start].encode("utf-8"))) for start, _ in spans]
    return tokenizer.encode(text), positions


def _cumulative(values):
    total = 0
    for v in values:
        total += v
        yield total


def encode(tokenizer, texts: Sequence[str], max_tokens: int = 48, *, spans=None, labels=None) -> Batch:
    """Encode ``texts`` into one right-padded batch of at most ``max_tokens`` tokens each.

    With ``spans`` and ``labels`` (per text, a word's character span and its tag), the batch also holds token
    labels: each word's tag at its first sub-token, IGNORE elsewhere; words cut off by ``max_tokens`` drop out.
    """
    positive_int(max_tokens, "max_tokens")
    rows, tags = [], []
    for i, text in enumerate(texts):
        if spans is None:
            rows.append(tokenizer.encode(text)[:max_tokens] or [0])
            continue
        ids, positions = first_subtokens(tokenizer, text, spans[i])
        ids = ids[:max_tokens]
        row = [IGNORE] * len(ids)
        for p, label in zip(positions, labels[i], strict=True):
            if p < len(ids):
                row[p] = label
        rows.append(ids)
        tags.append(row)
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    token_labels = torch.full((len(rows), width), IGNORE, dtype=torch.long) if spans is not None else None
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = True
        if token_labels is not None:
            token_labels[i, :len(row)] = torch.tensor(tags[i])
    return Batch(ids, mask, token_labels)


def pool(states: torch.Tensor, mask: torch.Tensor, how: str = "mean") -> torch.Tensor:
    """(…, B, T, C) -> (…, B, C): the mean over real tokens, or the last real token's state."""
    if how == "mean":
        weights = mask.to(states.dtype).unsqueeze(-1)
        return (states * weights).sum(-2) / weights.sum(-2).clamp_min(1)
    if how == "last":
        last = mask.sum(-1) - 1
        index = last.view(*([1] * (states.dim() - 3)), -1, 1, 1).expand(*states.shape[:-2], 1, states.shape[-1])
        return states.gather(-2, index).squeeze(-2)
    raise ValueError(f"how must be 'mean' or 'last', got {how!r}")


def model_checksum(model: nn.Module) -> str:
    """sha256 of a model's parameter names and values: the cache key of its features."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


_CACHE: dict[tuple, torch.Tensor] = {}


@torch.no_grad()
def features(model: GPT, batch: Batch, *, how: str = "mean", batch_size: int = 64,
             cache_dir: str | os.PathLike | None = None) -> torch.Tensor:
    """Frozen features of every layer, (n_layer + 1, N, C), from one forward pass per mini-batch.

    Sequence batches are pooled (``how``); token batches (with ``token_labels``) give the feature of every
    scored token, in order, (n_layer + 1, number of scored tokens, C). Cached in memory per (model, batch,
    how), and with ``cache_dir`` also on disk (a safetensors file named by those checksums, written atomically).
    """
    positive_int(batch_size, "batch_size")
    key = (model_checksum(model), batch.checksum(), how)
    if key in _CACHE:
        return _CACHE[key]
    path = None if cache_dir is None else Path(cache_dir) / f"features-{sha256_hex('-'.join(key))[:32]}.safetensors"
    if path is not None and path.is_file():
        _CACHE[key] = load_safetensors(path.read_bytes())["features"]
        return _CACHE[key]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    lengths = batch.mask.sum(1)
    order = torch.argsort(lengths, descending=True)  # batches of similar length waste little on padding
    outputs: list[torch.Tensor | None] = [None] * len(batch)
    for start in range(0, len(batch), batch_size):
        rows = order[start:start + batch_size]
        width = int(lengths[rows].max())
        ids, mask = batch.ids[rows, :width].to(device), batch.mask[rows, :width].to(device)
        states = torch.stack(model.hidden_states(ids)).float().cpu()  # (L + 1, b, t, C)
        for j, row in enumerate(rows.tolist()):
            if batch.token_labels is None:
                outputs[row] = pool(states[:, j], mask[j].cpu(), how)
            else:
                outputs[row] = states[:, j, batch.token_labels[row, :width] != IGNORE]
    model.train(was_training)
    result = torch.stack(outputs, dim=1) if batch.token_labels is None else torch.cat(outputs, dim=1)
    _CACHE[key] = result
    if path is not None:
        atomic_write(path, save_safetensors({"features": result.contiguous()}))
    return result


def scored_labels(batch: Batch) -> torch.Tensor:
    """The labels of the scored tokens of a token batch, in the order `features` returns them."""
    return batch.token_labels[batch.token_labels != IGNORE]


# ---------------------------------------------------------------------------------------------------------
# Heads on frozen features


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
