"""Measure the peak memory of one computation, each in a fresh Python process.

    report = peak_memory("companion.attention:attention_case", "lsh", 16384)
    print(report.peak_mib, report.seconds)

``target`` names a function ``module:function`` importable in the child. It is called as
``target(*args, device=device, **kwargs)`` to build the inputs and must return a zero-argument callable:
the computation to measure. Building the inputs is not counted; the peak is what the callable adds on top
(its intermediates and its result). A fresh process per case means nothing freed by an earlier case hides
in an allocator cache, and a crash or out-of-memory kill stays in the child.

How the peak is read, and how precise it is:

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``. Exact for tensors (rounded to
  512-byte blocks); cuBLAS/cuDNN workspaces and the CUDA context are not counted.
* Linux CPU: the resident-set high-water mark ``VmHWM`` from ``/proc/self/status``, reset to the current
  resident size just before the call by writing 5 to ``/proc/self/clear_refs``. The child runs with glibc's
  ``MALLOC_MMAP_THRESHOLD_=65536``, so every block of 64 KiB or more is its own mapping that goes back to the
  system when freed (glibc would otherwise raise the threshold on the fly and keep freed blocks cached).
  Precision: pages (4 KiB) per block, a few MiB for small allocations and libraries touched for the first
  time, and pages that are allocated but never written are not counted. Measured to within 1% on a 200 MB
  tensor (tests/test_memory.py).
* Other systems (macOS): ``ru_maxrss`` (bytes on macOS, KiB on Linux) minus its value before the call.
  It cannot be reset, so a transient peak during start-up hides increments below it, and the allocator may
  reuse cached memory: treat small numbers as rough. On Apple's MPS device tensors live outside the process's
  resident set and are not seen at all: measure on the CPU there.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from companion.checks import positive_int

_MARKER = "companion.memory report: "


@dataclass(frozen=True)
class MemoryReport:
    """Peak memory of one measured call, in bytes above the level just before it."""

    peak_bytes: int
    baseline_bytes: int  # resident (CPU) or allocated (CUDA) bytes just before the call
    seconds: float  # wall time of the measured call (memory tracking may slow it down: time elsewhere)
    device: str
    method: str  # how the peak was read

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / 2**20


def peak_memory(target: str, *args: Any, device: str = "cpu", threads: int | None = None,
                timeout_s: float = 900, **kwargs: Any) -> MemoryReport:
    """Run ``target(*args, device=device, **kwargs)()`` in a fresh process and report its peak memory.

    ``args`` and ``kwargs`` must be JSON values. ``threads`` pins ``torch.set_num_threads`` in the child.
    Raises ``RuntimeError`` with the child's error output if it fails (``MemoryError`` if it was killed).
    """
    if not isinstance(target, str) or target.count(":") != 1:
        raise ValueError(f"target must look like 'package.module:function', got {target!r}")
    if threads is not None:
        positive_int(threads, "threads")
    spec = json.dumps({"target": target, "args": args, "kwargs": kwargs, "device": device,
                       "threads": threads})
    env = dict(os.environ)
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    # the child sees the same modules as we do (a script's folder, an editable install, the notebook's cwd)
    paths = [os.path.abspath(p or ".") for p in sys.path if os.path.isdir(p or ".")]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    done = subprocess.run([sys.executable, "-m", "companion.memory", spec], capture_output=True, text=True,
                          env=env, timeout=timeout_s)
    lines = [line for line in done.stdout.splitlines() if line.startswith(_MARKER)]
    if done.returncode != 0 or not lines:
        if done.returncode in (-9, 137):
            raise MemoryError(f"{target}{tuple(args)} was killed (out of memory?)")
        raise RuntimeError(f"{target}{tuple(args)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return MemoryReport(**json.loads(lines[-1][len(_MARKER):]))


def _rss_status() -> tuple[int, int]:
    """(VmRSS, VmHWM) in bytes from /proc/self/status."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, amount, _unit = line.split()
                values[key] = int(amount) * 1024
    return values["VmRSS:"], values["VmHWM:"]


def _max_rss_bytes() -> int:
    import resource  # POSIX only, so imported where it is needed

    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _run_child(spec: dict[str, Any]) -> MemoryReport:
    module_name, function_name = spec["target"].split(":")
    build = getattr(importlib.import_module(module_name), function_name)
    import torch

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    torch.ones(256, 256) @ torch.ones(256, 256)  # start the thread pool before measuring
    compute = build(*spec["args"], device=str(device), **spec["kwargs"])
    if not callable(compute):
        raise TypeError(f"{spec['target']} must return a zero-argument callable, "
                        f"got {type(compute).__name__}")
    gc.collect()

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        baseline, method = torch.cuda.memory_allocated(device), "torch.cuda.max_memory_allocated"
    else:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the high-water mark to the current resident size
            baseline, method = _rss_status()[0], "VmHWM after clear_refs"
        except OSError:
            baseline, method = _max_rss_bytes(), "ru_maxrss delta"

    start = time.perf_counter()
    result = compute()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start

    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    elif method == "VmHWM after clear_refs":
        peak = _rss_status()[1]
    else:
        peak = _max_rss_bytes()
    del result
    return MemoryReport(max(0, peak - baseline), baseline, seconds, str(device), method)


def attention_memory_bytes(length: int, dim: int = 64, *, method: str = "full", batch: int = 1,
                           heads: int = 1, bucket_size: int = 64, block_scores: int = 2**19,
                           bytes_per_element: int = 4) -> int:
    """A back-of-the-envelope model of the working memory of inference attention (inputs not counted).

    ``"full"``: the score matrix and its softmax (2 L^2) plus the output (L d) per head.
    ``"lsh"`` (`companion.attention.lsh_attention`, one round at a time): about 10 L d for the sorted copies
    of queries, keys and values, their look-back windows, the round's output, the running output and the
    merge, plus three arrays of one block of scores (``block_scores``: ``companion.attention._BLOCK_SCORES``).
    It matches `peak_memory` within about 15% from L = 1024 to 65536 at d = 64.
    """
    positive_int(length, "length")
    positive_int(dim, "dim")
    if method == "full":
        per_head = 2 * length * length + length * dim
    elif method == "lsh":
        padded = -(-length // bucket_size) * bucket_size
        per_head = 10 * padded * dim + 3 * min(padded * 2 * bucket_size, block_scores)
    else:
        raise ValueError(f"method must be 'full' or 'lsh', got {method!r}")
    return batch * heads * per_head * bytes_per_element


def saved_activation_bytes(module: Any, *inputs: Any) -> int:
    """Bytes of the distinct activation storages autograd saves for the backward pass of ``module(*inputs)``.

    Runs the forward pass once with gradients on, inside ``torch.autograd.graph.saved_tensors_hooks``: autograd
    hands every tensor it keeps for the backward pass to the hook. Several saved tensors may be views of one
    block of memory (a ReLU output kept by the ReLU and by the next linear map), so they are counted by their
    storage (``untyped_storage().data_ptr()``), once each. The module's parameters and buffers are saved too,
    but they exist anyway: they are left out. The inputs count if autograd keeps them (they are activations of
    the layer below).
    """
    import torch

    if not callable(module):
        raise TypeError(f"module must be callable (e.g. an nn.Module), got {type(module).__name__}")
    own = set()
    if isinstance(module, torch.nn.Module):
        own = {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers()]}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        pointer = t.untyped_storage().data_ptr()
        if pointer not in own:
            storages[pointer] = t.untyped_storage().nbytes()
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(*inputs)
    return sum(storages.values())


def allocate_bytes(n_bytes: int, *, device: str = "cpu"):
    """A calibration case for `peak_memory`: returns a callable that allocates and fills ``n_bytes``."""
    import torch

    def compute() -> torch.Tensor:
        return torch.ones(n_bytes, dtype=torch.uint8, device=device)

    return compute


if __name__ == "__main__":
    report = _run_child(json.loads(sys.argv[1]))
    print(_MARKER + json.dumps(asdict(report)), flush=True)
