"""Feature-based transfer: frozen GPT features, pooled, and the heads trained on them.

    batch = encode(tokenizer, texts, max_tokens=48)               # padded ids, mask of real tokens
    feats = features(model, batch)                                # (n_layer + 1, N, C): mean over real tokens
    head = fit_linear(feats[2][train], labels[train])             # a linear probe on layer 2
    accuracy(head.predict(feats[2][test]), labels[test])

* `features` runs the model once for all its layers (`GPT.hidden_states`) and caches the result in memory,
  keyed by the model's and the batch's checksums, so every head and every layer reuses one forward pass.
* Token-level tasks pass ``positions``: the feature of each labelled token instead of a pooled one.
* The heads (`fit_linear`, `concat_last`, `fit_scalar_mix`, `fit_bigru`), the bag-of-n-grams baseline and
  the scores live in `companion.transfer_heads`; this module re-exports them, so ``tr.fit_linear`` works.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from companion.checks import positive_int
from companion.files import atomic_write, sha256_hex
from companion.gpt import GPT
from companion.gpt import IGNORE as IGNORE
from companion.transfer_heads import BiGRUTagger as BiGRUTagger
from companion.transfer_heads import LinearHead as LinearHead
from companion.transfer_heads import ScalarMix as ScalarMix
from companion.transfer_heads import accuracy as accuracy
from companion.transfer_heads import concat_last as concat_last
from companion.transfer_heads import f1 as f1
from companion.transfer_heads import fit_bigru as fit_bigru
from companion.transfer_heads import fit_linear as fit_linear
from companion.transfer_heads import fit_scalar_mix as fit_scalar_mix
from companion.transfer_heads import ngram_features as ngram_features
from companion.transfer_heads import ngram_vocab as ngram_vocab
from companion.transfer_heads import ridge as ridge


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
