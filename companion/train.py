"""Train a `companion.gpt.GPT` on any corpus and tokenizer.

    python -m companion.train --preset tiny --corpus text+code --out runs/tiny   # the shipped tiny-gpt
    python -m companion.train --preset tiny --out runs/tiny --resume   # go on after an interruption
    torchrun --nproc_per_node 2 -m companion.train --preset tiny --out runs/tiny   # data-parallel

AdamW with linear warmup and cosine decay, gradient clipping, a validation loss every
``eval_every`` steps, and checkpoints (weights and optimizer state in safetensors, plus a
JSON manifest) written atomically. Resuming is exact: the batch and the dropout noise of
step ``s`` are drawn from generators seeded with ``(seed, s)``, never from a running stream,
so a resumed run sees what the uninterrupted one would have seen. The checkpoint format lives in
`companion.checkpoint`; token ids and loss estimates in `companion.lm_eval`.

With ``torchrun`` every rank draws the same global batch and trains on its own slice of it
(its shard); DistributedDataParallel averages the gradients, so N processes compute what one
process computes on the whole batch (up to float rounding, and with dropout 0: each rank draws
its own dropout masks).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from companion.checkpoint import load_checkpoint, model_tensors, save_checkpoint
from companion.checks import positive_int
from companion.device import get_device
from companion.folders import write_folder
from companion.gpt import GPT, POSITIONS, GPTConfig, lm_loss
from companion.lm_eval import estimate_loss, eval_windows, evaluate, tokenize_cached

PRECISIONS = ("fp32", "bf16")  # float32 throughout, or bfloat16 autocast for the training steps


@dataclass
class TrainConfig:
    """Everything that decides the result of a run (the model's sizes included)."""

    model: GPTConfig = field(default_factory=GPTConfig)
    batch_size: int = 16  # sequences per step, over all processes together
    steps: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    precision: str = "fp32"  # "bf16": matrix products in bfloat16 under autocast (weights stay float32)
    grad_clip: float = 1.0
    eval_every: int = 250
    eval_tokens: int = 32768  # tokens per loss estimate, from evenly spaced windows
    checkpoint_every: int = 250
    seed: int = 0
    vocab_size: int = 4096  # of the tokenizer trained for the run

    def __post_init__(self) -> None:
        # checked here, not only on the command line: an unknown value would otherwise train in float32 silently
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")


PRESETS = {
    # tiny-gpt: rotary positions and no dropout, 4,500 steps over about 4.2 epochs of text plus code;
    # bfloat16 products make a step about 1.8x faster on a CPU with AVX-512 BF16, so this fits an hour
    "tiny": TrainConfig(model=GPTConfig(block_size=256, n_layer=4, n_head=4, n_embd=256, dropout=0.0,
                                        position="rotary"), steps=4500, precision="bf16"),
    "test": TrainConfig(model=GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32), batch_size=8,
                        steps=30, warmup_steps=5, eval_every=10, eval_tokens=1024, checkpoint_every=5,
                        vocab_size=300),
}


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warmup to ``lr``, then a cosine down to ``min_lr`` at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


# ------------------------------------------------------------------------------------------------
# Batches that depend only on (seed, step), and the saved config


def get_batch(ids: np.ndarray, step: int, config: TrainConfig, rows: slice = slice(None)
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The global batch of ``step`` (random windows of ``block_size + 1`` tokens); ``rows`` picks a shard."""
    block = config.model.block_size
    if len(ids) < block + 2:
        raise ValueError(f"the corpus must hold more than block_size + 1 = {block + 1} tokens, got {len(ids)}")
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
    starts = torch.randint(0, len(ids) - block - 1, (config.batch_size,), generator=generator)[rows]
    windows = torch.from_numpy(np.stack([ids[s: s + block + 1].astype(np.int64) for s in starts.tolist()]))
    return windows[:, :-1], windows[:, 1:]


def _shard(batch: tuple[torch.Tensor, torch.Tensor], config: TrainConfig, rows: slice
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a batch source's global batch and keep this process's rows (``rows`` of a full-length batch).

    The windows may be shorter than ``block_size`` (a short-context warm-up): a length T that divides it,
    with block_size / T times as many rows, so a step holds the same number of tokens.
    """
    x, y = batch
    T = x.shape[-1] if x.dim() == 2 else 0
    factor = config.model.block_size // T if T and config.model.block_size % T == 0 else 0
    expected = (config.batch_size * factor, T)
    if not factor or tuple(x.shape) != expected or tuple(y.shape) != expected or x.dtype != torch.long:
        raise ValueError(f"batches(step) must return two LongTensors of shape (batch_size * block_size / T, T) "
                         f"for a T that divides block_size={config.model.block_size}, "
                         f"batch_size={config.batch_size}, got {x.dtype} {tuple(x.shape)} and {tuple(y.shape)}")
    rows = slice(rows.start * factor, rows.stop * factor)
    return x[rows], y[rows]


def config_from_dict(data: dict) -> TrainConfig:
    """The `TrainConfig` that ``asdict`` turned into ``data`` (as stored in ``checkpoint.json``)."""
    return TrainConfig(**(data | {"model": GPTConfig(**data["model"])}))


# ------------------------------------------------------------------------------------------------
# The loop


def make_optimizer(model: GPT, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on biases, LayerNorm gains)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95))


BatchSource = Callable[[int], tuple[torch.Tensor, torch.Tensor]]
Metrics = Callable[[GPT], dict[str, float]]


def train(config: TrainConfig, train_ids: np.ndarray, valid_ids: np.ndarray, out: str | Path, *,
          batches: BatchSource | None = None, metrics: Metrics | None = None,
          device: str | torch.device | None = None, resume: bool = False, show_progress: bool = True,
          crash_at_step: int | None = None) -> tuple[GPT, list]:
    """Train (or resume) a GPT; checkpoints go to ``out``. Returns the model and the loss history.

    ``batches(step)`` returns the global batch ``(inputs, targets)`` of a step, two LongTensors
    ``(batch_size, block_size)`` or the same tokens in shorter windows (see `_shard`); the default draws
    random windows of ``train_ids`` (`get_batch`). A batch source that depends only on the step keeps resuming
    exact; it can mix text with synthetic sequences.
    ``train_ids`` and ``valid_ids`` are the text whose loss is logged every ``eval_every`` steps;
    ``metrics(model)``, if given, adds its entries to each logged record (the model is in eval mode then).

    Under ``torchrun`` (WORLD_SIZE > 1) it runs data-parallel: each rank trains on its slice of the batch.
    ``crash_at_step`` kills the process with SIGKILL before that step (to test resuming).
    """
    out = Path(out)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and torch.cuda.is_available():
        device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}")
        torch.cuda.set_device(device)
    elif world > 1:
        device = "cpu"  # gloo
    device = get_device(str(device) if device is not None else None)
    if config.batch_size % world:
        raise ValueError(f"batch_size must be divisible by the number of processes ({world}), got {config.batch_size}")
    shard = slice(rank * config.batch_size // world, (rank + 1) * config.batch_size // world)

    model = GPT(config.model, seed=config.seed).to(device)
    optimizer = make_optimizer(model, config)
    start, history = 0, []
    if resume and (out / "checkpoint.json").exists():
        start, history = load_checkpoint(out, model, optimizer)
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    train_windows = eval_windows(train_ids, config.model.block_size, config.eval_tokens)
    valid_windows = eval_windows(valid_ids, config.model.block_size, config.eval_tokens)

    model.train()
    bar = tqdm(total=config.steps, initial=start, disable=not show_progress or rank != 0, ascii=True,
               dynamic_ncols=False, ncols=100, mininterval=1.0)
    tokens_per_step, started, smooth = config.batch_size * config.model.block_size, time.perf_counter(), None
    for step in range(start, config.steps):
        if step == crash_at_step:
            os.kill(os.getpid(), signal.SIGKILL)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        x, y = get_batch(train_ids, step, config, shard) if batches is None else _shard(batches(step), config, shard)
        torch.manual_seed(config.seed * 1_000_003 + step * world + rank)  # dropout noise of this step
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
            loss = lm_loss(net(x.to(device)), y.to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        smooth = loss.item() if smooth is None else 0.9 * smooth + 0.1 * loss.item()
        done = step + 1
        if rank == 0 and (done % config.eval_every == 0 or done == config.steps):
            record = {"step": done, "lr": lr_at(step, config),
                      "train_loss": estimate_loss(model, train_windows),
                      "valid_loss": estimate_loss(model, valid_windows)}
            if metrics is not None:
                model.eval()
                with torch.no_grad():
                    record |= metrics(model)
                model.train()
            history.append(record)
            bar.write(f"step {done}: train loss {record['train_loss']:.4f}, valid loss {record['valid_loss']:.4f}")
        if rank == 0 and (done % config.checkpoint_every == 0 or done == config.steps):
            save_checkpoint(out, done, model, optimizer, config, history)
        bar.update(1)
        rate = (done - start) * tokens_per_step / (time.perf_counter() - started)
        bar.set_postfix(loss=f"{smooth:.3f}", tok_s=f"{rate:.0f}", refresh=False)
    bar.close()
    if world > 1:
        dist.barrier()
    return model, history


# ------------------------------------------------------------------------------------------------
# The command line


def _prepare_data(args, config: TrainConfig):
    """(config with the tokenizer's vocabulary size, tokenizer file, train ids, valid ids, corpus facts)."""
    from companion import data
    from companion.bpe import BPETokenizer

    if args.train_text:
        train_texts, valid_texts = data.load_texts(args.train_text), data.load_texts(args.valid_text)
        tokenizer_texts = train_texts
    else:
        train_texts, valid_texts = data.pretraining_texts("train"), data.pretraining_texts("valid")
        if args.corpus == "text+code":
            train_texts = train_texts + data.source_code("train")  # validation stays English text
        tokenizer_texts = data.default_texts("train")  # the chapter-1 tokenizer: docstrings only
    cache = Path(args.cache_dir) if args.cache_dir else data.cache_dir()
    tokenizer_path = cache / f"tokenizer-{config.vocab_size}-{data.corpus_checksum(tokenizer_texts)[:16]}.json"
    if args.tokenizer:
        tokenizer_path = Path(args.tokenizer)
    if args.tokenizer or tokenizer_path.exists():
        tokenizer = BPETokenizer.load(tokenizer_path)
    else:
        tokenizer = BPETokenizer.train(tokenizer_texts, vocab_size=config.vocab_size, show_progress=False)
        tokenizer.save(tokenizer_path)
    train_ids = tokenize_cached(train_texts, tokenizer, cache)
    valid_ids = tokenize_cached(valid_texts, tokenizer, cache)
    vocab_size = tokenizer.vocab_size  # added tokens included, so every id has an embedding row
    config = replace(config, vocab_size=vocab_size, model=replace(config.model, vocab_size=vocab_size))
    default = {"text": "companion.data.pretraining_texts",
               "text+code": "companion.data.pretraining_texts + companion.data.source_code"}[args.corpus]
    facts = {"corpus": args.train_text or default,
             "corpus_checksum": {"train": data.corpus_checksum(train_texts),
                                 "valid": data.corpus_checksum(valid_texts)},
             "python_version": platform.python_version(),
             "tokens": {"train": int(len(train_ids)), "valid": int(len(valid_ids))}}
    return config, tokenizer_path, train_ids, valid_ids, facts


def configure(preset: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """The preset with the command line's overrides (None means: keep the preset's value)."""
    model = {"n_layer": args.n_layer, "n_head": args.n_head, "n_embd": args.n_embd,
             "block_size": args.block_size, "dropout": args.dropout, "position": args.position}
    model = replace(preset.model, **{k: v for k, v in model.items() if v is not None})
    run = {"steps": args.steps, "batch_size": args.batch_size, "seed": args.seed, "lr": args.lr,
           "eval_every": args.eval_every, "vocab_size": args.vocab_size, "precision": args.precision}
    config = replace(preset, model=model, **{k: v for k, v in run.items() if v is not None})
    for name in ("steps", "batch_size", "eval_every", "vocab_size"):
        positive_int(getattr(config, name), name.replace("_", "-"))
    if not config.lr > 0:
        raise ValueError(f"lr must be > 0, got {config.lr}")
    return config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m companion.train", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--out", required=True, help="folder for checkpoints and the final model")
    parser.add_argument("--steps", type=int, help="number of optimizer steps (default: the preset's)")
    parser.add_argument("--batch-size", type=int, help="sequences per step over all processes")
    parser.add_argument("--seed", type=int, help="seed of the initial weights, batches and dropout")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.json if present")
    parser.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--train-text", help="a text file or folder to train on instead of the default corpus")
    parser.add_argument("--valid-text", help="held-out text (required with --train-text)")
    parser.add_argument("--corpus", choices=("text", "text+code"), default="text",
                        help="the default corpus: English text, or text plus the stdlib's own source")
    parser.add_argument("--tokenizer", help="a tokenizer.json to use instead of training one")
    parser.add_argument("--cache-dir", help="where token ids are cached (default: companion.data.cache_dir())")
    parser.add_argument("--name", help="the model's name in its manifest (default: the name of --out)")
    shape = parser.add_argument_group("model shape (default: the preset's)")
    shape.add_argument("--n-layer", type=int, help="transformer blocks")
    shape.add_argument("--n-head", type=int, help="attention heads per block (must divide --n-embd)")
    shape.add_argument("--n-embd", type=int, help="width of the residual stream")
    shape.add_argument("--block-size", type=int, help="context length in tokens")
    shape.add_argument("--vocab-size", type=int, help="vocabulary of the BPE tokenizer trained for the run")
    shape.add_argument("--dropout", type=float, help="dropout probability in [0, 1)")
    shape.add_argument("--position", choices=POSITIONS, help="absolute position table or rotary")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="fp32, or bf16 autocast for the training steps (fast on CPUs with AVX-512 BF16)")
    parser.add_argument("--eval-every", type=int, help="steps between logged loss estimates")
    parser.add_argument("--threads", type=int, help="torch CPU threads (fewer can be faster on a busy machine)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--crash-at-step", type=int, help=argparse.SUPPRESS)  # for the resume test
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.train_text and not args.valid_text:
        parser.error("--valid-text is required with --train-text")
    if args.train_text and args.corpus != "text":
        parser.error("--corpus chooses the default corpus; it cannot be combined with --train-text")

    if args.threads:
        torch.set_num_threads(args.threads)
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    out = Path(args.out)
    try:
        config = configure(PRESETS[args.preset], args)
    except ValueError as error:
        parser.error(str(error))
    if args.resume and (out / "checkpoint.json").exists():
        saved = config_from_dict(json.loads((out / "checkpoint.json").read_text())["config"])
        # the vocabulary actually trained can exceed the one asked for (added tokens): compare the rest
        if replace(config, vocab_size=saved.vocab_size, model=replace(config.model, vocab_size=saved.model.vocab_size)) != saved:
            parser.error("the options differ from the checkpoint's run: resume with the same options")
        config = replace(saved, vocab_size=config.vocab_size)
    rank = int(os.environ.get("RANK", 0))
    if world > 1 and rank != 0:
        dist.barrier()  # rank 0 trains the tokenizer and fills the token cache first; the others then read it
    config, tokenizer_path, train_ids, valid_ids, facts = _prepare_data(args, config)
    if world > 1 and rank == 0:
        dist.barrier()
    model, history = train(config, train_ids, valid_ids, out, device=args.device, resume=args.resume,
                           show_progress=not args.no_progress, crash_at_step=args.crash_at_step)
    if rank == 0:
        model.eval()
        result = evaluate(model, train_ids, valid_ids)
        write_model(out, model, tokenizer_path, config, history, facts | {"evaluation": result}, argv,
                    name=args.name or out.resolve().name)
    if world > 1:
        dist.destroy_process_group()


def write_model(out: Path, model: GPT, tokenizer_path: Path, config: TrainConfig, history: list, facts: dict,
                argv: list[str], *, name: str) -> dict:
    """The final product, a model folder (`companion.folders`): weights, tokenizer.json and the manifest."""
    last = history[-1] if history else {}
    manifest = {
        "name": name, "model_config": config.model.to_dict(), "train_config": asdict(config),
        "parameters": model.num_parameters(), "steps": config.steps,
        "final_train_loss": last.get("train_loss"), "final_valid_loss": last.get("valid_loss"),
        "command": "python -m companion.train " + shlex.join(argv),
        "torch_version": torch.__version__, "history": history,
    } | facts
    return write_folder(out, manifest, tensors=model_tensors(model),
                        files={"tokenizer.json": Path(tokenizer_path).read_bytes()})


if __name__ == "__main__":
    main()
