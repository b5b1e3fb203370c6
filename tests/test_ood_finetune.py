"""Tests for companion.ood_finetune: the package groups, leak-free splits, one small fine-tuning run."""

from __future__ import annotations

import pytest

from companion import folders, ood_finetune
from companion.gpt import GPT, GPTConfig
from companion.icl import byte_tokenizer
from companion.transfer_data import shuffle_task


def test_groups_split_by_top_level_package():
    assert ood_finetune.in_first_group("email.mime.text") == ood_finetune.in_first_group("email")
    modules = {e.module.split(".")[0] for e in shuffle_task().train}
    share = sum(ood_finetune.in_first_group(m) for m in modules) / len(modules)
    assert 0.55 < share < 0.85  # about 70 % of the packages
    with pytest.raises(ValueError, match="share"):
        ood_finetune.in_first_group("os", share=1.0)


def test_splits_are_disjoint_balanced_and_grouped():
    train, inside, outside = ood_finetune.splits(shuffle_task().train, 32, seed=1, n_test=40)
    assert len(train) == 32 and len(inside) == len(outside) == 40
    assert not {e.text for e in train} & {e.text for e in inside}
    assert all(ood_finetune.in_first_group(e.module) for e in train + inside)
    assert not any(ood_finetune.in_first_group(e.module) for e in outside)
    assert sum(e.label for e in train) == 16 and sum(e.label for e in outside) == 20
    with pytest.raises(ValueError, match="n"):
        ood_finetune.splits(shuffle_task().train, 0, seed=0)


def test_run_cell_on_a_small_model():
    model = GPT(GPTConfig(vocab_size=256, block_size=256, n_layer=1, n_head=2, n_embd=16), seed=0)
    row = ood_finetune.run_cell(model, byte_tokenizer(), shuffle_task().train, 8, seed=0, n_test=20)
    assert row["n"] == 8 and 0 <= row["in_distribution"] <= 1 and 0 <= row["out_of_distribution"] <= 1
    # accuracies are multiples of 1/20 on 20 test examples
    assert abs(row["in_distribution"] * 20 - round(row["in_distribution"] * 20)) < 1e-6


def test_shipped_results_if_present():
    if "ood-finetune" not in folders.listed("results"):
        pytest.skip("results not shipped")
    manifest, rows = ood_finetune.load_results()
    assert manifest["command"].startswith("python -m companion.ood_finetune")
    assert {r["n"] for r in rows} and all(0 <= r["in_distribution"] <= 1 for r in rows)
