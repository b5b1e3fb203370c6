"""Measuring a language model on a corpus: token ids, evaluation windows, loss and perplexity.

* `tokenize_cached`: a corpus as one array of token ids, cached on disk so that training and every
  later evaluation tokenize it once.
* `eval_windows`: evenly spaced windows over the ids; the same windows every time, so two loss
  estimates differ only because the model did.
* `estimate_loss`: the model's mean next-token cross-entropy (nats) over those windows.
* `unigram_loss`: the baseline a model must beat, token frequencies alone.
* `evaluate`: held-out perplexity of a model beside the unigram model's (`evaluate_on_corpus`
  scores a model on this Python's corpus; `python -m companion.train` reports `evaluate` at the end of a run).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import torch

from companion.files import atomic_write, sha256_hex
from companion.gpt import GPT, lm_loss


def tokenize_cached(texts: list[str], tokenizer, cache_dir: str | Path) -> np.ndarray:
    """All texts encoded and joined with a blank line between them, as uint16/int32 ids.

    Cached as .npy (no pickle) under a name made of the corpus checksum and the tokenizer's hash,
    so a changed corpus or tokenizer never reuses stale ids.
    """
    from companion.data import corpus_checksum

    tokenizer_hash = sha256_hex(json.dumps(json.loads(tokenizer.to_json()), sort_keys=True))
    path = Path(cache_dir) / f"tokens-{corpus_checksum(texts)[:16]}-{tokenizer_hash[:16]}.npy"
    if path.exists():
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, EOFError, OSError):
            pass  # damaged: tokenize again below
    ids = [i for encoded in tokenizer.encode_batch([text + "\n\n" for text in texts]) for i in encoded]
    array = np.asarray(ids, dtype=np.uint16 if max(ids, default=0) < 2**16 else np.int32)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write(path, buffer.getvalue())
    return array


def eval_windows(ids: np.ndarray, block_size: int, max_tokens: int | None = None) -> torch.Tensor:
    """Evenly spaced windows (block_size + 1 tokens) over the whole array, for a loss estimate."""
    if len(ids) <= block_size:
        raise ValueError(f"ids must hold more than block_size={block_size} tokens, got {len(ids)}")
    count = (len(ids) - 1) // block_size
    if max_tokens is not None:
        count = min(count, max(1, max_tokens // block_size))
    starts = np.linspace(0, len(ids) - block_size - 1, count).astype(np.int64)
    return torch.from_numpy(np.stack([ids[s: s + block_size + 1].astype(np.int64) for s in starts]))


@torch.no_grad()
def estimate_loss(model: GPT, windows: torch.Tensor, batch_size: int = 32) -> float:
    """Mean next-token loss (nats) of ``model`` over ``windows``, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for i in range(0, len(windows), batch_size):
        chunk = windows[i: i + batch_size].to(device)
        total += lm_loss(model(chunk[:, :-1]), chunk[:, 1:]).item() * len(chunk)
    model.train(was_training)
    return total / len(windows)


def unigram_loss(train_ids: np.ndarray, valid_ids: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy (nats) on ``valid_ids`` of token frequencies counted on ``train_ids`` (add-one smoothing)."""
    counts = np.bincount(train_ids.astype(np.int64), minlength=vocab_size) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(-log_p[valid_ids.astype(np.int64)].mean())


def evaluate(model: GPT, train_ids: np.ndarray, valid_ids: np.ndarray, *, verbose: bool = True) -> dict:
    """Perplexity of ``model`` on every window of the held-out ids, beside a unigram model's perplexity."""
    model_loss = estimate_loss(model, eval_windows(valid_ids, model.config.block_size))
    base = unigram_loss(train_ids, valid_ids, model.config.vocab_size)
    result = {"valid_loss": model_loss, "perplexity": math.exp(model_loss),
              "unigram_loss": base, "unigram_perplexity": math.exp(base),
              "ratio": math.exp(model_loss - base)}
    if verbose:
        print(f"held-out perplexity: model {result['perplexity']:.2f}, unigram {result['unigram_perplexity']:.2f},"
              f" ratio {result['ratio']:.3f}")
    return result


def evaluate_on_corpus(model: GPT, tokenizer) -> dict:
    """`evaluate` on this Python's pretraining text: the unigram model counts the training split's tokens;
    both are scored on the held-out modules (`companion.data.pretraining_texts`)."""
    from companion import data

    train_ids = tokenize_cached(data.pretraining_texts("train"), tokenizer, data.cache_dir())
    valid_ids = tokenize_cached(data.pretraining_texts("valid"), tokenizer, data.cache_dir())
    return evaluate(model, train_ids, valid_ids)
