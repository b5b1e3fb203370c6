"""The self-checks of the beam search chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import math

import pytest
import torch

from companion.exercises import beam_search as ex


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


def _beam_search_with_eos(model, prompt_ids, num_beams, max_new_tokens, eos_token_id, length_penalty,
                          mistake=None):
    """The reference answer of exercise 3, and (with ``mistake``) plausible wrong ones."""
    beams, finished = [(list(prompt_ids), 0.0)], []
    for step in range(1, max_new_tokens + 1):
        candidates = []
        for tokens, score in beams:
            log_probs = model(torch.tensor([tokens]))[0, -1].float().log_softmax(-1)
            candidates += [(tokens + [t], score + lp) for t, lp in enumerate(log_probs.tolist())]
        candidates.sort(key=lambda c: c[1], reverse=True)
        beams = []
        for rank, (tokens, score) in enumerate(candidates):
            ends = (tokens[-1] == eos_token_id and mistake != "ignore_eos") or step == max_new_tokens
            length = step - 1 if mistake == "eos_not_counted" and tokens[-1] == eos_token_id else step
            alpha = 0.0 if mistake == "no_penalty" else length_penalty
            if ends and (rank < num_beams or mistake == "finish_any_eos"):
                finished.append((tokens[len(prompt_ids):], score / max(length, 1) ** alpha))
            elif not ends:
                beams.append((tokens, score))
            if len(beams) == num_beams:
                break
    return max(finished, key=lambda f: f[1])


@pytest.mark.parametrize("seed", [None, 0, 1])
def test_beam_search_with_eos_accepts_the_reference(seed, capsys) -> None:
    assert ex.check_beam_search_with_eos(_beam_search_with_eos, seed=seed)
    assert "Right" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", ["no_penalty", "eos_not_counted", "ignore_eos"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_search_with_eos_rejects_plausible_mistakes(mistake, seed, capsys) -> None:
    def wrong(*args):
        return _beam_search_with_eos(*args, mistake=mistake)

    assert not ex.check_beam_search_with_eos(wrong, seed=seed)
    assert "Not quite" in capsys.readouterr().out


def test_beam_search_with_eos_rejects_broken_answers(capsys) -> None:
    def no_score(*args):
        return _beam_search_with_eos(*args)[0]

    def with_prompt(model, prompt_ids, *args):
        tokens, score = _beam_search_with_eos(model, prompt_ids, *args)
        return list(prompt_ids) + tokens, score

    for wrong in (no_score, with_prompt, lambda *args: None):
        assert not ex.check_beam_search_with_eos(wrong, seed=0)
    with pytest.raises(TypeError, match="my_beam_search must be a function"):
        ex.check_beam_search_with_eos("beam")


def test_fresh_cases_are_new_each_call_and_end_with_eos_often() -> None:
    first, again = ex.fresh_cases(3), ex.fresh_cases(3)
    assert [c[1:] for c in first] == [c[1:] for c in again]
    assert torch.equal(first[0][0].logits, again[0][0].logits)
    assert [c[1:] for c in ex.fresh_cases()] != [c[1:] for c in ex.fresh_cases()]
    ended = sum(ex.reference_answer(*case)[0][-1:] == [ex.EOS_ID] for case in first)
    assert 5 <= ended <= 25  # the check really exercises endings, and also hypotheses cut at max_new_tokens
