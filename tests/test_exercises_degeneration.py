"""The self-checks of the degeneration chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import math

import pytest
import torch

from companion.exercises import degeneration as ex

torch.set_num_threads(1)


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


def _right(tokens):
    tokens = list(tokens)
    best_n, best_copies = 1, 1
    for n in range(1, min(90, len(tokens)) + 1):
        copies = 1
        while (copies + 1) * n <= len(tokens) and tokens[len(tokens) - (copies + 1) * n: len(tokens) - copies * n] \
                == tokens[-n:]:
            copies += 1
        if copies > best_copies:
            best_n, best_copies = n, copies
    return best_copies >= 2 and (best_n >= 3 or best_copies >= 51)


def test_ends_in_repetition_accepts_a_correct_function() -> None:
    assert ex.check_ends_in_repetition(_right)


def test_ends_in_repetition_rejects_wrong_functions(capsys) -> None:
    def longest_phrase_wins(tokens):  # ties broken towards the longest n: "no no no" x3 would count
        tokens = list(tokens)
        best_n, best_copies = 1, 1
        for n in range(1, min(90, len(tokens)) + 1):
            copies = 1
            while (copies + 1) * n <= len(tokens) and tokens[len(tokens) - (copies + 1) * n:
                                                             len(tokens) - copies * n] == tokens[-n:]:
                copies += 1
            if copies >= best_copies:
                best_n, best_copies = n, copies
        return best_copies >= 2 and (best_n >= 3 or best_copies >= 51)

    def any_repeat(tokens):
        return len(tokens) >= 2 and tokens[-1] == tokens[-2]

    assert not ex.check_ends_in_repetition(longest_phrase_wins)
    assert not ex.check_ends_in_repetition(any_repeat)
    assert not ex.check_ends_in_repetition(lambda tokens: None)
    assert "Not quite" in capsys.readouterr().out
    with pytest.raises(TypeError, match="function must be callable"):
        ex.check_ends_in_repetition("ends_in_repetition")
