"""Tests for companion.checkpoint: an exact round trip of model and optimizer, checksums, weights that do not fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from companion import checkpoint as C
from companion import train as T
from companion.gpt import GPT, GPTConfig


def test_checkpoint_round_trip_restores_model_and_optimizer_exactly(tmp_path):
    config = T.PRESETS["test"]
    config = T.replace(config, model=T.replace(config.model, vocab_size=60))
    ids = np.random.default_rng(0).integers(0, 60, 2000).astype(np.uint16)
    model, history = T.train(config, ids, ids, tmp_path, show_progress=False)
    fresh = GPT(config.model, seed=99)
    optimizer = T.make_optimizer(fresh, config)
    step, restored_history = C.load_checkpoint(tmp_path, fresh, optimizer)
    assert step == config.steps and restored_history == history
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True))
    assert len(optimizer.state) == len(list(fresh.parameters()))
    assert all(torch.is_tensor(s["exp_avg_sq"]) and s["exp_avg_sq"].abs().sum() > 0 for s in optimizer.state.values())
    assert len(list(tmp_path.glob("checkpoint-*.safetensors"))) == 1  # older ones are removed

    (tmp_path / json.loads((tmp_path / "checkpoint.json").read_text())["file"]).write_bytes(b"broken")
    with pytest.raises(ValueError, match="is corrupt: its sha256 is"):
        C.load_checkpoint(tmp_path, fresh, optimizer)


def test_model_tensors_store_the_tied_matrix_once_and_load_back():
    config = GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=2, n_embd=16)
    model, fresh = GPT(config, seed=1), GPT(config, seed=2)
    tensors = C.model_tensors(model)
    assert "lm_head.weight" not in tensors and "wte.weight" in tensors
    C.load_model_tensors(fresh, tensors)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True))
    assert fresh.lm_head.weight.data_ptr() == fresh.wte.weight.data_ptr()  # still tied after loading
    with pytest.raises(ValueError, match="weights do not fit the model: missing"):
        C.load_model_tensors(fresh, {k: v for k, v in tensors.items() if k != "wte.weight"})
    with pytest.raises(ValueError, match="unexpected"):
        C.load_model_tensors(fresh, tensors | {"extra.weight": torch.zeros(1)})
