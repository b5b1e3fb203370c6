"""Throughput of the scaling sweep's sizes, and their model FLOP utilisation (MFU) on this machine.

For each size of `companion.sweep.SIZES` (batch and context as in the sweep, no dropout), the script times
training steps (forward, backward, AdamW) on random token ids and prints the parameters, tokens per second
and MFU = 6 N tokens/s / peak, where N counts every matrix a token goes through: the blocks' weights and
the un-embedding (the tied token table used as the output layer), but not the table lookups. The peak is
this machine's measured throughput of a plain 1024 x 1024 float32 `torch.matmul` loop at the same thread
count, measured in the same run before and after the models (the larger of the two is used, so load from
other processes can only lower MFU). Small models reach a low MFU: their matrices are thin, and
the 4096-way softmax, layer norms and optimizer steps are not matrix multiplications at all.

Run: python benchmarks/scaling.py [--threads 1] [--steps 10]
"""

from __future__ import annotations

import argparse
import time

import record
import torch

from companion.gpt import GPT, lm_loss
from companion.scaling import non_embedding_count
from companion.sweep import SIZES, SweepConfig, train_config
from companion.train import make_optimizer

VOCAB = 4096  # the shipped tokenizer's


def matmul_flops_per_second(size: int = 1024, seconds: float = 2.0) -> float:
    """FLOP/s of a loop of float32 ``size x size`` matmuls (2 size^3 FLOPs each)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)  # warm-up
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.matmul(a, b)
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - started)


def tokens_per_second(shape: tuple[int, int, int], steps: int, sweep: SweepConfig) -> float:
    """Training tokens per second of one size (after two warm-up steps)."""
    config = train_config(shape, sweep, VOCAB)
    model = GPT(config.model).train()
    optimizer = make_optimizer(model, config)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, (sweep.batch_size, sweep.block_size + 1), generator=generator)
    for step in range(steps + 2):
        if step == 2:
            started = time.perf_counter()
        lm_loss(model(ids[:, :-1]), ids[:, 1:]).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * sweep.tokens_per_step / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sweep = SweepConfig()
    before = matmul_flops_per_second()
    rows = []
    for shape in SIZES:
        n_layer, _, n_embd = shape
        n = non_embedding_count(n_layer, n_embd) + VOCAB * n_embd  # blocks + un-embedding matmul
        rows.append((shape, non_embedding_count(n_layer, n_embd), n, tokens_per_second(shape, args.steps, sweep)))
    peak = max(before, matmul_flops_per_second())
    print(f"threads {args.threads}; batch {sweep.batch_size} x context {sweep.block_size}; "
          f"1024x1024 float32 matmul: {peak / 1e9:.1f} GFLOP/s (before the models {before / 1e9:.1f})")
    print(f"{'size (L, h, d)':>16} {'N (no emb.)':>12} {'N + unemb.':>11} {'tokens/s':>9} {'MFU':>6}")
    for shape, n_blocks, n, rate in rows:
        print(f"{str(shape):>16} {n_blocks:>12,} {n:>11,} {rate:>9,.0f} {6 * n * rate / peak:>6.1%}")


if __name__ == "__main__":
    record.run("scaling", main)
