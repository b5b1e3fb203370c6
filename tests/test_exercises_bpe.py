"""The self-checks of the BPE chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import pytest
import torch

from companion.exercises import bpe as ex

torch.set_num_threads(1)


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


def test_merge_accepts_a_correct_function() -> None:
    def merge(ids, pair, new_id):
        out, i = [], 0
        while i < len(ids):
            if ids[i:i + 2] == list(pair):
                out.append(new_id)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        return out

    assert ex.check_merge(merge)


def test_merge_rejects_wrong_overlaps_and_broken_functions(capsys) -> None:
    def right_to_left(ids, pair, new_id):  # "aaa" -> "a" "aa": the overlap resolved the wrong way
        out, i = [], len(ids) - 1
        while i >= 0:
            if i > 0 and (ids[i - 1], ids[i]) == pair:
                out.append(new_id)
                i -= 2
            else:
                out.append(ids[i])
                i -= 1
        return out[::-1]

    def first_only(ids, pair, new_id):
        for i in range(len(ids) - 1):
            if (ids[i], ids[i + 1]) == pair:
                return ids[:i] + [new_id] + ids[i + 2:]
        return ids

    assert not ex.check_merge(right_to_left)
    assert not ex.check_merge(first_only)
    assert not ex.check_merge(lambda ids, pair, new_id: None)
    assert "Not quite" in capsys.readouterr().out
    with pytest.raises(TypeError, match="merge must be a function"):
        ex.check_merge(42)


def test_reference_merge_replays_to_the_tokenizer_ids() -> None:
    tokenizer = ex.toy_tokenizer()
    for word in ["tank", "plant", "tantan", "nat", "한국"]:
        assert ex.encode_with_merge(ex.reference_merge, tokenizer, word) == tokenizer.encode(word)
    assert ex.reference_merge([5, 5, 5], (5, 5), 7) == [7, 5]


def test_merge_count() -> None:
    assert ex.check_merge_count(742)  # 1000 - 256 bytes - 2 special tokens
    assert not ex.check_merge_count(744)  # forgot the special tokens
    assert not ex.check_merge_count(1000)
    with pytest.raises(TypeError, match="answer must be an int"):
        ex.check_merge_count("742")
