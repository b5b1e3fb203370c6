"""companion.scaling and companion.sweep: counts against numel, GPT-3 Table 2.1, 6ND, masks against loops,
power-law fits on known laws, the sweep machinery on a toy run, and the shipped sweep's checksums."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from companion import scaling as S
from companion import sweep
from companion.attention import full_attention
from companion.gpt import GPT, GPTConfig


@pytest.mark.parametrize(("n_layer", "n_head", "n_embd", "vocab", "block", "bias"), [
    (1, 1, 8, 11, 5, True), (2, 2, 32, 300, 16, True), (3, 4, 48, 97, 33, False), (4, 4, 256, 4096, 256, True),
    (2, 3, 24, 50, 7, False),
])
def test_parameter_count_equals_numel(n_layer, n_head, n_embd, vocab, block, bias) -> None:
    model = GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                          bias=bias))
    assert S.parameter_count(n_layer, n_embd, vocab, block, bias=bias) == sum(p.numel() for p in model.parameters())
    tables = model.wte.weight.numel() + model.wpe.weight.numel()
    assert S.non_embedding_count(n_layer, n_embd, bias=bias) == model.num_parameters() - tables


def test_tiny_gpt_count() -> None:
    assert S.parameter_count(4, 256, 4096, 256) == 4_273_664  # the shipped model's manifest


@pytest.mark.parametrize("name", list(S.GPT3_SIZES))
def test_gpt3_table_2_1_within_2_percent(name: str) -> None:
    printed, n_layer, d_model, *_ = S.GPT3_SIZES[name]
    counted = S.parameter_count(n_layer, d_model, S.GPT3_VOCAB, S.GPT3_CONTEXT)
    assert abs(counted / printed - 1) < 0.02


def test_twelve_l_d_squared_is_32_percent_low_at_125m() -> None:
    exact = S.parameter_count(12, 768, S.GPT3_VOCAB, S.GPT3_CONTEXT)
    assert 0.31 < 1 - S.approx_parameters(12, 768) / exact < 0.33
    big = S.parameter_count(96, 12288, S.GPT3_VOCAB, S.GPT3_CONTEXT)
    assert 1 - S.approx_parameters(96, 12288) / big < 0.005  # and fine at 175B


def test_table_inconsistencies_are_the_two_rows() -> None:
    bad = [name for name, (_, _, d, heads, d_head, _, _) in S.GPT3_SIZES.items() if heads * d_head != d]
    assert bad == ["GPT-3 XL", "GPT-3 13B"]


def test_flops_hand_case_and_gpt3() -> None:
    assert S.training_flops(10, 7) == 420.0
    assert S.attention_flops(2, 3, 5, 7) == 6 * 2 * 3 * 5 * 7
    assert S.pf_days(8.64e19) == pytest.approx(1.0)
    flops = S.training_flops(175e9, 300e9)
    assert flops == pytest.approx(3.15e23)
    assert 3600 < S.pf_days(flops) < 3680  # the paper: 3.14e23 FLOPs, 3.64e3 PF-days
    assert S.attention_flops(96, 2048, 12288, 300e9) / flops < 0.02
    with pytest.raises(ValueError, match="n_params and n_tokens must be > 0"):
        S.training_flops(0, 1)


def test_memory_conventions() -> None:
    mixed, fp32 = S.training_memory(1e9), S.training_memory(1e9, "fp32")
    assert sum(mixed.values()) == sum(fp32.values()) == 16e9
    assert mixed["weights"] == 2e9 and fp32["weights"] == 4e9
    with pytest.raises(ValueError, match="precision must be one of"):
        S.training_memory(1e9, "bf16")


def test_epochs_from_weights() -> None:
    assert S.epochs_elapsed(410e9, 0.6) == pytest.approx(0.439, abs=1e-3)
    assert S.epochs_elapsed(19e9, 0.22) == pytest.approx(3.47, abs=0.01)  # the paper prints 2.9
    assert sum(w for _, w, _ in S.GPT3_DATA_MIX.values()) == pytest.approx(1.01)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(1, 24), st.integers(1, 30))
def test_masks_against_loops(length: int, window: int) -> None:
    dense, banded = S.dense_causal_mask(length), S.banded_causal_mask(length, window)
    for i in range(length):
        for j in range(length):
            assert dense[i, j].item() == (j <= i)
            assert banded[i, j].item() == (i - window < j <= i)
    assert dense.dtype == banded.dtype == torch.bool
    assert S.attended_pairs(length) == dense.sum().item()
    assert S.attended_pairs(length, window) == banded.sum().item()


def test_alternating_pattern() -> None:
    masks = S.alternating_masks(4, 10, 3)
    assert [m.sum().item() for m in masks] == [55, 27, 55, 27]


def test_masked_attention_matches_companion_attention() -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 12, 8, generator=g) for _ in range(3))
    dense = S.masked_attention(q, k, v, S.dense_causal_mask(12))
    assert torch.allclose(dense, full_attention(q, k, v, causal=True), atol=1e-5)
    # a band as wide as the sequence is the dense mask; a band of one attends to itself only
    assert torch.allclose(S.masked_attention(q, k, v, S.banded_causal_mask(12, 12)), dense, atol=1e-6)
    assert torch.allclose(S.masked_attention(q, k, v, S.banded_causal_mask(12, 1)), v, atol=1e-6)
    with pytest.raises(ValueError, match="mask must be Boolean"):
        S.masked_attention(q, k, v, torch.ones(12, 12))


def test_fit_power_law_recovers_a_known_law() -> None:
    x = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    law = S.fit_power_law(x, (8.8e13 / x) ** 0.076)
    assert law.alpha == pytest.approx(0.076) and law.scale == pytest.approx(8.8e13, rel=1e-6)
    assert law.r2 == pytest.approx(1.0) and law(2e5) == pytest.approx((8.8e13 / 2e5) ** 0.076)
    noisy = S.fit_power_law(x, (1e8 / x) ** 0.1 * np.array([1.0, 1.2, 0.8, 1.1, 0.9]))
    assert noisy.r2 < 0.9
    with pytest.raises(ValueError, match="x and y must be positive"):
        S.fit_power_law([1, 2], [1, -1])


def test_compute_frontier() -> None:
    small = [(1, 5.0), (2, 4.0), (4, 3.5)]
    big = [(2, 4.5), (4, 3.0), (8, 2.0)]
    assert S.compute_frontier([small, big]) == [(1, 5.0), (2, 4.0), (4, 3.0), (8, 2.0)]


def test_parameter_validation() -> None:
    with pytest.raises(ValueError, match="n_layer must be an int >= 1"):
        S.parameter_count(0, 8, 10, 4)
    with pytest.raises(ValueError, match="window must be an int >= 1"):
        S.banded_causal_mask(4, 0)


def test_kaplan_lr() -> None:
    assert sweep.kaplan_lr(10**6) == pytest.approx(0.003239 - 0.0001395 * math.log(1e6))
    lrs = [sweep.kaplan_lr(S.non_embedding_count(n_layer, n_embd)) for n_layer, _, n_embd in sweep.SIZES]
    assert lrs == sorted(lrs, reverse=True) and min(lrs) > 0


def test_sizes_span_30x() -> None:
    ns = [S.non_embedding_count(n_layer, n_embd) for n_layer, _, n_embd in sweep.SIZES]
    assert len(ns) >= 6 and ns == sorted(ns) and ns[-1] / ns[0] >= 30


def test_run_size_on_a_toy_corpus() -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, 5000).astype(np.uint16)
    config = sweep.SweepConfig(block_size=8, batch_size=4, steps=4, warmup_steps=1, eval_every=2, eval_tokens=64)
    run = sweep.run_size((1, 1, 8), config, ids[:4000], ids[4000:], 50)
    assert [r["step"] for r in run["history"]] == [2, 4]
    assert run["history"][1]["tokens"] == 4 * 32
    assert run["history"][1]["compute"] == 6 * S.non_embedding_count(1, 8) * 128
    assert run["params"] == S.parameter_count(1, 8, 50, 8)
    assert run["history"][1]["train_loss"] < math.log(50) + 0.5


def test_shipped_sweep_loads_and_rejects_edits(tmp_path) -> None:
    manifest, runs = sweep.load_sweep()
    assert len(runs) == len(sweep.SIZES) and manifest["command"].startswith("python -m companion.sweep")
    assert {"corpus_checksum", "tokenizer_sha256", "python_version", "torch_version", "seconds"} <= set(manifest)
    tokens = {run["history"][-1]["tokens"] for run in runs}
    assert len(tokens) == 1  # the same token budget for every size
    folder = tmp_path / "scaling"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "histories.json").write_text(json.dumps(runs[:-1]))
    with pytest.raises(ValueError, match="histories.json"):
        sweep.load_sweep(folder)
