"""The scaling sweep: GPTs of several sizes trained on the course corpus with the same token budget.

    python -m companion.sweep --out companion/results/scaling          # the shipped result (about 20 min)
    python -m companion.sweep --out /tmp/toy --steps 2 --sizes 0,1     # a quick check of the machinery

Every size is trained by `companion.train.train` on `companion.data.pretraining_texts` tokenized with the
shipped chapter-1 tokenizer (``tiny-gpt``'s, vocabulary 4096), with the same batches (same seed), the same
number of tokens and no dropout. Only the shape changes, and the peak learning rate, which follows
Kaplan et al. (2020, eq. D.1): ``lr(N) = 0.003239 - 0.0001395 log N``. Validation loss is logged every
``eval_every`` steps against the step, the tokens seen and the compute ``C = 6 N D`` (Kaplan's N: no
embedding tables).

The result is a folder (`companion.folders`): ``histories.json`` (one record per size: shape, parameter
counts, seconds, loss history) and ``manifest.json`` (the command, the data and tokenizer checksums, the
Python and torch versions, the seconds each size took). `load_sweep` reads it back, checksums first.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from companion import folders
from companion.checks import positive_int
from companion.gpt import GPTConfig
from companion.scaling import PowerLaw, compute_frontier, fit_power_law, non_embedding_count, parameter_count
from companion.train import TrainConfig, train

# (n_layer, n_head, n_embd): about 12.8 k to 1.5 M non-embedding parameters (120x), head width 16 to 32.
SIZES: tuple[tuple[int, int, int], ...] = ((1, 2, 32), (2, 2, 48), (3, 2, 64), (4, 3, 96), (4, 4, 128), (5, 5, 160))


@dataclass(frozen=True)
class SweepConfig:
    """What every size shares: the token budget is ``steps * batch_size * block_size``."""

    block_size: int = 64
    batch_size: int = 16
    steps: int = 600
    warmup_steps: int = 30
    eval_every: int = 50
    eval_tokens: int = 8192
    dropout: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("block_size", "batch_size", "steps", "warmup_steps", "eval_every", "eval_tokens"):
            positive_int(getattr(self, name), name)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.block_size


def kaplan_lr(n_params: int) -> float:
    """Peak learning rate for a model of ``n_params`` non-embedding parameters (Kaplan et al. 2020, D.1)."""
    positive_int(n_params, "n_params")
    return 0.003239 - 0.0001395 * math.log(n_params)


def train_config(shape: tuple[int, int, int], sweep: SweepConfig, vocab_size: int) -> TrainConfig:
    """The `TrainConfig` of one size of the sweep."""
    n_layer, n_head, n_embd = shape
    model = GPTConfig(vocab_size=vocab_size, block_size=sweep.block_size, n_layer=n_layer, n_head=n_head,
                      n_embd=n_embd, dropout=sweep.dropout)
    lr = kaplan_lr(non_embedding_count(n_layer, n_embd))
    return TrainConfig(model=model, batch_size=sweep.batch_size, steps=sweep.steps, lr=lr, min_lr=lr / 10,
                       warmup_steps=sweep.warmup_steps, eval_every=sweep.eval_every,
                       eval_tokens=sweep.eval_tokens, checkpoint_every=sweep.steps, seed=sweep.seed,
                       vocab_size=vocab_size)


def run_size(shape: tuple[int, int, int], sweep: SweepConfig, train_ids, valid_ids, vocab_size: int, *,
             show_progress: bool = False) -> dict:
    """Train one size; its record: shape, parameter counts, learning rate, seconds and loss history."""
    config = train_config(shape, sweep, vocab_size)
    n_layer, n_head, n_embd = shape
    n = non_embedding_count(n_layer, n_embd)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as checkpoints:
        model, history = train(config, train_ids, valid_ids, checkpoints, device="cpu", show_progress=show_progress)
    seconds = time.perf_counter() - started
    assert model.num_parameters() == parameter_count(n_layer, n_embd, vocab_size, sweep.block_size)
    for record in history:
        record["tokens"] = record["step"] * sweep.tokens_per_step
        record["compute"] = 6.0 * n * record["tokens"]
    return {"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd, "non_embedding_params": n,
            "params": model.num_parameters(), "lr": config.lr, "seconds": round(seconds, 1),
            "tokens_per_second": round(sweep.steps * sweep.tokens_per_step / seconds, 1), "history": history}


def corpus():
    """(train ids, valid ids, tokenizer, facts) of the default corpus with the shipped tokenizer."""
    from companion import data, pretrained
    from companion.files import sha256_hex
    from companion.lm_eval import tokenize_cached

    tokenizer = pretrained.load("tiny-gpt")[1]
    train_texts, valid_texts = data.pretraining_texts("train"), data.pretraining_texts("valid")
    train_ids = tokenize_cached(train_texts, tokenizer, data.cache_dir())
    valid_ids = tokenize_cached(valid_texts, tokenizer, data.cache_dir())
    facts = {"corpus": "companion.data.pretraining_texts",
             "corpus_checksum": {"train": data.corpus_checksum(train_texts), "valid": data.corpus_checksum(valid_texts)},
             "tokenizer": "companion.pretrained.load('tiny-gpt')[1]",
             "tokenizer_sha256": sha256_hex(tokenizer.to_json()),
             "tokens": {"train": int(len(train_ids)), "valid": int(len(valid_ids))}}
    return train_ids, valid_ids, tokenizer, facts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m companion.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="the result folder to write")
    parser.add_argument("--steps", type=int, default=SweepConfig.steps, help="optimizer steps of every size")
    parser.add_argument("--eval-every", type=int, default=SweepConfig.eval_every)
    parser.add_argument("--sizes", help="comma-separated indices into SIZES (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--progress", action="store_true", help="draw a progress bar per size")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    torch.set_num_threads(positive_int(args.threads, "threads"))
    try:
        picks = [int(i) for i in args.sizes.split(",")] if args.sizes else list(range(len(SIZES)))
        if not all(0 <= i < len(SIZES) for i in picks):
            raise ValueError(f"sizes must be indices in 0..{len(SIZES) - 1}, got {args.sizes}")
        sweep = SweepConfig(steps=args.steps, eval_every=min(args.eval_every, args.steps),
                            warmup_steps=min(SweepConfig.warmup_steps, args.steps))
    except ValueError as error:
        parser.error(str(error))
    train_ids, valid_ids, tokenizer, facts = corpus()
    runs = []
    for i in picks:
        runs.append(run_size(SIZES[i], sweep, train_ids, valid_ids, tokenizer.vocab_size, show_progress=args.progress))
        last = runs[-1]["history"][-1]
        print(f"size {i} {SIZES[i]}: N={runs[-1]['non_embedding_params']}, {runs[-1]['seconds']} s, "
              f"train {last['train_loss']:.4f}, valid {last['valid_loss']:.4f}", flush=True)
    manifest = {"name": "scaling", "command": "python -m companion.sweep " + shlex.join(argv),
                "sweep_config": asdict(sweep), "vocab_size": tokenizer.vocab_size,
                "sizes": [[r["n_layer"], r["n_head"], r["n_embd"]] for r in runs],
                "seconds": {f"{r['n_layer']}x{r['n_embd']}": r["seconds"] for r in runs},
                "total_seconds": round(sum(r["seconds"] for r in runs), 1), "threads": args.threads,
                "python_version": platform.python_version(), "torch_version": torch.__version__} | facts
    folders.write_folder(args.out, manifest, files={"histories.json": json.dumps(runs, indent=1) + "\n"})


def summary(run: dict) -> dict:
    """One size in numbers: N, best and final validation loss, final training loss and the gap between."""
    last = run["history"][-1]
    return {"N": run["non_embedding_params"], "best_valid": min(r["valid_loss"] for r in run["history"]),
            "final_valid": last["valid_loss"], "final_train": last["train_loss"],
            "gap": last["valid_loss"] - last["train_loss"], "compute": last["compute"]}


def fit_sizes(runs: list[dict], count: int = 4) -> PowerLaw:
    """L(N) = (N_c / N) ** alpha fitted to the best validation loss of the ``count`` smallest sizes."""
    positive_int(count, "count")
    rows = sorted((summary(run) for run in runs), key=lambda row: row["N"])[:count]
    return fit_power_law([row["N"] for row in rows], [row["best_valid"] for row in rows])


def frontier(runs: list[dict]) -> list[tuple[float, float]]:
    """The compute frontier of the sweep: (6 N D, validation loss) points no smaller compute beats."""
    return compute_frontier([[(r["compute"], r["valid_loss"]) for r in run["history"]] for run in runs])


def load_sweep(folder: str | Path | None = None) -> tuple[dict, list[dict]]:
    """(manifest, runs) of a sweep folder, the shipped ``companion/results/scaling`` by default."""
    found = folders.read_folder(folders.shipped("results", "scaling") if folder is None else Path(folder))
    return found.manifest, json.loads(found.files["histories.json"].decode("utf-8"))


if __name__ == "__main__":
    main()
