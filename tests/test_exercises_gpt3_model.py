"""Each self-check of the GPT-3 model chapter accepts the right answer and rejects a plausible wrong one."""

from __future__ import annotations

import pytest

from companion.exercises import gpt3_model as ex
from companion.gpt import GPT, GPTConfig


def test_pf_days() -> None:
    assert ex.check_pf_days_13b(6 * 13e9 * 300e9 / 8.64e19)
    assert not ex.check_pf_days_13b(2 * 13e9 * 300e9 / 8.64e19)  # forward pass only
    with pytest.raises(TypeError, match="answer must be a number"):
        ex.check_pf_days_13b("270")


def test_chinchilla() -> None:
    c = 6 * 175e9 * 300e9
    assert ex.check_chinchilla_params((c / 120) ** 0.5)
    assert not ex.check_chinchilla_params((c / 6 / 20) ** 0.5 * 20)  # D instead of N


def test_gpus() -> None:
    assert ex.check_gpus_for_state(35)
    assert not ex.check_gpus_for_state(5)  # fp16 weights only (350 GB)


def test_extrapolated_loss() -> None:
    from companion.sweep import fit_sizes, load_sweep, summary

    runs = load_sweep()[1]
    law = fit_sizes(runs)
    n = 10 * sorted(summary(run)["N"] for run in runs)[3]
    assert ex.check_extrapolated_loss(float((law.scale / n) ** law.alpha))
    assert not ex.check_extrapolated_loss(float((law.scale / (n / 10)) ** law.alpha))  # forgot the factor 10


def right(n_layer: int, n_embd: int, vocab_size: int, block_size: int) -> int:
    d = n_embd
    return n_layer * (12 * d * d + 13 * d) + (vocab_size + block_size) * d + 2 * d


def test_parameter_count_accepts_right_and_rejects_wrong(capsys) -> None:
    model = GPT(GPTConfig(vocab_size=37, block_size=9, n_layer=2, n_head=2, n_embd=16))
    assert right(2, 16, 37, 9) == sum(p.numel() for p in model.parameters())
    assert ex.check_parameter_count(right)
    assert not ex.check_parameter_count(lambda n_layer, d, v, t: 12 * n_layer * d * d + (v + t) * d)
    assert "n_embd" in capsys.readouterr().out
    assert not ex.check_parameter_count(lambda n_layer, d, v, t: right(n_layer, d, v, t) + v * d)  # untied
    with pytest.raises(TypeError, match="my_count must be a function"):
        ex.check_parameter_count(42)
