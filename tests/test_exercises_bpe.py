"""The self-checks of the BPE chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import math

import pytest
import regex

from companion.bpe import BYTE_TO_CHAR, GPT2_SPLIT_PATTERN
from companion.exercises import bpe as ex


def test_first_merges_accepts_the_hand_computed_answer() -> None:
    # Pair counts: a-n 20 (every word), then t-an 9 (tan 5 + tank 4), then an-t 6 (ant).
    assert ex.check_first_merges([("a", "n"), ("t", "an"), ("an", "t")])
    assert ex.check_first_merges(["a n", "t an", "an t"])  # the merges.txt spelling is accepted too


@pytest.mark.parametrize("answer", [
    [("a", "n"), ("t", "an"), ("a", "t")],   # third merge counted on the original letters
    [("a", "n"), ("an", "t"), ("t", "an")],  # right merges, wrong order
    [("a", "n"), ("t", "an")],               # too few
    [],
])
def test_first_merges_rejects_wrong_answers(answer, capsys) -> None:
    assert not ex.check_first_merges(answer)
    assert "Not quite" in capsys.readouterr().out


def test_first_merges_rejects_a_non_list() -> None:
    with pytest.raises(TypeError, match="answer must be a list of pairs"):
        ex.check_first_merges("a n")
    with pytest.raises(TypeError, match="answer must be a list of pairs"):
        ex.check_first_merges([("a", "n", "x")])


def test_korean_bytes() -> None:
    # 한, 국, 어: 3 bytes each in UTF-8; the space and B, P, E: 1 byte each.
    assert ex.check_korean_bytes(13)
    assert not ex.check_korean_bytes(7)  # one token per character
    assert not ex.check_korean_bytes(10)  # two bytes per syllable
    with pytest.raises(TypeError, match="answer must be an int"):
        ex.check_korean_bytes(13.0)


def test_korean_bytes_agrees_with_a_tokenizer_without_merges() -> None:
    bare = ex.BPETokenizer.train(["x"], 256, show_progress=False)
    assert bare.merges == []
    assert len(bare.encode(ex.KOREAN_BYTES_TEXT)) == 13


def _merge(symbols, pair):
    out, i = [], 0
    while i < len(symbols):
        if tuple(symbols[i:i + 2]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def _encode_by_rank(text, merges):
    rank = {pair: r for r, pair in enumerate(merges)}
    tokens = []
    for piece in regex.findall(GPT2_SPLIT_PATTERN, text):
        symbols = [BYTE_TO_CHAR[b] for b in piece.encode()]
        while len(symbols) > 1:
            best = min(zip(symbols, symbols[1:], strict=False), key=lambda p: rank.get(p, math.inf))
            if best not in rank:
                break
            symbols = _merge(symbols, best)
        tokens += symbols
    return tokens


def _encode_leftmost_first(text, merges):
    """A plausible mistake: merge the leftmost pair that has any merge, instead of the lowest-ranked one."""
    known = set(merges)
    tokens = []
    for piece in regex.findall(GPT2_SPLIT_PATTERN, text):
        symbols = [BYTE_TO_CHAR[b] for b in piece.encode()]
        while True:
            at = next((i for i, p in enumerate(zip(symbols, symbols[1:], strict=False)) if p in known), None)
            if at is None:
                break
            symbols[at:at + 2] = [symbols[at] + symbols[at + 1]]
        tokens += symbols
    return tokens


@pytest.mark.parametrize("seed", [None, 0, 1, 2])
def test_encode_accepts_encoding_by_merge_rank(seed, capsys) -> None:
    assert ex.check_encode(_encode_by_rank, seed=seed)
    assert "Right" in capsys.readouterr().out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_encode_rejects_leftmost_first_and_bytes_only(seed, capsys) -> None:
    assert not ex.check_encode(_encode_leftmost_first, seed=seed)
    assert not ex.check_encode(lambda text, merges: [BYTE_TO_CHAR[b] for b in text.encode()], seed=seed)
    assert "Not quite" in capsys.readouterr().out
    with pytest.raises(TypeError, match="encode must be a function"):
        ex.check_encode("encode")


def test_fresh_texts_are_new_each_call_and_repeat_with_a_seed() -> None:
    assert ex.fresh_texts(5) == ex.fresh_texts(5)
    assert ex.fresh_texts() != ex.fresh_texts()
    assert not set(ex.fresh_texts(5)) & set(ex.ENCODE_CORPUS)


def test_leftmost_first_differs_from_rank_order_on_some_fresh_text() -> None:
    # the check is only worth something if fresh texts tell the two rules apart
    merges = ex.encode_tokenizer().merges
    texts = ex.fresh_texts(0)
    assert sum(_encode_leftmost_first(t, merges) != _encode_by_rank(t, merges) for t in texts) >= 3


def test_merge_count() -> None:
    assert ex.check_merge_count(742)  # 1000 - 256 bytes - 2 special tokens
    assert not ex.check_merge_count(744)  # forgot the special tokens
    assert not ex.check_merge_count(1000)
    with pytest.raises(TypeError, match="answer must be an int"):
        ex.check_merge_count("742")
