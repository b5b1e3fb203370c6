"""The course's two commands, runnable with nothing but Python 3.10+.

    python3 make.py book   # set up .venv, install everything, build the website
    python3 make.py test   # set up if needed, then ruff, the book build (-W) and pytest
    python3 make.py notebooks   # export every chapter as a .ipynb into _build/notebooks/

Set-up is incremental: it reinstalls only when requirements.txt, constraints.txt
or pyproject.toml change. On a Linux machine without an NVIDIA driver it installs
a CPU build of torch, never the multi-GB CUDA build.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed"
# Where a CPU-only torch comes from when the default index would give a CUDA build.
CPU_TORCH_INDEX = os.environ.get("COMPANION_TORCH_INDEX", "https://download.pytorch.org/whl/cpu")


def run(*cmd: str | Path, check: bool = True) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT)
    if check and code != 0:
        sys.exit(code)
    return code


def pinned(name: str) -> str:
    """The exact requirement for ``name`` from constraints.txt, e.g. ``torch==2.13.0``."""
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(name + "=="):
            return line.strip()
    return name


def wants_cpu_torch() -> bool:
    # Linux wheels on the default index are CUDA builds; without a driver they are
    # gigabytes of dead weight. macOS and Windows wheels are CPU/MPS builds already.
    return platform.system() == "Linux" and shutil.which("nvidia-smi") is None


def install_torch() -> None:
    """Install the pinned torch alone (its dependencies come with requirements.txt)."""
    pip = [PY, "-m", "pip", "install", "-q", "--no-deps", pinned("torch")]
    # A CPU wheel already on this machine (a find-links folder or wheel cache) wins;
    # otherwise the CPU index of the PyTorch project.
    if run(*pip, "--no-index", check=False) != 0:
        run(*pip, "--index-url", CPU_TORCH_INDEX)


def setup() -> None:
    if not PY.exists():
        print(f"Creating the virtual environment {VENV.name}/", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    files = [ROOT / f for f in ("requirements.txt", "constraints.txt", "pyproject.toml")]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if wants_cpu_torch():
        install_torch()
    run(PY, "-m", "pip", "install", "-q", "-r", "requirements.txt", "-c", "constraints.txt")
    run(PY, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3")
    STAMP.write_text(digest)


def build_book() -> int:
    code = run(BIN / "jupyter-book", "build", ".", "-W", "-n", "--keep-going", check=False)
    if code == 0:
        print(f"\nThe website is built: open {(ROOT / '_build' / 'html' / 'index.html').as_uri()}")
    return code


def export_notebooks() -> None:
    out = ROOT / "_build" / "notebooks"
    for md in sorted((ROOT / "book").rglob("*.md")):
        if "kernelspec:" in md.read_text(encoding="utf-8"):
            target = out / md.relative_to(ROOT / "book").with_suffix(".ipynb")
            target.parent.mkdir(parents=True, exist_ok=True)
            run(BIN / "jupytext", "--quiet", "--to", "ipynb", "-o", target, md)
    print(f"Notebooks written to {out}")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "book"
    if command not in {"book", "test", "notebooks", "setup"}:
        print(__doc__)
        return 2
    setup()
    if command == "book":
        return build_book()
    if command == "notebooks":
        export_notebooks()
        return 0
    if command == "test":
        lint = run(BIN / "ruff", "check", ".", check=False)
        book = build_book()
        tests = run(PY, "-m", "pytest", *argv[1:], check=False)
        print(f"ruff: {'ok' if lint == 0 else 'FAILED'}, book build: {'ok' if book == 0 else 'FAILED'}, "
              f"pytest: {'ok' if tests == 0 else 'FAILED'}")
        return lint or book or tests
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
