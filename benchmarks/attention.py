"""LSH attention against PyTorch's exact attention and naive full attention, on the CPU.

Run: python benchmarks/attention.py   (options: --threads, --lengths, --naive-limit-gib)

Batch 1, one head, d = 64, forward pass without gradients, float32. `lsh_attention` uses bucket_size 64,
4 hashes and its default number of buckets (about two per chunk, as in the paper; factorised above 64). Times are the best of a few runs in this process (noise on a
shared machine only adds time). Peak memory is measured in a fresh process per case by
`companion.memory.peak_memory` (bytes the call adds above the inputs: intermediates and output).

Targets (ratios from this run):
  1. at L = 16384, lsh_attention takes at most 0.6x the time of torch's scaled_dot_product_attention;
  2. at L = 16384, its peak memory is under 1/4 of naive full attention's;
  3. and 4. its time and its peak memory grow with a fitted log-log exponent of at most 1.2 from L = 1024
     to 65536.
Naive attention runs only where its model (2 L^2 float32 scores) fits under --naive-limit-gib.
"""

from __future__ import annotations

import os

# Idle OpenMP threads spin while they wait for work by default. On a machine shared with other jobs a
# spinning thread steals the core its partner needs, and code made of many small parallel operations (LSH
# attention runs hundreds to thousands) slows down 5-10x while one big kernel (sdpa) hardly notices. Passive
# waiting costs microseconds per operation on an idle machine. Set OMP_WAIT_POLICY yourself to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402

import numpy as np  # noqa: E402
import record  # noqa: E402
import torch  # noqa: E402

from companion.attention import attention_case, default_n_buckets  # noqa: E402
from companion.memory import attention_memory_bytes, peak_memory  # noqa: E402

DIM, BUCKET_SIZE, N_HASHES = 64, 64, 4
TARGET_LENGTH, TIME_FRACTION, MEMORY_FRACTION, MAX_EXPONENT = 16384, 0.6, 0.25, 1.2


def best_time(method: str, length: int, repeats: int) -> float:
    run = attention_case(method, length, DIM, bucket_size=BUCKET_SIZE, n_hashes=N_HASHES, device="cpu")
    return record.fastest(run, repeats, warm_up=False)


def fitted_exponent(lengths: list[int], values: list[float]) -> float:
    slope, _ = np.polyfit(np.log(lengths), np.log(values), 1)
    return float(slope)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lengths", type=int, nargs="+", default=[2**p for p in range(10, 17)])
    parser.add_argument("--naive-limit-gib", type=float, default=4.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
          f"batch 1, 1 head, d={DIM}, "
          f"lsh: bucket_size={BUCKET_SIZE}, n_hashes={N_HASHES}, default n_buckets", flush=True)

    rows = {}
    for length in args.lengths:
        fits = attention_memory_bytes(length, DIM, method="full") <= args.naive_limit_gib * 2**30
        methods = ["lsh", "sdpa"] + (["full"] if fits else [])
        row = {"buckets": default_n_buckets(length, BUCKET_SIZE)}
        for method in methods:
            work = length * length if method != "lsh" else length  # fewer repeats for the quadratic ones
            repeats = 3 if work <= 2**28 else 1
            seconds = best_time(method, length, repeats)
            report = peak_memory("companion.attention:attention_case", method, length, DIM,
                                 bucket_size=BUCKET_SIZE, n_hashes=N_HASHES, threads=args.threads)
            row[method] = (seconds, report.peak_bytes)
            print(f"  L={length:6d} {method:5s} {seconds:9.4f} s  {report.peak_mib:10.1f} MiB peak",
                  flush=True)
        rows[length] = row

    def cell(row: dict, method: str, index: int, fmt: str) -> str:
        if method not in row:
            return "-"
        value = row[method][index]
        return format(value / 2**20 if index else value, fmt)

    print("\n| L | n_buckets | lsh s | sdpa s | naive s | sdpa/lsh time | lsh MiB | sdpa MiB | naive MiB |"
          " naive/lsh mem |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for length, row in rows.items():
        time_ratio = row["sdpa"][0] / row["lsh"][0]
        mem_ratio = f"{row['full'][1] / row['lsh'][1]:.1f}" if "full" in row else "-"
        print(f"| {length} | {row['buckets']} | {cell(row, 'lsh', 0, '.4f')} | "
              f"{cell(row, 'sdpa', 0, '.4f')} | "
              f"{cell(row, 'full', 0, '.4f')} | {time_ratio:.2f} | {cell(row, 'lsh', 1, '.1f')} | "
              f"{cell(row, 'sdpa', 1, '.1f')} | {cell(row, 'full', 1, '.1f')} | {mem_ratio} |")

    print()
    results = []
    at = rows.get(TARGET_LENGTH)
    if at:
        lsh_s, sdpa_s = at["lsh"][0], at["sdpa"][0]
        ok = lsh_s <= TIME_FRACTION * sdpa_s
        print(f"1. L={TARGET_LENGTH}: lsh {lsh_s:.3f} s vs sdpa {sdpa_s:.3f} s, ratio lsh/sdpa "
              f"{lsh_s / sdpa_s:.3f} (target <= {TIME_FRACTION})  {verdict(ok)}")
        results.append(ok)
        if "full" in at:
            fraction = at["lsh"][1] / at["full"][1]
            ok = fraction < MEMORY_FRACTION
            print(f"2. L={TARGET_LENGTH}: lsh peak {at['lsh'][1] / 2**20:.1f} MiB vs naive "
                  f"{at['full'][1] / 2**20:.1f} MiB, fraction {fraction:.4f} (target < {MEMORY_FRACTION})  "
                  f"{verdict(ok)}")
            results.append(ok)
        else:
            print(f"2. naive attention was not run at L={TARGET_LENGTH} (raise --naive-limit-gib)  FAIL")
            results.append(False)
    else:
        print(f"1./2. L={TARGET_LENGTH} is not among --lengths: not measured  FAIL")
        results.append(False)
    lengths = list(rows)
    if len(lengths) >= 2:
        for number, (name, index) in enumerate([("time", 0), ("peak memory", 1)], start=3):
            exponent = fitted_exponent(lengths, [rows[n]["lsh"][index] for n in lengths])
            ok = exponent <= MAX_EXPONENT
            print(f"{number}. lsh {name} ~ L^{exponent:.3f} from L={lengths[0]} to {lengths[-1]} "
                  f"(target <= {MAX_EXPONENT})  {verdict(ok)}")
            results.append(ok)
        sdpa_exponent = fitted_exponent(lengths, [rows[n]["sdpa"][0] for n in lengths])
        print(f"   (for comparison, sdpa time ~ L^{sdpa_exponent:.3f})")
    print(f"\nOVERALL: {verdict(all(results))}")


if __name__ == "__main__":
    record.run("attention", main)
