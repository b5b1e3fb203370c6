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


def test_regimes_summary_averages_seeded_rows_and_keeps_the_others():
    rows = [{"backbone": "pretrained", "method": "fine-tune", "seed": s, "f1": f, "seconds": 10.0 * (s + 1),
             "trainable": 7, "lm_loss_before": 4.0, "lm_loss_after": a} for s, f, a in [(0, 0.4, 6.0), (1, 0.5, 7.0)]]
    rows.append({"backbone": "random", "method": "layer 2", "layer": 2, "f1": 0.25, "seconds": 1.0, "trainable": 514})
    table = rg.summary(rows)
    ft_row = table[("pretrained", "fine-tune")]
    assert ft_row["seeds"] == 2 and "seed" not in ft_row and ft_row["trainable"] == 7
    assert abs(ft_row["f1"] - 0.45) < 1e-12 and abs(ft_row["f1_spread"] - 0.05) < 1e-12
    assert ft_row["seconds"] == 15.0 and ft_row["lm_loss_after"] == 6.5 and ft_row["lm_loss_before"] == 4.0
    assert table[("random", "layer 2")] == {"backbone": "random", "method": "layer 2", "layer": 2, "f1": 0.25,
                                            "seconds": 1.0, "trainable": 514, "f1_spread": 0.0, "seeds": 1}


def test_shipped_regimes_have_three_seeds_where_randomness_enters():
    manifest, rows = rg.load_results()
    table = rg.summary(rows)
    assert manifest["seeds"] == 3
    for key in [("pretrained", "fine-tune"), ("pretrained", "fine-tune, discriminative"), ("random", "fine-tune"),
                ("pretrained", "BiGRU on last layer"), ("random", "BiGRU on last layer")]:
        assert table[key]["seeds"] == 3, key
    assert table[("pretrained", "layer 4")]["seeds"] == 1
    curves = rg.load_curves()
    assert {(r["backbone"], r["method"], r["n"], r["seed"]) for r in curves} == {
        (b, m, n, s) for b in ("pretrained", "random") for m in ("BiGRU on last layer", "fine-tune")
        for n in manifest["curve_sizes"] for s in range(3)}
    assert all(0 <= r["f1"] <= 1 for r in curves) and manifest["curve_sizes"] == list(rg.CURVE_SIZES)


def test_token_states_are_one_layer_with_padding_zeroed():
    model = GPT(GPTConfig(vocab_size=32, block_size=8, n_layer=2, n_head=2, n_embd=8), seed=0).eval()
    batch = tr.Batch(torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([[True] * 3, [True, True, False]]))
    states = rg.token_states(model, batch, layer=1, batch_size=1)
    with torch.no_grad():
        expected = model.hidden_states(batch.ids)[1]
    torch.testing.assert_close(states[0], expected[0])
    torch.testing.assert_close(states[1, :2], expected[1, :2])
    assert torch.equal(states[1, 2], torch.zeros(8))
