"""Tests for companion.icl_finetune: the answer-only batch, fine-tuning a copy, and the length split."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from companion import icl
from companion.gpt import GPT, GPTConfig
from companion.icl_finetune import (
    IGNORE,
    answer_batch,
    demonstrations,
    fine_tune,
    length_split,
    prompted_accuracy,
)
from tests.test_icl import Reverser

WORDS = ["objects", "example", "keyword", "strings", "numbers", "letters", "patterns", "dictionary"]


def test_answer_batch_targets_only_the_answer_and_its_newline():
    tok = icl.byte_tokenizer()
    inputs, targets = answer_batch(tok, [("ba", "ab"), ("dcba", "abcd")])
    assert inputs.shape == targets.shape == (2, 11)  # "dcba = abcd\n" is 12 bytes
    assert inputs[0, :7].tolist() == list(b"ba = ab") and inputs[0, 7:].eq(0).all()
    # after "ba = " (5 bytes) the targets are "ab\n", predicted from positions 4, 5, 6
    assert targets[0].tolist() == [IGNORE] * 4 + list(b"ab\n") + [IGNORE] * 4
    assert targets[1].tolist() == [IGNORE] * 6 + list(b"abcd\n")
    with pytest.raises(ValueError, match="demos must hold at least one"):
        answer_batch(tok, [])


def _gpt():
    config = GPTConfig(vocab_size=256, block_size=64, n_layer=1, n_head=2, n_embd=16, position="rotary")
    return GPT(config, seed=0).eval()


def test_fine_tune_lowers_the_answer_loss_of_a_copy_and_is_deterministic():
    model, tok = _gpt(), icl.byte_tokenizer()
    demos = demonstrations("reversed_words", WORDS[:4], random.Random(0))
    inputs, targets = answer_batch(tok, demos)

    def loss(m):
        with torch.no_grad():
            return F.cross_entropy(m(inputs).transpose(1, 2), targets, ignore_index=IGNORE).item()

    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuned = fine_tune(model, tok, demos, steps=30, lr=3e-3)
    assert loss(tuned) < loss(model) - 0.5
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the original is untouched
    again = fine_tune(model, tok, demos, steps=30, lr=3e-3)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in tuned.state_dict().items())
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        fine_tune(model, tok, demos, steps=0)
    with pytest.raises(ValueError, match="lr must be > 0, got 0"):
        fine_tune(model, tok, demos, lr=0)


def test_prompted_accuracy_on_a_hand_built_reverser():
    model, tok = Reverser(), icl.byte_tokenizer()
    demos = demonstrations("reversed_words", WORDS[:2], random.Random(0))
    assert demos[0] == ("stcejbo", "objects")
    assert prompted_accuracy(model, tok, "reversed_words", WORDS[2:], demos) == 1.0
    assert prompted_accuracy(model, tok, "reversed_words", WORDS[2:]) == 1.0  # zero-shot: no demos needed
    assert prompted_accuracy(model, tok, "cycle_letters", WORDS[2:], demos) < 0.5
    with pytest.raises(ValueError, match="queries must hold at least one word"):
        prompted_accuracy(model, tok, "reversed_words", [], demos)


def test_length_split():
    short, long = length_split(WORDS + ["level", "abc"], "reversed_words", short=(5, 7), long=(9, 14))
    assert short == ["objects", "example", "keyword", "strings", "numbers", "letters"]  # "level": a palindrome
    assert long == ["dictionary"]
    with pytest.raises(ValueError, match="ordered, non-overlapping"):
        length_split(WORDS, "reversed_words", short=(5, 9), long=(9, 14))
