"""In-context learning: shared-prefix scoring speed, and the regression model against least squares.

1. Ten demonstrations shared by a batch of queries (reversed words, ``icl-gpt`` or, if it is not shipped,
   a randomly initialised GPT of its shape, which is said in the output): every query with its answer
   scored after the demonstrations encoded once (`companion.icl.score_continuations`, the KV cache
   repeated per query) against running every full prompt (`score_full_prompts`). The scores are
   checked equal. Target: at least 3x more prompts scored per second.
2. The shipped in-context regression model (``companion/results/icl-regression``): mean squared error
   at k = d and k = 2d examples over fresh prompts, beside least squares and the Bayes-optimal ridge.
   Target: at k = 2d, within 1.5x of least squares.

Run: python benchmarks/icl.py [--queries 128] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import random

import record
import torch

from companion import icl, icl_regression, pretrained
from companion.gpt import GPT, GPTConfig
from companion.icl_train import word_split

SPEED_TARGET, REGRESSION_TARGET = 3.0, 1.5


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def bench_shared_prefix(queries: int, repeats: int) -> bool:
    if "icl-gpt" in pretrained.available():
        model, tokenizer = pretrained.load("icl-gpt", device="cpu")
        label = "icl-gpt"
    else:
        model = GPT(GPTConfig(vocab_size=256, block_size=512, n_layer=3, n_head=4, n_embd=64), seed=0).eval()
        tokenizer, label = icl.byte_tokenizer(), "a random GPT of icl-gpt's shape (icl-gpt not shipped)"
    words = icl.usable_words(word_split()[1], "reversed_words")  # the evaluation words
    rng = random.Random(0)
    demos = rng.sample(words, 10)
    asked = [rng.choice([w for w in words if w not in demos]) for _ in range(queries)]
    prefix = tokenizer.encode("".join(icl.demonstration(w[::-1], w) for w in demos))
    continuations = [tokenizer.encode(icl.demonstration(w[::-1], w)) for w in asked]
    shared = icl.score_continuations(model, prefix, continuations)
    full = icl.score_full_prompts(model, prefix, continuations)
    same = torch.allclose(shared.logprobs, full.logprobs, atol=1e-4) and torch.equal(shared.greedy, full.greedy)
    t_shared = record.fastest(lambda: icl.score_continuations(model, prefix, continuations), repeats)
    t_full = record.fastest(lambda: icl.score_full_prompts(model, prefix, continuations), repeats)
    mean_cont = sum(map(len, continuations)) / len(continuations)
    print(f"1. {queries} queries after 10 shared demonstrations ({len(prefix)} tokens; a query and its answer "
          f"{mean_cont:.0f} tokens on average), {label}")
    print(f"   full prompts:  {queries / t_full:8.0f} prompts/s")
    print(f"   shared prefix: {queries / t_shared:8.0f} prompts/s   same scores: {same}")
    ok = same and t_full / t_shared >= SPEED_TARGET
    print(f"   speed-up {t_full / t_shared:.1f}x (target >= {SPEED_TARGET}x): {verdict(ok)}")
    return ok


def bench_regression(prompts: int) -> bool:
    model, manifest = icl_regression.load("icl-regression")
    c = model.config
    x, y = icl_regression.sample_tasks(prompts, c.points, c.dim, c.noise, generator=torch.Generator().manual_seed(7))
    errors = icl_regression.all_errors(model, x, y)
    print(f"2. in-context regression, d = {c.dim}, noise {c.noise}, {prompts} fresh prompts: mean squared error")
    ok = True
    for k in (c.dim, 2 * c.dim):
        t, ls, rg = errors["transformer"][k], errors["least squares"][k], errors["ridge (Bayes-optimal)"][k]
        line = f"   k = {k:2d}: transformer {t:7.3f}, least squares {ls:9.3f}, ridge {rg:7.3f}, ratio {t / ls:.2f}"
        if k == 2 * c.dim:
            ok = t <= REGRESSION_TARGET * ls
            line += f" (target <= {REGRESSION_TARGET}): {verdict(ok)}"
        print(line)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu")
    speed_ok = bench_shared_prefix(args.queries, args.repeats)
    regression_ok = bench_regression(args.prompts)
    print(f"\nshared prefix >= {SPEED_TARGET}x: {verdict(speed_ok)}; "
          f"regression within {REGRESSION_TARGET}x of least squares: {verdict(regression_ok)}")


if __name__ == "__main__":
    record.run("icl", main)
