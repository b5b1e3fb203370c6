"""Each self-check of "Before GPT-3" accepts the right answer and rejects a plausible wrong one."""

from __future__ import annotations

import math

import pytest

from companion.exercises import before_gpt3 as ex


def test_similarity_sequences():
    assert ex.check_similarity_sequences(2)
    assert not ex.check_similarity_sequences(1)
    with pytest.raises(TypeError):
        ex.check_similarity_sequences(2.0)


def test_sign_test_p():
    right = sum(math.comb(20, k) for k in range(15, 21)) / 2**20
    assert ex.check_sign_test_p(right)
    assert not ex.check_sign_test_p(sum(math.comb(20, k) for k in range(16, 21)) / 2**20)  # X > 15, not >=
    assert not ex.check_sign_test_p(2 * right)  # two-sided


def test_hits_needed():
    tail = lambda k: sum(math.comb(200, i) * 0.25**i * 0.75 ** (200 - i) for i in range(k, 201))  # noqa: E731
    needed = ex.hits_needed()
    assert tail(needed) < 0.01 <= tail(needed - 1) and needed == 66
    assert ex.check_hits_needed(needed)
    assert not ex.check_hits_needed(51)  # merely above the expected 50


def _sign_test(wins, losses):
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n if n else 1.0


def test_sign_test_function():
    assert ex.check_sign_test(_sign_test)
    strict = lambda w, l: sum(math.comb(w + l, k) for k in range(w + 1, w + l + 1)) / 2 ** (w + l)  # noqa: E731, E741
    assert not ex.check_sign_test(strict)
    with pytest.raises(TypeError):
        ex.check_sign_test(0.05)
