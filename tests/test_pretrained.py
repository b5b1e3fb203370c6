"""Tests for companion.pretrained: checksums, safe loading, and the model shipped in the package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from companion import pretrained
from companion import train as T
from companion.bpe import BPETokenizer
from companion.gpt import GPT, GPTConfig

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "companion" / "models" / "tiny-gpt"
TEXTS = ["Return the sum of a and b.", "Open the file and read every line.", "한국어 문장도 됩니다."]


@pytest.fixture()
def model_folder(tmp_path) -> Path:
    """A folder written by companion.train's write_model, with a small random model."""
    tokenizer = BPETokenizer.train(TEXTS, vocab_size=270, show_progress=False)
    tokenizer.save(tmp_path / "source-tokenizer.json")
    config = T.replace(T.PRESETS["test"], model=GPTConfig(vocab_size=270, block_size=16, n_layer=1, n_head=2,
                                                          n_embd=16))
    T.write_model(tmp_path, GPT(config.model, seed=5), tmp_path / "source-tokenizer.json", config, [], {},
                  ["--preset", "test"], name="test-model")
    return tmp_path


def test_load_folder_returns_the_model_in_eval_mode_and_its_tokenizer(model_folder):
    model, tokenizer = pretrained.load(model_folder, device="cpu")
    reference = GPT(model.config, seed=5)
    assert not model.training
    assert model.lm_head.weight is model.wte.weight  # still tied after loading
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values(),
                                                 strict=True))
    assert tokenizer.decode(tokenizer.encode(TEXTS[2])) == TEXTS[2]
    assert pretrained.manifest(model_folder)["model_config"]["n_embd"] == 16


def test_corrupted_weights_raise_a_clear_error(model_folder):
    path = model_folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # one flipped bit in the last weight
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"model.safetensors is corrupt: its sha256 is [0-9a-f]{64}, the manifest"):
        pretrained.load(model_folder)


def test_corrupted_tokenizer_raises(model_folder):
    path = model_folder / "tokenizer.json"
    path.write_text(path.read_text().replace('"merges"', '"merges" ', 1))
    with pytest.raises(ValueError, match="tokenizer.json is corrupt"):
        pretrained.load(model_folder)


def test_available_lists_shipped_language_models_only():
    names = pretrained.available()
    assert "tiny-gpt" in names and "duplication" not in names  # results are not language models
    for name in names:
        manifest = pretrained.manifest(name)
        assert manifest["name"] == name and "model_config" in manifest and "tokenizer.json" in manifest["files"]


def test_unknown_name_raises():
    with pytest.raises(ValueError, match=r"name must be one of \[.*\] or a folder with manifest.json, got 'nope'"):
        pretrained.load("nope")


def test_pretrained_is_an_alias_of_load_and_the_module_is_callable(model_folder):
    import companion

    assert pretrained.pretrained is pretrained.load
    model, tokenizer = companion.pretrained(model_folder, device="cpu")
    assert isinstance(model, GPT) and not model.training
    assert tokenizer.encode("the") == pretrained.load(model_folder)[1].encode("the")


# --- the shipped model -------------------------------------------------------------------------------


def test_shipped_model_is_listed_small_and_fully_described():
    assert "tiny-gpt" in pretrained.available()
    manifest = pretrained.manifest("tiny-gpt")
    weights = SHIPPED / "model.safetensors"
    assert set(manifest["files"]) == {"model.safetensors", "tokenizer.json"}
    assert weights.stat().st_size <= 25 * 2**20
    for key in ("model_config", "train_config", "command", "steps", "final_train_loss", "final_valid_loss",
                "corpus_checksum", "python_version", "files", "evaluation", "name"):
        assert key in manifest, key
    assert manifest["command"].startswith("python -m companion.train --preset tiny")
    assert manifest["name"] == "tiny-gpt"
    assert manifest["model_config"]["block_size"] >= 256
    assert 1_000_000 <= manifest["parameters"] <= 10_000_000
    assert manifest["evaluation"]["perplexity"] <= 0.3 * manifest["evaluation"]["unigram_perplexity"]


def test_shipped_model_loads_and_predicts_held_out_text_far_better_than_unigram():
    model, tokenizer = pretrained.load("tiny-gpt", device="cpu")
    manifest = pretrained.manifest("tiny-gpt")
    assert model.num_parameters() == manifest["parameters"]
    text = ("Return a new list containing all items from the iterable in ascending order.\n\n"
            "If the file does not exist, a FileNotFoundError is raised.")
    ids = torch.tensor([tokenizer.encode(text)])
    with torch.no_grad():
        logits = model(ids)
    loss = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:]).item()
    assert loss < manifest["evaluation"]["unigram_loss"] - 1.0  # about e (2.7x) better per token at least
    # the cache gives the same next-token logits as the full pass on the real weights
    cached, cache = model.decode_step(ids[:, :10])
    for t in range(10, ids.shape[1]):
        step, cache = model.decode_step(ids[:, t: t + 1], cache)
        cached = torch.cat([cached, step], dim=1)
    torch.testing.assert_close(cached, logits, rtol=0, atol=1e-4)


def test_shipped_tokenizer_is_the_chapter_one_tokenizer():
    manifest = pretrained.manifest("tiny-gpt")
    data = json.loads((SHIPPED / "tokenizer.json").read_text())
    assert len(data["model"]["vocab"]) == manifest["model_config"]["vocab_size"] == 4096
    assert manifest["train_config"]["vocab_size"] == 4096


def test_non_editable_install_ships_and_loads_the_model(tmp_path):
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "companion", source / "companion", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-cache-dir", "--target", str(target), str(source)], check=True, capture_output=True)
    assert (target / "companion" / "models" / "tiny-gpt" / "model.safetensors").exists()
    script = ("import companion, companion.pretrained as p; m, t = p.load('tiny-gpt', device='cpu');"
              "print(companion.__file__); print(m.num_parameters(), len(t.encode('hello world')))")
    env = os.environ | {"PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            check=True)
    location, numbers = result.stdout.split("\n")[:2]
    assert location.startswith(str(target))  # the installed copy, not the working tree
    assert int(numbers.split()[0]) == pretrained.manifest("tiny-gpt")["parameters"]


def test_load_never_unpickles(model_folder, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used")

    monkeypatch.setattr("pickle.loads", forbidden)
    monkeypatch.setattr("pickle.load", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    model, _ = pretrained.load(model_folder)
    assert isinstance(model, GPT) and np.isfinite(model.wte.weight.sum().item())
