"""The self-checks of the beam search chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import math

import pytest
import torch

from companion.exercises import beam_search as ex

torch.set_num_threads(1)


def test_by_hand_accepts_the_hand_computed_answer(capsys) -> None:
    # greedy: like (.6) > love; it (.4) is the best after "I like"; here (.6): 0.144
    # beam 2: after step 2 keeps "love you" (.32) and "like it" (.24); then "love you too" .192
    # best: "like tea too" .21, whose prefix "like tea" (.21) fell out of the beam at step 2
    assert ex.check_by_hand("like it here", "love you too", "like tea too")
    assert ex.check_by_hand("I like it here", "I love you too", "I like tea too")  # with the prompt, too
    assert "Right" in capsys.readouterr().out


@pytest.mark.parametrize("greedy, beam, best", [
    ("like tea too", "love you too", "like tea too"),    # greedy is not the best path
    ("like it here", "like tea too", "like tea too"),    # beam search does not find the best with 2 beams
    ("like it here", "love you too", "love you too"),    # the beam's answer is not the most probable
    ("like it now", "love you too", "like tea too"),
])
def test_by_hand_rejects_wrong_answers(greedy, beam, best, capsys) -> None:
    assert not ex.check_by_hand(greedy, beam, best)
    assert "Not quite" in capsys.readouterr().out


def test_by_hand_answer_key_matches_the_table() -> None:
    lm = ex.exercise_model()
    greedy, beam, best = ex.exercise_answers()
    assert lm.probability("I", greedy) == pytest.approx(0.6 * 0.4 * 0.6)
    assert lm.probability("I", beam) == pytest.approx(0.4 * 0.8 * 0.6)
    assert lm.probability("I", best) == pytest.approx(0.6 * 0.35 * 1.0)
    with pytest.raises(TypeError, match="greedy must be a string"):
        ex.check_by_hand(["like"], "love you too", "like tea too")


def test_scores() -> None:
    short = (math.log(0.5) + math.log(0.8)) / 2
    long = (math.log(0.3) + math.log(0.9) + math.log(0.9) + math.log(0.8)) / 4
    assert ex.check_scores(short, long)
    assert long > short  # with length_penalty=1 the long hypothesis wins
    assert not ex.check_scores(math.log(0.5 * 0.8), math.log(0.3 * 0.9 * 0.9 * 0.8))  # no length penalty
    assert not ex.check_scores(math.log(0.5) / 1, long)  # <eos> not counted
    assert not ex.check_scores(short, (math.log(0.3 * 0.9 * 0.9 * 0.8)) / 16)  # squared length
    with pytest.raises(TypeError, match="short must be a number"):
        ex.check_scores("-0.46", long)


def _correct_beam_search(model, prompt_ids, num_beams, steps):
    beams = [(list(prompt_ids), 0.0)]
    for _ in range(steps):
        candidates = []
        for seq, score in beams:
            log_probs = model(torch.tensor([seq]))[0, -1].float().log_softmax(-1)
            candidates += [(seq + [tok], score + lp) for tok, lp in enumerate(log_probs.tolist())]
        beams = sorted(candidates, key=lambda c: c[1], reverse=True)[:num_beams]
    return beams[0][0][len(prompt_ids):]


def test_beam_search_accepts_a_correct_implementation(capsys) -> None:
    assert ex.check_beam_search(_correct_beam_search)
    assert "Right" in capsys.readouterr().out


def test_beam_search_rejects_greedy_and_other_mistakes(capsys) -> None:
    def greedy(model, prompt_ids, num_beams, steps):
        return _correct_beam_search(model, prompt_ids, 1, steps)

    def with_prompt(model, prompt_ids, num_beams, steps):
        return list(prompt_ids) + _correct_beam_search(model, prompt_ids, num_beams, steps)

    def last_step_only(model, prompt_ids, num_beams, steps):  # ranks by the last token's probability
        beams = [list(prompt_ids)]
        for _ in range(steps):
            cands = []
            for seq in beams:
                lp = model(torch.tensor([seq]))[0, -1].float().log_softmax(-1)
                cands += [(seq + [t], v) for t, v in enumerate(lp.tolist())]
            beams = [c[0] for c in sorted(cands, key=lambda c: c[1], reverse=True)[:num_beams]]
        return beams[0][len(prompt_ids):]

    for wrong in (greedy, with_prompt, last_step_only, lambda *args: None):
        assert not ex.check_beam_search(wrong)
    assert "Not quite" in capsys.readouterr().out
    with pytest.raises(TypeError, match="my_beam_search must be a function"):
        ex.check_beam_search("beam")


def test_test_cases_tell_greedy_from_beam_search() -> None:
    # the check is only worth something if some case has a beam answer that greedy misses
    differ = 0
    for model, prompt, num_beams, steps in ex._test_cases():
        a = _correct_beam_search(model, prompt, num_beams, steps)
        b = _correct_beam_search(model, prompt, 1, steps)
        differ += a != b
    assert differ >= 2
