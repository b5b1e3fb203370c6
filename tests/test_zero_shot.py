"""Tests for companion.zero_shot: option scoring against a plain forward pass, the exact tests, the items."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from companion import data, zero_shot
from companion.gpt import GPT, GPTConfig
from companion.icl import byte_tokenizer


def _plain_score(model, tokenizer, prompt: str, option: str) -> float:
    """log p(option | prompt) from one full forward pass over the bytes (a byte tokenizer never merges)."""
    head, ids = tokenizer.encode(prompt), tokenizer.encode(prompt + option)
    with torch.no_grad():
        logp = F.log_softmax(model(torch.tensor([ids])), dim=-1)[0]
    return sum(float(logp[t - 1, ids[t]]) for t in range(len(head), len(ids)))


def test_option_scores_equal_a_plain_forward_pass():
    tokenizer = byte_tokenizer()
    model = GPT(GPTConfig(vocab_size=256, block_size=64, n_layer=2, n_head=2, n_embd=32), seed=3).eval()
    prompts = ["Return the path.\n\n:param ", "Open a file"]
    options = [["path", "the", "xy"], [" now", "!", " later on"]]
    scores = zero_shot.option_scores(model, tokenizer, prompts, options)
    assert scores.shape == (2, 3)
    for i, prompt in enumerate(prompts):
        for j, option in enumerate(options[i]):
            assert scores[i, j].item() == pytest.approx(_plain_score(model, tokenizer, prompt, option), abs=1e-4)


def test_option_scores_reject_bad_shapes():
    tokenizer = byte_tokenizer()
    model = GPT(GPTConfig(vocab_size=256, block_size=16, n_layer=1, n_head=1, n_embd=8), seed=0).eval()
    with pytest.raises(ValueError, match="same length"):
        zero_shot.option_scores(model, tokenizer, ["a"], [["b"], ["c"]])
    with pytest.raises(ValueError, match="same number of options"):
        zero_shot.option_scores(model, tokenizer, ["a", "b"], [["b"], ["c", "d"]])
    with pytest.raises(ValueError, match="block_size"):
        zero_shot.option_scores(model, tokenizer, ["a" * 20], [["b"]])


def test_binomial_tail_is_exact():
    for n, k, p in [(10, 7, 0.5), (12, 3, 0.25), (5, 0, 0.3), (6, 6, 0.9)]:
        q = Fraction(p).limit_denominator(100)
        exact = sum(math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(k, n + 1))
        assert zero_shot.binomial_tail(k, n, p) == pytest.approx(float(exact), rel=1e-9)
    assert zero_shot.binomial_tail(11, 10, 0.5) == 0.0
    assert 0 < zero_shot.binomial_tail(600, 1000, 0.25) < 1e-100  # no underflow to a wrong 0 or 1
    with pytest.raises(ValueError, match="p must be"):
        zero_shot.binomial_tail(1, 2, 1.0)


def test_sign_test():
    assert zero_shot.sign_test(5, 0) == pytest.approx(1 / 32)
    assert zero_shot.sign_test(3, 3) == pytest.approx(42 / 64)
    assert zero_shot.sign_test(0, 0) == 1.0
    with pytest.raises(ValueError, match="wins and losses"):
        zero_shot.sign_test(-1, 2)


def test_param_items_come_from_held_out_modules_with_one_parameter_each():
    items = zero_shot.param_items()
    assert len(items) >= 200
    assert all(data.is_validation_module(item.module) for item in items)
    for item in items[:200]:
        assert len(item.options) == len(set(item.options)) == 4
        right = item.options[item.answer]
        assert right in item.text.split() or right in item.text
    answers = [item.answer for item in items]
    assert min(answers.count(i) for i in range(4)) > len(items) / 8  # the right option is not always first
    with pytest.raises(ValueError, match="n_options"):
        zero_shot.param_items(n_options=1)


def test_hits_are_the_argmax_of_the_scores():
    tokenizer = byte_tokenizer()
    model = GPT(GPTConfig(vocab_size=256, block_size=128, n_layer=1, n_head=1, n_embd=16), seed=1).eval()
    items = [zero_shot.Item("Read n bytes.", ("n", "bytes", "read"), 0, "m"),
             zero_shot.Item("Close it.", ("it", "close", "now"), 2, "m")]
    got = zero_shot.hits(model, tokenizer, items, zero_shot.CUE)
    scores = zero_shot.option_scores(model, tokenizer, [i.text + zero_shot.CUE for i in items],
                                     [i.options for i in items])
    assert got.tolist() == (scores.argmax(1) == torch.tensor([0, 2])).tolist()
    control = zero_shot.option_scores(model, tokenizer, [zero_shot.CUE] * 2, [i.options for i in items])
    assert zero_shot.hits(model, tokenizer, items, zero_shot.CUE, with_text=False).tolist() == \
        (control.argmax(1) == torch.tensor([0, 2])).tolist()
