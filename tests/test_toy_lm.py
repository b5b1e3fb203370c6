"""Tests for companion.toy_lm: the table model's logits, its exhaustive continuations, and decoding on it."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from companion.decoding import beam_search, greedy_search, token_log_probs
from companion.toy_lm import EOS, TableLM

TABLE = {
    "the": {"cat": 0.5, "dog": 0.3, "bird": 0.2},
    "the cat": {"sat": 0.4, "ran": 0.35, "slept": 0.25},
    "the dog": {"barked": 0.9, "sat": 0.1},
    "the bird": {"sang": 0.95, "fell": 0.05},
    "the cat sat": {"down": 0.6, "up": 0.4},
    "the cat ran": {"away": 1.0},
    "the dog barked": {"loudly": 0.5, EOS: 0.5},
}


@pytest.fixture(scope="module")
def lm() -> TableLM:
    return TableLM(TABLE)


def test_vocabulary_encode_decode(lm):
    assert lm.vocab[0] == EOS and lm.eos_token_id == 0
    assert lm.vocab[1:4] == ["the", "cat", "dog"]  # in order of first appearance
    assert lm.decode(lm.encode("the dog barked")) == "the dog barked"
    assert lm.decode(torch.tensor([1, 3, 0])) == "the dog <eos>"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        lm.encode("the zebra")


def test_logits_are_the_table_log_probabilities(lm):
    ids = torch.tensor([lm.encode("the cat sat"), lm.encode("the dog sat")])
    log_probs = lm(ids).log_softmax(-1)
    assert log_probs.shape == (2, 3, lm.vocab_size)
    for b, text in enumerate(["the cat sat", "the dog sat"]):
        words = text.split()
        for t in range(3):
            expected = lm.next_word_probs(words[: t + 1])
            for word, i in lm.token_to_id.items():
                got = log_probs[b, t, i].item()
                if word in expected:
                    assert got == pytest.approx(math.log(expected[word]), abs=1e-6)
                else:
                    assert got == float("-inf")
    # "the dog sat" is not in the table: the text ends, <eos> with probability 1
    assert log_probs[1, 2, lm.eos_token_id].item() == pytest.approx(0.0, abs=1e-7)


def test_everything_after_eos_is_eos(lm):
    ids = torch.tensor([[lm.token_to_id[w] for w in ["the", EOS, "cat"]]])
    assert torch.all(lm(ids)[0, 1:].argmax(-1) == lm.eos_token_id)


def test_continuations_enumerate_the_tree(lm):
    conts = lm.continuations("the", 4)
    assert math.fsum(p for _, p in conts) == pytest.approx(1.0, abs=1e-12)
    assert conts[0] == ("bird sang <eos>", pytest.approx(0.19))  # unlisted prefixes end the text
    assert conts[1] == ("cat ran away <eos>", pytest.approx(0.175))
    assert ("dog barked <eos>", pytest.approx(0.135)) in conts
    assert [p for _, p in conts] == sorted((p for _, p in conts), reverse=True)
    # brute force over every word sequence of up to 4 words agrees
    brute = {}
    for n in range(1, 5):
        for words in itertools.product(lm.vocab, repeat=n):
            text = " ".join(words)
            if (words[-1] == EOS or n == 4) and EOS not in words[:-1]:
                p = lm.probability("the", text)
                if p > 0:
                    brute[text] = p
    assert brute == {text: pytest.approx(p) for text, p in conts}
    # cut at 2 words, the leaves are the two-word prefixes
    assert {t for t, _ in lm.continuations("the", 2)} == {"cat sat", "cat ran", "cat slept", "dog barked",
                                                          "dog sat", "bird sang", "bird fell"}


def test_greedy_and_beam_search_on_the_table(lm):
    ids = torch.tensor([lm.encode("the")])
    greedy, score = greedy_search(lm, ids, 4, eos_token_id=lm.eos_token_id)
    assert lm.decode(greedy[0]) == "the cat sat down <eos>"
    assert math.exp(score.item()) == pytest.approx(0.5 * 0.4 * 0.6, rel=1e-5)
    best_text, best_p = lm.continuations("the", 4)[0]
    beams, scores = beam_search(lm, ids, 3, 4, eos_token_id=lm.eos_token_id, length_penalty=0.0)
    assert lm.decode(beams[0, 1:]) == best_text
    assert math.exp(scores.item()) == pytest.approx(best_p, rel=1e-5)
    # the model works with the decoders' log-probabilities too
    lp = token_log_probs(lm, torch.tensor([lm.encode("the dog barked loudly")]))
    assert lp[0].exp().tolist() == pytest.approx([0.3, 0.9, 0.5], rel=1e-6)


@pytest.mark.parametrize("table, message", [
    ({}, "non-empty mapping"),
    ({"the": {"a": 0.5, "b": 0.4}}, "sum to 1"),
    ({"the": {"a": 1.2, "b": -0.2}}, "probabilities >= 0"),
    ({"the  cat": {"a": 1.0}}, "single spaces"),
    ({"the <eos>": {"a": 1.0}}, "must not contain"),
])
def test_bad_tables_raise(table, message):
    with pytest.raises(ValueError, match=message):
        TableLM(table)


def test_bad_arguments_raise(lm):
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 1"):
        lm.continuations("the", 0)
    with pytest.raises(ValueError, match="idx must be a LongTensor"):
        lm(torch.tensor([1, 2]))


def test_a_word_repeated_in_one_entry_gets_one_id():
    lm = TableLM({"the": {"the": 1.0}, "a a": {"a": 0.5, "the": 0.5}})
    assert lm.vocab == ["<eos>", "the", "a"]
    assert lm.vocab_size == 3
