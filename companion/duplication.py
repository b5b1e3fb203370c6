"""The Reformer's duplication task (Kitaev et al. 2020, Table 2), small enough for a laptop.

Every sequence is ``0 w 0 w``: a separator 0, a random word ``w`` over the symbols ``1 .. vocab_size - 1``,
the separator again and the same word once more. The first half cannot be predicted; the second half can be
copied, token by token, from ``length / 2 - 1`` positions back. A language model learns the copy only if
each position of the second half can find its source, which for LSH attention means hashing the two into
one bucket. Evaluating one trained model with more hash rounds than it was trained with shows the effect of
``n_hashes`` alone (the paper's Table 2).

    python -m companion.duplication --out DIR      # train, evaluate at 1, 2, 4, 8 rounds, save

writes a result folder (`companion.folders`: ``model.safetensors`` and ``manifest.json`` with config, command,
seed, steps, time, accuracies).
The package ships such a result in ``companion/results/duplication``; `load_result` reads it back after
checking the sha256 of the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import folders
from .attention import LSHSelfAttention
from .checks import positive_int
from .device import get_device, make_generator
from .folders import read_folder, write_folder

EVAL_N_HASHES = (1, 2, 4, 8)


@dataclass
class DuplicationConfig:
    """Sizes of the task and of the model. ``length`` counts the whole ``0 w 0 w`` sequence."""

    vocab_size: int = 16
    length: int = 64
    dim: int = 64
    heads: int = 2
    layers: int = 1
    bucket_size: int = 8
    n_hashes: int = 2  # rounds used in training; evaluation may use others
    n_buckets: int | None = None  # None: companion.attention's default (about two buckets per chunk)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "length", "dim", "heads", "layers", "bucket_size", "n_hashes"):
            positive_int(getattr(self, name), name)
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 (the separator and a symbol), got {self.vocab_size}")
        if self.length < 4 or self.length % 2:
            raise ValueError(f"length must be even and >= 4, got {self.length}")
        if self.dim % self.heads:
            raise ValueError(f"dim must be divisible by heads, got dim={self.dim}, heads={self.heads}")


def make_batch(batch_size: int, length: int, vocab_size: int, *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
    """``(batch_size, length)`` sequences ``0 w 0 w`` with ``w`` uniform over ``1 .. vocab_size - 1``."""
    positive_int(batch_size, "batch_size")
    if length < 4 or length % 2:
        raise ValueError(f"length must be even and >= 4, got {length}")
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
    word = torch.randint(1, vocab_size, (batch_size, length // 2 - 1), generator=generator)
    zero = torch.zeros(batch_size, 1, dtype=torch.long)
    return torch.cat([zero, word, zero, word], dim=1).to(device or "cpu")


class FeedForward(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ReformerLayer(nn.Module):
    """Pre-LayerNorm residual layer: causal LSH self-attention, then a feed-forward network."""

    def __init__(self, config: DuplicationConfig) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(config.dim)
        self.attn = LSHSelfAttention(config.dim, config.heads, bucket_size=config.bucket_size,
                                     n_hashes=config.n_hashes, n_buckets=config.n_buckets, causal=True)
        self.norm_ff = nn.LayerNorm(config.dim)
        self.ff = FeedForward(config.dim)

    def forward(self, x: torch.Tensor, n_hashes: int | None, generator: torch.Generator | None) -> torch.Tensor:
        x = x + self.attn(self.norm_attn(x), n_hashes=n_hashes, generator=generator)
        return x + self.ff(self.norm_ff(x))


class ReformerLM(nn.Module):
    """A small causal language model whose only attention is LSH attention."""

    def __init__(self, config: DuplicationConfig, *, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        # nn.Linear draws its initial weights from torch's global generator: seed a private copy of it
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.token_embedding = nn.Embedding(config.vocab_size, config.dim)
            self.position_embedding = nn.Embedding(config.length, config.dim)
            self.layers = nn.ModuleList(ReformerLayer(config) for _ in range(config.layers))
            self.norm = nn.LayerNorm(config.dim)
            self.head = nn.Linear(config.dim, config.vocab_size)

    def forward(self, idx: torch.Tensor, *, n_hashes: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Next-token logits ``(B, T, vocab_size)``; ``n_hashes`` overrides the rounds of every layer."""
        if idx.dim() != 2 or idx.shape[1] > self.config.length:
            raise ValueError(f"idx must have shape (batch, T) with T <= {self.config.length}, got {tuple(idx.shape)}")
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.token_embedding(idx) + self.position_embedding(positions)
        for layer in self.layers:
            x = layer(x, n_hashes, generator)
        return self.head(self.norm(x))


def lm_loss(logits: torch.Tensor, sequences: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy over every position but the last (which has no next token)."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), sequences[:, 1:].reshape(-1))


@torch.no_grad()
def copy_accuracy(model: ReformerLM, sequences: torch.Tensor, *, n_hashes: int | None = None,
                  generator: torch.Generator | None = None) -> float:
    """Fraction of the copied word (second half after its separator) predicted exactly, greedily per token."""
    was_training = model.training
    model.eval()
    logits = model(sequences, n_hashes=n_hashes, generator=generator)
    model.train(was_training)
    half = sequences.shape[1] // 2
    predicted = logits[:, half:-1].argmax(dim=-1)  # the positions that predict w in the second half
    return (predicted == sequences[:, half + 1:]).double().mean().item()


@torch.no_grad()
def generated_accuracy(model: ReformerLM, sequences: torch.Tensor, *, n_hashes: int | None = None,
                       generator: torch.Generator | None = None) -> float:
    """Give the model ``0 w 0`` and let it write the copy greedily, one token at a time; the fraction right.

    Unlike `copy_accuracy` no later token is ever present, not even through the hash: with LSH attention
    the sort by bucket sees the whole sequence, so a later token's bucket can change which earlier keys a
    position meets (masking hides its value, not its effect on the chunks).
    """
    was_training = model.training
    model.eval()
    half = sequences.shape[1] // 2
    text = sequences[:, :half + 1]
    for _ in range(half - 1):
        logits = model(text, n_hashes=n_hashes, generator=generator)
        text = torch.cat([text, logits[:, -1:].argmax(dim=-1)], dim=1)
    model.train(was_training)
    return (text[:, half + 1:] == sequences[:, half + 1:]).double().mean().item()


def evaluate(model: ReformerLM, n_hashes: tuple[int, ...] = EVAL_N_HASHES, *, n_sequences: int = 512,
             seed: int = 1234, generate: bool = False) -> dict[int, float]:
    """Copy accuracy at each number of hash rounds, on the same seeded test sequences and rotations.

    ``generate=False``: one forward pass over whole sequences (`copy_accuracy`); ``True``: the model writes
    the copy itself (`generated_accuracy`, about ``length / 2`` passes).
    """
    device = next(model.parameters()).device
    sequences = make_batch(n_sequences, model.config.length, model.config.vocab_size,
                           generator=make_generator(seed), device=device)
    accuracy = generated_accuracy if generate else copy_accuracy
    return {n: accuracy(model, sequences, n_hashes=n, generator=make_generator(seed + n)) for n in n_hashes}


def train(config: DuplicationConfig, *, steps: int = 1000, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
          device: torch.device | str | None = None, show_progress: bool = True
          ) -> tuple[ReformerLM, list[float]]:
    """Train a `ReformerLM` on fresh random batches; return it (in eval mode) and the loss of every step.

    Adam with a short linear warm-up and a linear decay to zero; the data and the hash rotations come from
    their own seeded CPU generators, so a seed gives the same run.
    """
    positive_int(steps, "steps")
    device = torch.device(device) if device is not None else get_device()
    model = ReformerLM(config, seed=seed).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup + 1))))
    data_generator, hash_generator = make_generator(seed), make_generator(seed + 1)
    losses = []
    model.train()
    bar = tqdm(range(steps), desc="duplication", ascii=True, disable=not show_progress, file=sys.stdout)
    for _ in bar:
        sequences = make_batch(batch_size, config.length, config.vocab_size, generator=data_generator,
                               device=device)
        loss = lm_loss(model(sequences, generator=hash_generator), sequences)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return model.eval(), losses


def save_result(model: ReformerLM, out: str | os.PathLike, info: dict) -> dict:
    """Write the result folder (`companion.folders`): the weights and a manifest of ``info`` plus the config."""
    manifest = {"task": "duplication (0w0w)", "config": asdict(model.config), **info}
    return write_folder(out, manifest, tensors=model.state_dict())


def load_result(folder: str | os.PathLike | None = None, *, device: torch.device | str | None = None
                ) -> tuple[ReformerLM, dict]:
    """Return ``(model, manifest)`` from a folder written by `save_result` (default: the shipped result).

    Every file's sha256 is checked against the manifest before it is parsed (safetensors, never pickle);
    a mismatch raises ``ValueError``.
    """
    result = read_folder(folders.shipped("results", "duplication") if folder is None else folder)
    model = ReformerLM(DuplicationConfig(**result.manifest["config"]))
    model.load_state_dict(result.tensors)
    model.to(torch.device(device) if device is not None else get_device())
    return model.eval(), result.manifest


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Train a small Reformer on the duplication task (0w0w).")
    parser.add_argument("--out", required=True, help="folder for model.safetensors and manifest.json")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-n-hashes", type=int, default=DuplicationConfig.n_hashes)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest at this size)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = DuplicationConfig(n_hashes=args.train_n_hashes)
    start = time.perf_counter()
    model, losses = train(config, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    seconds = time.perf_counter() - start
    accuracy = evaluate(model)
    generated = evaluate(model, n_sequences=128, generate=True)
    command = "python -m companion.duplication " + " ".join(sys.argv[1:] if argv is None else argv)
    info = {"command": command, "seed": args.seed, "steps": args.steps, "batch_size": args.batch_size,
            "lr": args.lr, "threads": args.threads, "training_seconds": round(seconds, 1),
            "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4), "torch": torch.__version__,
            "accuracy": {str(n): round(a, 4) for n, a in accuracy.items()},
            "generated_accuracy": {str(n): round(a, 4) for n, a in generated.items()},
            "evaluation": {"n_sequences": 512, "generated_n_sequences": 128, "seed": 1234}}
    manifest = save_result(model, args.out, info)
    print(json.dumps({k: manifest[k] for k in ("training_seconds", "final_loss", "accuracy", "generated_accuracy")},
                     indent=2))
    return manifest


if __name__ == "__main__":
    main()
