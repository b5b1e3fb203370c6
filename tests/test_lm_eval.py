"""Tests for companion.lm_eval: the unigram baseline by hand, evaluation windows, the token-id cache."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from companion import lm_eval as E


def test_unigram_loss_by_hand():
    train, valid = np.array([0, 0, 1]), np.array([0, 2])
    # add-one counts over a vocabulary of 3: [3, 2, 1] / 6
    assert E.unigram_loss(train, valid, 3) == pytest.approx(-(math.log(3 / 6) + math.log(1 / 6)) / 2)


def test_eval_windows_cover_the_array_evenly():
    ids = np.arange(101)
    windows = E.eval_windows(ids, 10)
    assert windows.shape == (10, 11)
    assert windows[0, 0] == 0 and windows[-1, -1] == 100
    assert E.eval_windows(ids, 10, max_tokens=30).shape == (3, 11)


class CountingTokenizer:
    def __init__(self, offset: int = 0):
        self.offset, self.calls = offset, 0

    def encode_batch(self, texts):
        self.calls += 1
        return [[ord(c) % 50 + self.offset for c in text] for text in texts]

    def to_json(self):
        return json.dumps({"offset": self.offset})


def test_tokenize_cached_reuses_ids_and_keys_on_corpus_and_tokenizer(tmp_path):
    tokenizer = CountingTokenizer()
    first = E.tokenize_cached(["ab", "c"], tokenizer, tmp_path)
    assert first.tolist() == [47, 48, 10, 10, 49, 10, 10]  # "ab\n\n" then "c\n\n"
    again = E.tokenize_cached(["ab", "c"], tokenizer, tmp_path)
    assert tokenizer.calls == 1 and np.array_equal(first, again)
    E.tokenize_cached(["ab", "d"], tokenizer, tmp_path)
    other = CountingTokenizer(offset=1)
    assert E.tokenize_cached(["ab", "c"], other, tmp_path).tolist()[0] == 48
    assert tokenizer.calls == 2 and other.calls == 1
    assert len(list(tmp_path.glob("tokens-*.npy"))) == 3


def test_eval_windows_needs_more_tokens_than_one_block():
    with pytest.raises(ValueError, match=r"ids must hold more than block_size=8 tokens, got 8"):
        E.eval_windows(np.arange(8), block_size=8)
