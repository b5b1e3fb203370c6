"""The course's two commands, runnable with nothing but Python 3.11+.

    python3 make.py book   # set up .venv, install everything, build the website
    python3 make.py test   # set up if needed, then ruff, the book build (-W) and pytest (browser test included)
    python3 make.py notebooks   # build, then copy every chapter as a reader's .ipynb into _build/notebooks/

Set-up is incremental: it reinstalls only when requirements.txt, constraints.txt
or pyproject.toml change. On a Linux machine without an NVIDIA driver it installs
a CPU build of torch, never the multi-GB CUDA build.

Chapters execute at build time and are cached by Jupyter Book, which keys the cache on a chapter's code alone;
the cache is also thrown away here whenever the `companion` package changes, so a page never shows outputs
computed by older code.
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


BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"
PACKAGE_STAMP = BUILD / "companion.sha256"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def package_digest() -> str:
    """A hash of every file of the `companion` package (code, shipped models and results)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "companion").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def key_cache_on_package() -> None:
    """Drop the execution cache when `companion` changed since the cache was filled."""
    digest = package_digest()
    stamped = PACKAGE_STAMP.read_text() if PACKAGE_STAMP.exists() else None
    if CACHE.exists() and stamped != digest:
        print("companion changed since the last build: every chapter executes again", flush=True)
        shutil.rmtree(CACHE)
    BUILD.mkdir(exist_ok=True)
    PACKAGE_STAMP.write_text(digest)


def build_book() -> int:
    key_cache_on_package()
    code = run(BIN / "jupyter-book", "build", ".", "-W", "-n", "--keep-going", check=False)
    if code == 0:
        print(f"\nThe website is built: open {(ROOT / '_build' / 'html' / 'index.html').as_uri()}")
    return code


def export_notebooks() -> int:
    """The reader's notebooks the build writes behind each page's .ipynb download, copied together."""
    code = build_book()
    sources, out = BUILD / "html" / "_sources" / "book", BUILD / "notebooks"
    for notebook in sorted(sources.rglob("*.ipynb")):
        target = out / notebook.relative_to(sources)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(notebook, target)
    print(f"Notebooks written to {out}: open them with .venv/bin/jupyter lab {out.relative_to(ROOT)}")
    return code


def browser_available() -> bool:
    return bool(os.environ.get("COMPANION_CHROMIUM")) or any(shutil.which(name) for name in BROWSERS)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "book"
    if command not in {"book", "test", "notebooks", "setup"}:
        print(__doc__)
        return 2
    setup()
    if command == "book":
        return build_book()
    if command == "notebooks":
        return export_notebooks()
    if command == "test":
        lint = run(BIN / "ruff", "check", ".", check=False)
        book = build_book()
        tests = run(PY, "-m", "pytest", *argv[1:], check=False)
        print(f"ruff: {'ok' if lint == 0 else 'FAILED'}, book build: {'ok' if book == 0 else 'FAILED'}, "
              f"pytest: {'ok' if tests == 0 else 'FAILED'}")
        if not browser_available():
            print("browser test: SKIPPED, no Chromium on this machine. Install it to run tests/test_browser.py "
                  "(Debian/Ubuntu: sudo apt-get install chromium fonts-noto-cjk), or run .ci/run, which does.")
        return lint or book or tests
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
