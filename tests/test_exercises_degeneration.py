"""The self-checks of the degeneration chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from companion.exercises import degeneration as ex


def test_loops_accepts_the_hand_computed_answer() -> None:
    # 1: "I don't know ." (4 tokens) x3; 2: no loop; 3: "and on" is 2 tokens, 2 copies (< 51);
    # 4: "no" x10 has the most copies but is 1 token (< 51); 5: "string . Return a" x2, cut mid-phrase; 6: ends in x.
    answer = [True, False, False, False, True, False]
    assert ex.loop_answers() == answer
    assert ex.check_loops(answer)
    assert ex.check_loops(tuple(answer))


@pytest.mark.parametrize("answer", [
    [True, False, True, False, True, False],   # a 2-token phrase counted as a loop
    [True, False, False, True, True, False],   # "no" x10 counted as a loop
    [True, False, False, False, False, False],  # a loop cut mid-phrase missed
    [True, False, False, False, True],          # too few
])
def test_loops_rejects_wrong_answers(answer, capsys) -> None:
    assert not ex.check_loops(answer)
    assert "Not quite" in capsys.readouterr().out


def test_loops_rejects_a_non_list() -> None:
    with pytest.raises(TypeError, match="answer must be a list of True/False"):
        ex.check_loops("TFFFTF")
    with pytest.raises(TypeError, match="answer must be a list of True/False"):
        ex.check_loops([1, 0, 0, 0, 1, 0])


def test_distinct_2() -> None:
    # Bigrams: 5 + 5 + 7 = 17; distinct: 5 + 3 new ("cat ran", "ran to", "to the") + 4 in the loop = 12.
    assert ex.check_distinct_2(12 / 17)
    assert ex.check_distinct_2(0.70588)
    assert not ex.check_distinct_2((1 + 1 + 4 / 7) / 3)  # mean of per-sequence values
    assert not ex.check_distinct_2(13 / 17)
    with pytest.raises(TypeError, match="answer must be a number"):
        ex.check_distinct_2("0.7")


def test_zipf(capsys) -> None:
    # A = 3600 / rank^2, B = 600 / rank: coefficients 2 and 1; A falls faster, so it leans on fewer words.
    assert ex.check_zipf(2.0, 1.0, "A")
    assert not ex.check_zipf(2.0, 1.0, "B")
    assert not ex.check_zipf(-2.0, -1.0, "A")
    assert "signs" in capsys.readouterr().out
    assert not ex.check_zipf(1.0, 2.0, "A")
    with pytest.raises(TypeError, match="fewer_words must be 'A' or 'B'"):
        ex.check_zipf(2.0, 1.0, "a")
    with pytest.raises(TypeError, match="coefficient_a must be a number"):
        ex.check_zipf(None, 1.0, "A")


def test_perplexity() -> None:
    # Bits: 1 + 1 + 1 + 1 + 2 + 3 = 9 over 6 tokens, so 2 ** 1.5.
    assert ex.check_perplexity(2 ** 1.5)
    assert ex.check_perplexity(2.828)
    assert not ex.check_perplexity((2 + 2 ** 2.5) / 2)  # the mean of the two perplexities
    assert not ex.check_perplexity(1.5)  # the mean in bits, not exponentiated
    assert not ex.check_perplexity(math.exp(1.5))
    with pytest.raises(TypeError, match="answer must be a number"):
        ex.check_perplexity(True)


def _right(previous, n):
    prefix = previous[len(previous) - n + 1:]
    return {previous[i + n - 1] for i in range(len(previous) - n + 1) if previous[i:i + n - 1] == prefix}


def test_banned_next_accepts_a_correct_function() -> None:
    assert ex.check_banned_next(_right)
    assert ex.banned_answer([5, 6, 7, 5, 6], 3) == {7}
    assert ex.banned_answer([5, 6, 7, 5, 6], 1) == {5, 6, 7}


def test_banned_next_rejects_wrong_functions(capsys) -> None:
    def bigram_whatever_n(previous, n):  # compares only the last token, whatever n is
        return _right(previous, 2)

    def prefix_of_n_tokens(previous, n):  # the last n tokens as the prefix: bans (n + 1)-grams
        return _right(previous, n + 1)

    assert not ex.check_banned_next(bigram_whatever_n)
    assert not ex.check_banned_next(prefix_of_n_tokens)
    assert not ex.check_banned_next(lambda previous, n: set())
    assert not ex.check_banned_next(lambda previous, n: 3)
    assert "Not quite" in capsys.readouterr().out
    with pytest.raises(TypeError, match=r"banned_next must be a function banned_next\(previous, n\)"):
        ex.check_banned_next("banned_next")


def test_the_chapter_shows_the_data_of_its_exercises() -> None:
    page = (Path(__file__).parents[1] / "book" / "decoding" / "degeneration.md").read_text(encoding="utf-8")
    for text in [*ex.LOOP_SEQUENCES, *ex.DISTINCT_SEQUENCES]:
        assert f"`{text}`" in page, text
    for counts in ex.ZIPF_COUNTS.values():
        assert ", ".join(map(str, counts)) in page
    for probs in ex.PERPLEXITY_PROBS:
        assert "(" + ", ".join(map(str, probs)) + ")" in page
