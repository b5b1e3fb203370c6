"""Tests for companion.train: schedule, batches, exact resume after SIGKILL, torchrun, and the command line.

The checkpoint format is tested in test_checkpoint.py, token ids and loss estimates in test_lm_eval.py.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from companion import train as T
from companion.gpt import GPT, GPTConfig

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the model reads a token and predicts the next one while attention looks back over "
         "every earlier position of the sequence so that loss falls as training goes on").split()


def write_corpus(folder: Path) -> tuple[Path, Path]:
    """Two small files of made-up English paragraphs (a few thousand tokens)."""
    rng = random.Random(0)

    def paragraphs(n: int) -> str:
        return "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))).capitalize() + "."
                           for _ in range(n))

    train, valid = folder / "train.txt", folder / "valid.txt"
    train.write_text(paragraphs(60))
    valid.write_text(paragraphs(10))
    return train, valid


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("corpus")
    train, valid = write_corpus(folder)
    return {"train": train, "valid": valid, "cache": folder / "cache"}


def cli_args(corpus: dict, out: Path, *extra: str) -> list[str]:
    return ["--preset", "test", "--out", str(out), "--train-text", str(corpus["train"]),
            "--valid-text", str(corpus["valid"]), "--cache-dir", str(corpus["cache"]), "--no-progress", *extra]


def run_cli(args: list[str], launcher: tuple[str, ...] = ("-m", "companion.train"), check: bool = True):
    env = os.environ | {"OMP_NUM_THREADS": "1", "COMPANION_DEVICE": "cpu"}
    result = subprocess.run([sys.executable, *launcher, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_lr_schedule_warms_up_then_decays_to_min_lr():
    config = T.TrainConfig(lr=1e-3, min_lr=1e-4, warmup_steps=10, steps=110)
    assert T.lr_at(0, config) == pytest.approx(1e-4)
    assert T.lr_at(9, config) == pytest.approx(1e-3)
    assert T.lr_at(60, config) == pytest.approx(0.5 * (1e-3 + 1e-4))  # half way down the cosine
    assert T.lr_at(110, config) == pytest.approx(1e-4)
    after_warmup = [T.lr_at(s, config) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(after_warmup, after_warmup[1:], strict=False))


def test_batches_depend_only_on_seed_and_step_and_shards_partition_them():
    ids = np.arange(1000, dtype=np.uint16)
    config = T.TrainConfig(model=GPTConfig(vocab_size=1000, block_size=16), batch_size=6, seed=3)
    x, y = T.get_batch(ids, 7, config)
    assert x.shape == y.shape == (6, 16) and x.dtype == torch.long
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)  # targets are shifted by one
    assert torch.equal(T.get_batch(ids, 7, config)[0], x)
    assert not torch.equal(T.get_batch(ids, 8, config)[0], x)
    shards = [T.get_batch(ids, 7, config, slice(r * 3, (r + 1) * 3))[0] for r in range(2)]
    assert torch.equal(torch.cat(shards), x)


def test_too_short_corpus_raises():
    config = T.TrainConfig(model=GPTConfig(vocab_size=10, block_size=16))
    with pytest.raises(ValueError, match="more than block_size"):
        T.get_batch(np.arange(10), 0, config)


def test_resume_after_sigkill_is_bit_exact(corpus, tmp_path, capsys):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    T.main(cli_args(corpus, whole, "--steps", "17"))  # in this process (one thread, like the subprocess)
    crashed = run_cli(cli_args(corpus, broken, "--steps", "17", "--crash-at-step", "13"), check=False)
    assert crashed.returncode == -9, crashed.stderr  # SIGKILL: no clean-up ran
    assert json.loads((broken / "checkpoint.json").read_text())["step"] == 10
    assert not (broken / "model.safetensors").exists()
    T.main(cli_args(corpus, broken, "--steps", "17", "--resume"))
    a, b = weights(whole), weights(broken)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    manifest_a = json.loads((whole / "manifest.json").read_text())
    manifest_b = json.loads((broken / "manifest.json").read_text())
    assert manifest_a["history"] == manifest_b["history"]
    assert manifest_a["files"] == manifest_b["files"]
    # and a changed setting cannot sneak into a resumed run
    with pytest.raises(SystemExit):
        T.main(cli_args(corpus, broken, "--steps", "20", "--resume"))
    assert "differ from the checkpoint" in capsys.readouterr().err


def test_torchrun_two_processes_equal_one_process_on_the_combined_batch(corpus, tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    T.main(cli_args(corpus, single, "--steps", "6"))
    launcher = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "companion.train")
    run_cli(cli_args(corpus, ddp, "--steps", "6"), launcher=launcher)
    a, b = weights(single), weights(ddp)
    initial = GPT(GPTConfig(**json.loads((single / "manifest.json").read_text())["model_config"]), seed=0)
    assert not torch.equal(a["wte.weight"], initial.wte.weight)  # training moved the weights
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_manifest_records_the_run(corpus, tmp_path):
    T.main(cli_args(corpus, tmp_path, "--steps", "4"))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    from companion.files import sha256_file

    assert manifest["files"]["model.safetensors"]["sha256"] == sha256_file(tmp_path / "model.safetensors")
    assert manifest["files"]["tokenizer.json"]["sha256"] == sha256_file(tmp_path / "tokenizer.json")
    assert manifest["name"] == tmp_path.name
    assert manifest["steps"] == 4 and manifest["model_config"]["block_size"] == 32
    assert manifest["command"].startswith("python -m companion.train --preset test")
    assert manifest["final_valid_loss"] == manifest["history"][-1]["valid_loss"]
    assert len(manifest["corpus_checksum"]["train"]) == 64 and manifest["python_version"].count(".") == 2
    assert manifest["evaluation"]["unigram_perplexity"] > 1


def test_cli_requires_valid_text_with_train_text(corpus, tmp_path, capsys):
    with pytest.raises(SystemExit):
        T.main(["--preset", "test", "--out", str(tmp_path), "--train-text", str(corpus["train"])])
    assert "--valid-text is required" in capsys.readouterr().err


def test_cli_refuses_corpus_with_train_text(corpus, tmp_path, capsys):
    with pytest.raises(SystemExit):
        T.main(cli_args(corpus, tmp_path, "--corpus", "text+code"))
    assert "--corpus chooses the default corpus" in capsys.readouterr().err


def test_corpus_text_plus_code_adds_the_source_to_training_only(tmp_path, monkeypatch):
    from companion import data

    text = {"train": ["the train text. " * 20], "valid": ["held out text. " * 20]}
    monkeypatch.setattr(data, "pretraining_texts", lambda split: text[split])
    monkeypatch.setattr(data, "default_texts", lambda split: text[split])
    monkeypatch.setattr(data, "source_code", lambda split: {"train": ["def f(x):\n    return x\n"]}[split])
    facts = {}
    for corpus_name in ("text", "text+code"):
        args = T.argparse.Namespace(train_text=None, valid_text=None, corpus=corpus_name, tokenizer=None,
                                    cache_dir=str(tmp_path))
        _, _, train_ids, valid_ids, facts[corpus_name] = T._prepare_data(args, T.PRESETS["test"])
    assert facts["text+code"]["tokens"]["train"] > facts["text"]["tokens"]["train"]
    assert facts["text+code"]["tokens"]["valid"] == facts["text"]["tokens"]["valid"]
    assert facts["text+code"]["corpus"] == "companion.data.pretraining_texts + companion.data.source_code"
    assert facts["text"]["corpus"] == "companion.data.pretraining_texts"


def test_batch_size_must_divide_among_processes(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    config = T.PRESETS["test"]
    with pytest.raises(ValueError, match=r"batch_size must be divisible by the number of processes \(3\), got 8"):
        T.train(config, np.arange(500), np.arange(500), tmp_path, device="cpu", show_progress=False)


def test_cli_model_shape_flags_and_name(corpus, tmp_path):
    out = tmp_path / "shaped"
    T.main(cli_args(corpus, out, "--steps", "2", "--n-layer", "1", "--n-head", "4", "--n-embd", "24",
                    "--block-size", "16", "--dropout", "0.0", "--vocab-size", "280", "--name", "shaped-gpt"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["name"] == "shaped-gpt"
    assert {k: manifest["model_config"][k] for k in ("n_layer", "n_head", "n_embd", "block_size", "dropout")} == \
        {"n_layer": 1, "n_head": 4, "n_embd": 24, "block_size": 16, "dropout": 0.0}
    assert manifest["model_config"]["vocab_size"] == 280
    assert manifest["model_config"]["position"] == "learned"  # the default
    assert weights(out)["wte.weight"].shape == (280, 24)


def test_cli_position_flag_trains_a_rotary_model_without_a_position_table(corpus, tmp_path):
    out = tmp_path / "rotary"
    T.main(cli_args(corpus, out, "--steps", "2", "--position", "rotary"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_config"]["position"] == "rotary"
    assert "--position rotary" in manifest["command"]
    assert "wte.weight" in weights(out) and "wpe.weight" not in weights(out)


def test_bf16_precision_runs_the_steps_in_bfloat16_and_learns_like_fp32(tmp_path, monkeypatch):
    ids = np.tile(np.arange(40), 50)  # a repeating pattern: loss falls fast
    config = T.replace(T.PRESETS["test"], vocab_size=40, model=T.replace(T.PRESETS["test"].model, vocab_size=40))
    dtypes, forward = [], GPT.forward

    def recording_forward(self, *args, **kwargs):  # the autocast dtype of each training forward, if any
        if self.training and torch.is_autocast_enabled("cpu"):
            dtypes.append(torch.get_autocast_dtype("cpu"))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(GPT, "forward", recording_forward)
    final = {}
    for precision in T.PRECISIONS:
        dtypes.clear()
        _, history = T.train(T.replace(config, precision=precision), ids, ids, tmp_path / precision, device="cpu",
                             show_progress=False)
        final[precision] = history[-1]["train_loss"]
        assert dtypes == ([torch.bfloat16] * config.steps if precision == "bf16" else [])
    assert final["fp32"] < 0.85 * np.log(40)  # it learned: uniform guessing scores log 40
    assert final["bf16"] == pytest.approx(final["fp32"], abs=0.02)
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, got 'fp16'"):
        T.replace(config, precision="fp16")


@pytest.mark.parametrize("flags, message", [
    (("--n-head", "5"), "n_embd must be divisible by n_head"),
    (("--n-layer", "0"), "n_layer must be an int >= 1, got 0"),
    (("--steps", "0"), "steps must be an int >= 1, got 0"),
    (("--dropout", "1.5"), r"dropout must be in \[0, 1\), got 1.5"),
    (("--lr", "0"), "lr must be > 0, got 0.0"),
    (("--precision", "fp16"), "argument --precision: invalid choice: 'fp16'"),
])
def test_cli_rejects_bad_shapes_with_a_clear_message(corpus, tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit):
        T.main(cli_args(corpus, tmp_path, *flags))
    assert re.search(message, capsys.readouterr().err)


def test_a_batch_source_replaces_the_corpus_and_metrics_join_the_history(tmp_path):
    config = T.replace(T.PRESETS["test"], model=GPTConfig(vocab_size=12, block_size=8, n_layer=1, n_head=1,
                                                          n_embd=16), steps=40, eval_every=20, lr=1e-2)
    seen = []

    def counting(step: int):  # a fixed cycle 1 2 3 ... 11: learnable only from the batches, never from the text
        seen.append(step)
        start = torch.arange(config.batch_size)[:, None] + step
        window = (start + torch.arange(config.model.block_size + 1)) % 11 + 1
        return window[:, :-1], window[:, 1:]

    text = np.zeros(200, dtype=np.uint16)  # the logged text loss: all zeros, never trained on
    model, history = T.train(config, text, text, tmp_path, batches=counting, device="cpu", show_progress=False,
                             metrics=lambda m: {"training": float(m.training)})
    assert seen == list(range(40))
    assert [r["step"] for r in history] == [20, 40] and all(r["training"] == 0.0 for r in history)
    x, y = counting(0)
    with torch.no_grad():
        accuracy = (model(x).argmax(-1) == y).float().mean().item()
    assert accuracy > 0.9


@pytest.mark.parametrize("shape", [(2, 3), (8, 16), (32, 8, 1)])
def test_a_batch_source_of_the_wrong_shape_is_refused(tmp_path, shape):
    config = T.PRESETS["test"]  # batch 8, block 32: (8, 32), (16, 16) or (32, 8) would be right
    text = np.zeros(200, dtype=np.uint16)
    wrong = lambda step: (torch.zeros(shape, dtype=torch.long), torch.zeros(shape, dtype=torch.long))  # noqa: E731
    with pytest.raises(ValueError, match=r"batches\(step\) must return two LongTensors of shape "
                                         r"\(batch_size \* block_size / T, T\) for a T that divides block_size=32"):
        T.train(config, text, text, tmp_path, batches=wrong, device="cpu", show_progress=False)


def test_short_windows_keep_the_tokens_per_step_and_shard_by_rows():
    config = T.PRESETS["test"]
    x = torch.arange(8 * 32).view(32, 8)
    kept, _ = T._shard((x, x), config, slice(2, 4))  # rank 1 of 4 keeps rows 2, 3 of a full-length batch
    assert torch.equal(kept, x[8:16])  # ... which are rows 8 .. 15 of windows four times shorter
