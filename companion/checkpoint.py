"""Checkpoints of a training run: a GPT's weights and its optimizer's state, saved and restored exactly.

One checkpoint is two files in the run's folder:

* ``checkpoint-<step>.safetensors``: the model's weights (``model.<name>``) and the optimizer's state
  flattened to tensors (``optim.<index>.<key>``). safetensors holds tensors only, so loading it never
  runs code (unlike a pickle).
* ``checkpoint.json``: the manifest, which names that file and records its sha256, the step, the run's
  config and the loss history so far.

Both are written atomically (a temporary file, then a rename) and the manifest last, so an interrupted
write leaves the previous checkpoint intact and the manifest never points at a half-written file.
Resuming restores weights and optimizer state bit for bit; `companion.train` makes the rest of the run
(batches, dropout noise) depend only on the step, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save

from companion.files import atomic_write, read_verified, sha256_hex
from companion.gpt import GPT


def model_tensors(model: GPT) -> dict[str, torch.Tensor]:
    """The weights to save: the tied output matrix is stored once, as ``wte.weight``."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}


def load_model_tensors(model: GPT, tensors: dict[str, torch.Tensor]) -> None:
    """Copy ``tensors`` (as `model_tensors` returns them) into ``model``; raise ValueError if they do not fit."""
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if set(missing) - {"lm_head.weight"} or unexpected:
        raise ValueError(f"weights do not fit the model: missing {missing}, unexpected {unexpected}")


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    # Adam's state is a few tensors per parameter (step, exp_avg, exp_avg_sq): flatten to "optim.<i>.<key>".
    return {f"optim.{index}.{key}": torch.as_tensor(value).detach().cpu().contiguous()
            for index, state in optimizer.state_dict()["state"].items() for key, value in state.items()}


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    # the param groups (learning rate, weight decay) come from the optimizer as built, not from the file
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})


def save_checkpoint(out: Path, step: int, model: GPT, optimizer: torch.optim.Optimizer, config: Any,
                    history: list) -> None:
    """Write ``checkpoint-<step>.safetensors``, then point ``checkpoint.json`` at it, then drop older files.

    ``config`` is the run's settings (a dataclass, such as `companion.train.TrainConfig`), stored as JSON.
    """
    tensors = {f"model.{k}": v for k, v in model_tensors(model).items()} | _optimizer_tensors(optimizer)
    data = save(tensors)
    name = f"checkpoint-{step:07d}.safetensors"
    atomic_write(out / name, data)
    manifest = {"step": step, "file": name, "sha256": sha256_hex(data), "config": asdict(config), "history": history}
    atomic_write(out / "checkpoint.json", json.dumps(manifest, indent=1))
    for old in out.glob("checkpoint-*.safetensors"):
        if old.name != name:
            old.unlink()


def load_checkpoint(out: Path, model: GPT, optimizer: torch.optim.Optimizer) -> tuple[int, list]:
    """Restore model and optimizer from ``out/checkpoint.json``; return (step, history)."""
    manifest = json.loads((out / "checkpoint.json").read_text())
    tensors = load(read_verified(out / manifest["file"], manifest["sha256"]))
    load_model_tensors(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    _load_optimizer(optimizer, {k: v for k, v in tensors.items() if k.startswith("optim.")})
    return manifest["step"], manifest["history"]
