"""Tests for companion.icl_train: batch sources that depend on the step only, and the shipped models."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
import torch

from companion import icl, pretrained
from companion.gpt import GPTConfig
from companion.icl_train import CONFIG, HELD_OUT, MIX, MODELS, Batches, Recipe, _reproducing, episode, repeats

WORDS = ["objects", "example", "keyword", "strings", "numbers", "letters", "pattern"]


def _batches(mix=MIX, **warm_up):
    config = replace(CONFIG, batch_size=6, model=replace(CONFIG.model, block_size=64))
    text = np.frombuffer(b"some corpus text, repeated. " * 50, dtype=np.uint8)
    return Batches(Recipe(config, mix, **warm_up), text, {t: icl.usable_words(WORDS, t) for t in icl.TASKS})


def test_batches_depend_on_the_step_only():
    batches = _batches()
    x, y = batches(7)
    assert x.shape == y.shape == (6, 64) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(batches(7)[0], x) and not torch.equal(batches(8)[0], x)


def test_episodes_use_training_tasks_and_the_demonstration_format():
    rng = random.Random(0)
    text = episode("reversed_words", icl.usable_words(WORDS, "reversed_words"), 200, rng).decode()
    lines = [line for line in text.split("\n")[:-1] if " = " in line]
    assert lines and all(q == a[::-1] for q, a in (line.split(" = ") for line in lines))
    assert HELD_OUT not in _batches().tasks


def test_repeats_are_random_halves_followed_by_themselves():
    row = repeats(200, 256, random.Random(1))
    assert len(row) == 200 and min(row) >= 32
    # the row starts with some half h followed by h
    assert any(row[:n] == row[n: 2 * n] for n in range(8, 65))
    short = repeats(33, 256, random.Random(2), shortest=4)  # a short row holds a whole repeat
    assert any(short[:n] == short[n: 2 * n] for n in range(4, 17))


def test_the_warm_up_cuts_the_same_tokens_into_short_windows():
    batches = _batches({"repeat": 1.0}, short_window=16, short_steps=3)
    assert batches(2)[0].shape == (24, 16) and batches(3)[0].shape == (6, 64)
    assert all(recipe.config.model.position == "rotary" for recipe in MODELS.values())


def test_reproducing_command_drops_resume_and_checkpoints():
    assert _reproducing(["--out", "x", "--checkpoints", "/c", "--resume", "--checkpoints=/d", "--seed", "1"]) == \
        ["--out", "x", "--seed", "1"]


@pytest.mark.parametrize("name", ["icl-gpt", "induction-gpt"])
def test_shipped_byte_models_load_and_their_probe_matches_the_manifest(name):
    assert name in pretrained.available()
    model, tokenizer = pretrained.load(name, device="cpu")
    manifest = pretrained.manifest(name)
    assert tokenizer.vocab_size == model.config.vocab_size == 256 and not tokenizer.merges
    assert manifest["command"].startswith("python -m companion.icl_train")
    assert all("induction_probe" in h and "prefix_matching" in h for h in manifest["history"])
    assert max(b["step"] - a["step"] for a, b in zip(manifest["history"], manifest["history"][1:], strict=False)) <= 100
    assert icl.induction_probe(model, 256) == pytest.approx(manifest["induction_probe"], abs=1e-4)


def test_icl_gpt_word_task_results_are_what_the_model_gives():
    model, tokenizer = pretrained.load("icl-gpt", device="cpu")
    manifest = pretrained.manifest("icl-gpt")
    assert manifest["held_out_task"] == HELD_OUT and HELD_OUT not in manifest["training_tasks"]
    assert model.config.block_size >= icl.longest_prompt(10)
    from companion.icl_train import word_split

    words = word_split()[1]
    assert icl.word_task_accuracy(model, tokenizer, "random_insertion", 1, words=words) == \
        manifest["word_tasks"]["none"]["random_insertion"]["1"]


def test_gpt_config_of_the_presets_is_byte_level():
    assert CONFIG.model == GPTConfig(vocab_size=256, block_size=512, n_layer=3, n_head=4, n_embd=64,
                                     position="rotary")
