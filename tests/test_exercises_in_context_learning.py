"""The self-checks of the in-context-learning chapter accept the right answers and reject wrong ones."""

from __future__ import annotations

import pytest

from companion import icl
from companion.exercises import in_context_learning as ex


def test_longest_prompt(capsys):
    # "Drop symbols:\n" 14 + 10 x (27 + 3 + 14 + 1) + (27 + 3) + (14 + 1) = 509
    assert ex.check_longest_prompt(509)
    assert "Right" in capsys.readouterr().out
    assert not ex.check_longest_prompt(495)  # forgot the description line
    assert not ex.check_longest_prompt(10 * 32)  # questions as long as the word
    assert "Not quite" in capsys.readouterr().out
    with pytest.raises(TypeError, match="answer must be an int"):
        ex.check_longest_prompt(509.0)


def test_ridge_lambda():
    assert ex.check_ridge_lambda(0.25)
    assert not ex.check_ridge_lambda(0.5)  # the noise's standard deviation, not its variance
    assert not ex.check_ridge_lambda(4.0)
    with pytest.raises(TypeError, match="answer must be a number"):
        ex.check_ridge_lambda("0.25")


def test_prefix_matching_accepts_the_definition_and_rejects_near_misses():
    def right(pattern):
        L = pattern.shape[0] // 2
        return sum(pattern[L + j, j + 1].item() for j in range(L)) / L

    def same_token(pattern):  # looks at the earlier copy of the token itself, not the one after it
        L = pattern.shape[0] // 2
        return sum(pattern[L + j, j].item() for j in range(L)) / L

    def whole_sequence(pattern):  # averages over the first copy too
        L = pattern.shape[0] // 2
        return sum(pattern[i, (i % L) + 1].item() for i in range(1, 2 * L - 1)) / (2 * L - 2)

    assert ex.check_prefix_matching(right)
    assert not ex.check_prefix_matching(same_token)
    assert not ex.check_prefix_matching(whole_sequence)
    with pytest.raises(TypeError, match="my_score must be a function"):
        ex.check_prefix_matching(0.5)


def test_the_answer_key_is_the_package_score():
    ids = icl.repeated_sequences(64, n=1, length=5)
    from companion.gpt import GPT, GPTConfig

    gpt = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=1, n_embd=8), seed=0).eval()
    pattern = icl.attention_patterns(gpt, ids)[0][0, 0]
    assert ex.prefix_matching(pattern) == pytest.approx(icl.prefix_matching_scores(gpt, ids)[0, 0].item())
    assert ex.longest_prompt_bytes() == icl.longest_prompt(10)
