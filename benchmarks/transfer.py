"""Cost of the transfer methods (`companion.transfer`, `companion.transfer_finetune`), measured in one run.

1. Extracting every layer's features in one pass (`GPT.hidden_states`, pooled by `transfer.features`) against a
   plain forward (`model(ids)`, logits) over the same texts. Target: tokens/s >= 0.9x the plain forward.
2. One epoch of a linear head on cached features against one epoch that recomputes the frozen features for
   every mini-batch. Target: cached at least 10x faster per epoch.
3. Per method, on the kind task (shipped learning curves, N = 1024): accuracy, trainable parameters, seconds per
   epoch on 128 texts, and the peak memory of one training step (batch 32 x 32 tokens), each in a fresh process.

The texts are the first 512 training openings of the kind task, 32 tokens at most; the model is tiny-gpt.
Run: python benchmarks/transfer.py [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import record
import torch

from companion import pretrained
from companion import transfer as tr
from companion import transfer_curves as tc
from companion import transfer_data as td
from companion import transfer_finetune as ft
from companion.memory import peak_memory

EXTRACT_TARGET, CACHE_TARGET = 0.9, 10.0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def bench_extraction(model, batch: tr.Batch, repeats: int) -> bool:
    tokens = int(batch.mask.sum())

    def plain():
        with torch.no_grad():
            for rows in torch.arange(len(batch)).split(64):
                model(batch.ids[rows])

    def all_layers():
        tr._CACHE.clear()
        tr.features(model, batch)

    t_plain, t_all = record.fastest(plain, repeats), record.fastest(all_layers, repeats)
    ratio = t_plain / t_all
    print(f"\n1. features of all {model.config.n_layer + 1} layers in one pass: {tokens / t_all:,.0f} tokens/s; "
          f"plain forward {tokens / t_plain:,.0f} tokens/s; ratio {ratio:.2f}x "
          f"(target >= {EXTRACT_TARGET}x): {verdict(ratio >= EXTRACT_TARGET)}")
    return ratio >= EXTRACT_TARGET


def bench_cached_head(model, batch: tr.Batch, labels: torch.Tensor, repeats: int) -> bool:
    feats = tr.features(model, batch)[-1]
    head = torch.nn.Linear(feats.shape[1], 3)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3)

    def step(x, y):
        loss = torch.nn.functional.cross_entropy(head(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def cached_epoch():
        for rows in torch.arange(len(batch)).split(32):
            step(feats[rows], labels[rows])

    def recomputed_epoch():
        for rows in torch.arange(len(batch)).split(32):
            with torch.no_grad():
                x = tr.pool(model.hidden_states(batch.ids[rows])[-1], batch.mask[rows])
            step(x, labels[rows])

    t_cached, t_recomputed = record.fastest(cached_epoch, repeats), record.fastest(recomputed_epoch, repeats)
    ratio = t_recomputed / t_cached
    print(f"\n2. a head's epoch on cached features {t_cached * 1e3:.1f} ms, recomputing them {t_recomputed:.2f} s: "
          f"{ratio:,.0f}x faster (target >= {CACHE_TARGET:.0f}x): {verdict(ratio >= CACHE_TARGET)}")
    return ratio >= CACHE_TARGET


def bench_methods(model, batch: tr.Batch, labels: torch.Tensor, threads: int) -> None:
    try:
        table = tc.summary(tc.load_results()[1], "kind")
    except (ValueError, FileNotFoundError):
        table = {}
    sub, y = batch.select(range(128)), labels[:128]
    feats = tr.features(model, sub)
    start = time.perf_counter()
    probe = tr.fit_linear(feats[-1], y, 3)
    t_probe = time.perf_counter() - start
    start = time.perf_counter()
    mix = tr.fit_scalar_mix(feats, y, 3)
    t_mix = time.perf_counter() - start
    classifier = ft.Classifier(pretrained.load("tiny-gpt")[0], 3)
    stats = ft.fine_tune(classifier, sub, y, epochs=1, min_steps=1, batch_size=32)
    frozen = peak_memory("companion.transfer_finetune:step_case", "frozen", threads=threads).peak_mib
    tuned = peak_memory("companion.transfer_finetune:step_case", "finetune", threads=threads).peak_mib
    print("\n3. methods on the kind task (accuracy from the shipped curves at N = 1024, mean of 3 seeds)")
    print(f"{'method':<26}{'accuracy':>9}{'trainable':>12}{'s/epoch':>10}{'peak MiB':>10}")
    rows = [("probe, last layer", "probe-pretrained", sum(p.numel() for p in probe.parameters()), t_probe, frozen),
            ("scalar mix", "mix-pretrained", sum(p.numel() for p in mix.parameters()), t_mix, frozen),
            ("fine-tune", "finetune-pretrained", ft.trainable_parameters(classifier),
             stats["seconds_per_epoch"], tuned)]
    for label, key, trainable, seconds, peak in rows:
        acc = table.get(key, {}).get(1024, (float("nan"),))[0]
        print(f"{label:<26}{acc:>9.3f}{trainable:>12,}{seconds:>10.2f}{peak:>10.1f}")
    print("(a head's time is its full L-BFGS fit, many passes over the cached features; peak memory of one step)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a crowded machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    model, tokenizer = pretrained.load("tiny-gpt", device="cpu")
    examples = td.kind_task().train[:512]
    batch = tr.encode(tokenizer, [e.text for e in examples], 32)
    labels = torch.tensor([e.label for e in examples])
    extract_ok = bench_extraction(model, batch, args.repeats)
    cache_ok = bench_cached_head(model, batch, labels, args.repeats)
    bench_methods(model, batch, labels, args.threads)
    print(f"\nextraction >= {EXTRACT_TARGET}x: {verdict(extract_ok)}; cached head >= {CACHE_TARGET:.0f}x: "
          f"{verdict(cache_ok)}")


if __name__ == "__main__":
    record.run("transfer", main)
