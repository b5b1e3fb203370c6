"""The learning-curve harness and the regimes experiment: summaries, shipped results complete, token states."""

from __future__ import annotations

import torch

from companion import transfer as tr
from companion import transfer_curves as tc
from companion import transfer_regimes as rg
from companion.gpt import GPT, GPTConfig


def test_summary_gives_mean_and_spread_over_seeds():
    rows = [{"task": "t", "method": "m", "n": 16, "seed": s, "accuracy": a} for s, a in enumerate([0.5, 0.6, 0.7])]
    rows.append({"task": "other", "method": "m", "n": 16, "seed": 0, "accuracy": 0.0})
    (mean, spread), = tc.summary(rows, "t")["m"].values()
    assert abs(mean - 0.6) < 1e-6 and abs(spread - (0.02 / 3) ** 0.5) < 1e-6


def test_shipped_curves_hold_every_cell_of_the_plan():
    manifest, curves, layers = tc.load_results()
    done = {(r["task"], r["method"], r["n"], r["seed"]) for r in curves}
    wanted = {(t, m, min(n, manifest["tasks"][t]["train"]), s) for t, m, n, s in tc.plan()}
    assert wanted <= done
    assert {(r["task"], r["backbone"]) for r in layers} == {(t, b) for t in ("kind", "shuffle")
                                                           for b in ("pretrained", "random")}
    assert all(0 <= r["accuracy"] <= 1 for r in curves + layers)


def test_shipped_regimes_rows_cover_both_backbones_and_every_method():
    manifest, rows = rg.load_results()
    methods = {(r["backbone"], r["method"]) for r in rows}
    for backbone in ("pretrained", "random"):
        assert {(backbone, f"layer {i}") for i in range(5)} <= methods
        assert {(backbone, "concat last 4"), (backbone, "BiGRU on last layer"), (backbone, "fine-tune")} <= methods
    assert ("pretrained", "fine-tune, discriminative") in methods
    assert manifest["command"].startswith("python -m companion.transfer_regimes")


def test_token_states_are_one_layer_with_padding_zeroed():
    model = GPT(GPTConfig(vocab_size=32, block_size=8, n_layer=2, n_head=2, n_embd=8), seed=0).eval()
    batch = tr.Batch(torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([[True] * 3, [True, True, False]]))
    states = rg.token_states(model, batch, layer=1, batch_size=1)
    with torch.no_grad():
        expected = model.hidden_states(batch.ids)[1]
    torch.testing.assert_close(states[0], expected[0])
    torch.testing.assert_close(states[1, :2], expected[1, :2])
    assert torch.equal(states[1, 2], torch.zeros(8))
