"""The self-checks of the top-p chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import pytest

from companion.exercises import top_p as ex


def test_nucleus_accepts_the_hand_computed_set(capsys) -> None:
    # sorted cumulative sums: .42 .62 .77 .87 .93 -> the fifth word crosses 0.9
    assert ex.check_nucleus({"the", "a", "this", "our", "its"})
    assert ex.check_nucleus(["its", "our", "this", "a", "the"])  # any order, any collection
    assert "Right" in capsys.readouterr().out


@pytest.mark.parametrize("answer", [
    {"the", "a", "this", "our"},                     # stops before crossing p (0.87 < 0.9)
    {"the", "a", "this", "our", "its", "my"},        # one too many
    {"the"},
    set(),
])
def test_nucleus_rejects_wrong_sets(answer, capsys) -> None:
    assert not ex.check_nucleus(answer)
    assert "Not quite" in capsys.readouterr().out


def test_nucleus_rejects_a_string() -> None:
    with pytest.raises(TypeError, match="answer must be a collection of words"):
        ex.check_nucleus("the a this")


def test_renormalised() -> None:
    assert ex.check_renormalised(0.20 / 0.93)
    assert not ex.check_renormalised(0.20)         # forgot to renormalise
    assert not ex.check_renormalised(0.20 / 0.87)  # renormalised over the wrong set
    with pytest.raises(TypeError, match="answer must be a number"):
        ex.check_renormalised("0.215")


def test_temperature_nucleus() -> None:
    # p**2 renormalised: .692 .157 .088 ... -> cumulative .692 .849 .937: three words
    assert ex.check_temperature_nucleus(3)
    assert not ex.check_temperature_nucleus(5)  # the nucleus at temperature 1
    assert not ex.check_temperature_nucleus(2)
    assert ex.nucleus(ex.EXERCISE_PROBS, ex.EXERCISE_P, 2.0) == list(ex.EXERCISE_PROBS)[:6]  # hotter: wider
    with pytest.raises(TypeError, match="answer must be an int"):
        ex.check_temperature_nucleus(3.0)


def _descending_top_p(logits, p):
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    before = cumulative - sorted_logits.softmax(-1)  # mass of the tokens ranked above
    remove_sorted = before >= p
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def test_top_p_filter_accepts_a_correct_implementation(capsys) -> None:
    assert ex.check_top_p_filter(_descending_top_p)
    assert "Right" in capsys.readouterr().out


def test_top_p_filter_rejects_wrong_implementations(capsys) -> None:
    def excludes_the_crossing_token(logits, p):
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        remove_sorted = sorted_logits.softmax(-1).cumsum(-1) > p
        remove_sorted[..., 0] = False
        return logits.masked_fill(remove_sorted.scatter(-1, order, remove_sorted), float("-inf"))

    def mask_in_sorted_order(logits, p):  # forgets to scatter back to vocabulary order
        sorted_logits, _ = logits.sort(dim=-1, descending=True)
        before = sorted_logits.softmax(-1).cumsum(-1) - sorted_logits.softmax(-1)
        return logits.masked_fill(before >= p, float("-inf"))

    def renormalises_logits(logits, p):
        kept = _descending_top_p(logits, p)
        return kept.log_softmax(-1)

    for wrong in (excludes_the_crossing_token, mask_in_sorted_order, renormalises_logits, lambda x, p: x):
        assert not ex.check_top_p_filter(wrong)
    assert "Not quite" in capsys.readouterr().out
    assert not ex.check_top_p_filter(lambda x, p: x.tolist())
    with pytest.raises(TypeError, match="my_top_p must be a function"):
        ex.check_top_p_filter(0.9)


def _right_min_p(logits, min_p):
    probs = logits.softmax(-1)
    return logits.masked_fill(probs < min_p * probs.max(-1, keepdim=True).values, float("-inf"))


def test_min_p_filter_accepts_a_correct_implementation(capsys) -> None:
    assert ex.check_min_p_filter(_right_min_p)
    assert "Right" in capsys.readouterr().out


def test_min_p_filter_rejects_wrong_implementations(capsys) -> None:
    def absolute_threshold(logits, min_p):  # forgets to scale by the top probability
        return logits.masked_fill(logits.softmax(-1) < min_p, float("-inf"))

    def on_logits(logits, min_p):  # compares logits instead of probabilities
        return logits.masked_fill(logits < min_p * logits.max(-1, keepdim=True).values, float("-inf"))

    def renormalises(logits, min_p):
        return _right_min_p(logits, min_p).log_softmax(-1)

    for wrong in (absolute_threshold, on_logits, renormalises, lambda x, p: x):
        assert not ex.check_min_p_filter(wrong)
    assert "Not quite" in capsys.readouterr().out
    assert not ex.check_min_p_filter(lambda x, p: x.tolist())
    with pytest.raises(TypeError, match="my_min_p must be a function"):
        ex.check_min_p_filter(0.1)
