"""Speed of `companion.decoding`, with ratios against references measured in this same run.

1. Beam search against ``transformers``: our `beam_search` (through `HFCausalLM`, which feeds the
   model's own key/value cache) and ``GPT2LMHeadModel.generate`` with the same settings, on a
   randomly initialised GPT-2 (vocab 2048, 256 positions, 4 layers, 4 heads, width 128; seed 0; no
   download). No eos, so both generate exactly ``--new-tokens`` tokens; the outputs are checked
   equal. Target: our time per generated token <= 1.0x generate's (fastest of interleaved repeats).
2. Cached decoding of our GPT: greedy search with ``decode_step`` against the same model called on
   the whole prefix at every step, from a 16-token prompt up to the model's full context.
   Target: cached at least 3x faster.
3. Tokens per second on the shipped model ``companion.pretrained.load("tiny-gpt")`` (or, if it is
   not there yet, a randomly initialised GPT of the ``tiny`` preset, which is said in the output):
   greedy, beam 4, beam 8, top-p 0.9; generated tokens of the returned sequences per second.

Run: python benchmarks/decoding.py [--repeats 5] [--new-tokens 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import record
import torch

from companion.decoding import beam_search, greedy_search, sample
from companion.device import get_device, make_generator
from companion.gpt import GPT
from companion.hf_adapter import HFCausalLM

BEAM_TARGET, CACHE_TARGET = 1.0, 3.0


def timed(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, float]:
    """Fastest of ``repeats`` runs of each function (the least disturbed by other work on the machine),
    run in turn so that a slow spell hits all of them alike."""
    for fn in fns.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return {name: min(values) for name, values in times.items()}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def bench_beam_vs_transformers(device: torch.device, repeats: int, new_tokens: int) -> bool:
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=2048, n_positions=256, n_embd=128, n_layer=4, n_head=4,
                                     bos_token_id=0, eos_token_id=0)  # generate is told eos_token_id=None
    hf = transformers.GPT2LMHeadModel(config).to(device).eval()
    print(f"\n1. beam search vs transformers {transformers.__version__} generate "
          f"(GPT2LMHeadModel {sum(p.numel() for p in hf.parameters()) / 1e6:.2f} M parameters)")
    ok = True
    for batch, beams in [(4, 4), (2, 8)]:
        ok &= compare_beam(hf, batch, beams, device, repeats, new_tokens)
    return ok


def compare_beam(hf, batch: int, beams: int, device: torch.device, repeats: int, new_tokens: int) -> bool:
    ids = torch.randint(0, hf.config.vocab_size, (batch, 8), generator=make_generator(1)).to(device)
    mask = torch.ones_like(ids)
    settings = dict(num_beams=beams, length_penalty=1.0, early_stopping=False)
    run_hf = lambda: hf.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=new_tokens,  # noqa: E731
                                 pad_token_id=0, eos_token_id=None, **settings)
    run_ours = lambda: beam_search(HFCausalLM(hf), ids, max_new_tokens=new_tokens, **settings)  # noqa: E731
    with torch.no_grad():
        expected = run_hf()
        same = expected.shape[1] == ids.shape[1] + new_tokens and torch.equal(expected, run_ours()[0])
        t = interleaved({"generate": run_hf, "ours": run_ours}, repeats, device)
    tokens = batch * new_tokens
    ratio = t["ours"] / t["generate"]
    print(f"   batch {batch}, {beams} beams, {new_tokens} new tokens: ours {1e3 * t['ours'] / tokens:.3f} ms/token, "
          f"generate {1e3 * t['generate'] / tokens:.3f} ms/token, ratio {ratio:.2f} "
          f"(target <= {BEAM_TARGET}) {verdict(ratio <= BEAM_TARGET)}; same sequences: {same}")
    return ratio <= BEAM_TARGET and same


def load_model(device: torch.device) -> tuple[GPT, str]:
    try:
        from companion import pretrained

        model, _ = pretrained.load("tiny-gpt", device=device)
        return model, "shipped tiny-gpt"
    except (ValueError, FileNotFoundError, KeyError, ImportError) as error:
        from companion.train import PRESETS

        print(f"   (the shipped tiny-gpt is not available: {error}; using a randomly initialised GPT "
              "of the tiny preset instead)")
        return GPT(PRESETS["tiny"].model, seed=0).to(device).eval(), "random tiny-preset GPT"


def bench_cache(model: GPT, label: str, device: torch.device, repeats: int) -> bool:
    context, prompt_len, batch = model.config.block_size, 16, 4
    new = context - prompt_len
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt_len), generator=make_generator(2)).to(device)
    recompute = lambda idx: model(idx)  # noqa: E731 (no decode_step: the decoder re-runs the prefix)
    print(f"\n2. cached vs recomputed decoding, {label}: greedy, batch {batch}, {prompt_len} -> {context} tokens")
    t = interleaved({"cached": lambda: greedy_search(model, ids, new),
                     "recompute": lambda: greedy_search(recompute, ids, new)}, max(1, repeats // 2), device)
    speedup = t["recompute"] / t["cached"]
    print(f"   cached {t['cached']:.2f} s, recompute {t['recompute']:.2f} s, speed-up {speedup:.1f}x "
          f"(target >= {CACHE_TARGET}) {verdict(speedup >= CACHE_TARGET)}")
    return speedup >= CACHE_TARGET


def bench_throughput(model: GPT, label: str, device: torch.device, repeats: int, new_tokens: int) -> None:
    batch = 4
    ids = torch.randint(0, model.config.vocab_size, (batch, 16), generator=make_generator(3)).to(device)
    print(f"\n3. tokens/s on the {label} (batch {batch}, 16-token prompts, {new_tokens} new tokens, no eos)")
    runs = {
        "greedy": lambda: greedy_search(model, ids, new_tokens),
        "beam 4": lambda: beam_search(model, ids, 4, new_tokens),
        "beam 8": lambda: beam_search(model, ids, 8, new_tokens),
        "top-p 0.9": lambda: sample(model, ids, new_tokens, top_p=0.9, generator=make_generator(0)),
    }
    for name, seconds in interleaved(runs, repeats, device).items():
        print(f"   {name:10s} {batch * new_tokens / seconds:8.0f} tokens/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 on a crowded machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = get_device()
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    beam_ok = bench_beam_vs_transformers(device, args.repeats, args.new_tokens)
    model, label = load_model(device)
    cache_ok = bench_cache(model, label, device, args.repeats)
    bench_throughput(model, label, device, args.repeats, args.new_tokens)
    print(f"\nbeam search per token <= generate: {verdict(beam_ok)}; cached >= {CACHE_TARGET}x: {verdict(cache_ok)}")


if __name__ == "__main__":
    record.run("decoding", main)
