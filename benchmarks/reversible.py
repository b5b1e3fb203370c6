"""Activation memory and time of a training step: ordinary residual vs checkpointed vs reversible layers.

Model (`companion.layer_stacks.layer_stack`): N reversible blocks on 16 x 256 tokens of width 256 (float32),
f = g = LayerNorm -> Linear(256, 256) -> GELU -> Dropout(0.1) -> Linear(256, 256), each with its own
weights (an attention-free stand-in for the Reformer's attention f and feed-forward g). The input x is fed
as both halves, ``seq(x, x)``; loss ``mean((y1 + y2)**2)`` (`companion.layer_stacks.training_step_case`).
The same blocks run in the three modes of `ReversibleSequence`: "residual" (ordinary autograd),
"checkpoint" (torch.utils.checkpoint per block, use_reentrant=False) and "reversible".

Activation memory = peak during forward + backward, less the level just before the step, less the bytes
of the parameter gradients (which grow with depth whatever the method). Each case runs in a fresh process
via `companion.memory.peak_memory` (its docstring gives the method): on CPU the resident-set high-water
mark with glibc returning every block of 64 KiB or more to the system when freed; on CUDA the allocator's
peak counter. Precision on CPU: whole 4 KiB pages, plus memory that is not tensors (malloc's small-object
heap, Python objects, the reversible layers' saved random states of about 5 kB per call of f or g). A
control case with a known 48 MiB peak is printed; at 8 blocks the method agreed within 0.4 MiB with an
exact count of live tensor bytes taken with a torch dispatch mode.

Targets (issue 5): reversible at 64 blocks within 1.2x of 8 blocks; a reversible step at most 1.5x the
time of an ordinary one. Steps are timed in this process at --time-depth blocks, the three modes one
after the other in each round; the verdict uses the median over rounds of each round's ratio, so that
load from other processes drifting between rounds cancels. Expect about 1.4-1.5x on CPU: the backward
pass runs every f and g forward once more, and here a forward costs nearly as much as a backward because
drawing dropout masks on the CPU is slow.

Run: python benchmarks/reversible.py [--depths 8 32 64] [--repeats 7] [--time-depth 8]
"""

from __future__ import annotations

import argparse
import statistics
import time

import record
import torch

from companion.device import get_device
from companion.layer_stacks import layer_stack, training_step_case
from companion.memory import peak_memory

MODES = ("residual", "checkpoint", "reversible")  # the modes of ReversibleSequence, reference first
MEMORY_TARGET, TIME_TARGET = 1.2, 1.5
MiB = 2**20
SIZES = {"batch": 16, "length": 256, "width": 256, "d_ff": 256, "dropout": 0.1}


def activation_mib(mode: str, depth: int, device: str) -> float:
    """Peak of one training step in a fresh process, less the parameter-gradient bytes."""
    report = peak_memory("companion.layer_stacks:training_step_case", depth, mode, device=device, threads=2,
                         **SIZES)
    return (report.peak_bytes - grad_bytes(depth)) / MiB


def grad_bytes(depth: int) -> int:
    model = layer_stack(depth, width=SIZES["width"], d_ff=SIZES["d_ff"])
    return sum(p.numel() * p.element_size() for p in model.parameters())


def step_times(depth: int, repeats: int, device: str) -> dict[str, list[float]]:
    """Seconds of each timed training step per mode; modes interleaved so load drifts hit them alike."""
    steps = {mode: training_step_case(depth, mode, device=device, **SIZES) for mode in MODES}
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for repeat in range(repeats + 1):
        for mode, step in steps.items():
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()  # gradients accumulate into .grad across steps: the same work every time
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if repeat > 0:  # the first round is warm-up
                times[mode].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (one step per mode each)")
    parser.add_argument("--time-depth", type=int, default=8, help="depth at which steps are timed")
    args = parser.parse_args()
    torch.set_num_threads(2)
    device = str(get_device())
    depths = args.depths

    print(f"device {device}; tokens 16x256, width 256; f = g = LayerNorm-Linear-GELU-Dropout(0.1)-Linear")
    print("activation memory of one training step, MiB (peak - level before - parameter gradients)")
    ratio_label = f"{depths[-1]}/{depths[0]}"
    print(f"{'mode':<12}" + "".join(f"{d:>6} blocks" for d in depths) + f"{ratio_label:>10}")
    memory: dict[str, list[float]] = {}
    for mode in MODES:
        memory[mode] = [activation_mib(mode, depth, device) for depth in depths]
        ratio = memory[mode][-1] / memory[mode][0]
        print(f"{mode:<12}" + "".join(f"{m:>13.1f}" for m in memory[mode]) + f"{ratio:>9.2f}x", flush=True)
    grads = [grad_bytes(depth) / MiB for depth in depths]
    print(f"{'(grads)':<12}" + "".join(f"{g:>13.1f}" for g in grads) + "   subtracted above")
    control = peak_memory("companion.memory:allocate_bytes", 48 * MiB, device=device).peak_bytes / MiB
    print(f"control: a known 48.0 MiB allocation measures {control:.1f} MiB")

    times = step_times(args.time_depth, args.repeats, device)
    print(f"\nstep time at {args.time_depth} blocks, {args.repeats} rounds: median time, median of "
          "each round's ratio to residual")
    ratios = {}
    for mode in MODES:
        ratios[mode] = statistics.median(t / r for t, r in zip(times[mode], times["residual"], strict=True))
        print(f"{mode:<12}{statistics.median(times[mode]):>8.3f} s {ratios[mode]:>6.2f}x")

    flat = memory["reversible"][-1] / memory["reversible"][0]
    slower = ratios["reversible"]
    print()
    print(f"{'PASS' if flat <= MEMORY_TARGET else 'FAIL'}: reversible memory at {ratio_label} blocks = "
          f"{flat:.2f}x (target <= {MEMORY_TARGET}x)")
    print(f"{'PASS' if slower <= TIME_TARGET else 'FAIL'}: reversible step time / residual = {slower:.2f}x "
          f"(target <= {TIME_TARGET}x)")


if __name__ == "__main__":
    record.run("reversible", main)
