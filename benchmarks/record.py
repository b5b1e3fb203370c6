"""Keep each benchmark's last measured figures in benchmarks/results/<name>.json for the book's appendix.

A benchmark script ends with

    if __name__ == "__main__":
        record.run("attention", main)

which runs ``main`` as before (its report still goes to the terminal) and then writes what it printed, with the
date, the machine, the torch version and the thread count. Every printed line that ends its check with PASS or
FAIL becomes a check in the file (a benchmark that only measures has none, and ``passed`` is null).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
FIELDS = ("benchmark", "date", "machine", "python", "torch", "threads", "checks", "passed", "report")
VERDICT = re.compile(r"\b(PASS|FAIL)\b")


class Tee(io.TextIOBase):
    """Write to the terminal and keep a copy."""

    def __init__(self, stream):
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.stream.write(text)
        return self.copy.write(text)

    def flush(self) -> None:
        self.stream.flush()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    return {"system": platform.system(), "arch": platform.machine(), "cpu": cpu_name(), "cores": os.cpu_count()}


def checks(report: str) -> list[dict]:
    found = []
    for line in report.splitlines():
        verdicts = VERDICT.findall(line)
        if verdicts and not line.startswith(("OVERALL", "ALL PASS", "SOME FAIL")):
            found.append({"check": VERDICT.sub("", line).strip(" :;"), "pass": "FAIL" not in verdicts})
    return found


def result(name: str, report: str) -> dict:
    import torch

    found = checks(report)
    return {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "checks": found,
        "passed": all(c["pass"] for c in found) if found else None,  # None: a measurement without targets
        "report": report.rstrip("\n").splitlines(),
    }


def run(name: str, main: Callable[[], object], folder: Path = RESULTS) -> Path:
    """Run a benchmark's ``main``, then write its results file; returns the file's path."""
    tee = Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        main()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(result(name, tee.copy.getvalue()), indent=1, ensure_ascii=False) + "\n")
    print(f"results written to {path.relative_to(path.parents[2]) if folder == RESULTS else path}")
    return path


def fastest(fn: Callable[[], object], repeats: int, *, warm_up: bool = True) -> float:
    """The shortest of ``repeats`` timed calls of ``fn`` in seconds (after one untimed warm-up call)."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
