"""The self-checks of the downstream-tasks chapter accept the right answer and reject plausible wrong ones."""

from __future__ import annotations

import re

from companion.exercises import downstream_tasks as ex


def test_check_jaccard():
    a = {tuple(ex.EXERCISE_A.lower().split()[i:i + 5]) for i in range(len(ex.EXERCISE_A.split()) - 4)}
    b = {tuple(ex.EXERCISE_B.lower().split()[i:i + 5]) for i in range(len(ex.EXERCISE_B.split()) - 4)}
    assert ex.check_jaccard(len(a & b) / len(a | b))
    assert len(a & b) / len(a | b) < 0.8
    assert not ex.check_jaccard(1 - 1 / len(ex.EXERCISE_A.split()))  # "one word in n differs"


def test_check_mean_pool():
    def right(states, mask):
        weights = mask.float().unsqueeze(-1)
        return (states * weights).sum(1) / weights.sum(1)

    assert ex.check_mean_pool(right)
    assert not ex.check_mean_pool(lambda states, mask: states.mean(1))
    assert not ex.check_mean_pool(lambda states, mask: states[:, -1])


def test_check_tag_params():
    def right(text, params):
        return [(w, int(w in params)) for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)]

    def substring(text, params):
        return [(w, int(any(p in w for p in params))) for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)]

    def lowercase(text, params):
        return [(w, int(w.lower() in params)) for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)]

    assert ex.check_tag_params(right)
    assert not ex.check_tag_params(substring)
    assert not ex.check_tag_params(lowercase)
