"""Feature-based vs fine-tuning on the token task: the experiment of BERT's Table 7, at course scale.

    python -m companion.transfer_regimes --out companion/results/transfer-regimes --seeds 3   # minutes of CPU
    table = summary(load_results()[1])        # (backbone, method) -> seed means, with the F1 spread

On the parameter-name task (`transfer_data.param_task`, F1 of the "parameter" words, read at each word's first
sub-token) it scores, for the pretrained tiny GPT and a random-init GPT of the same shape: a linear probe on every
layer, the concatenation of the last four layers, ELMo's scalar mix, a small bidirectional GRU on the last layer's
frozen states, and fine-tuning (plain, with discriminative learning rates, from random initialisation). For each
it records the trainable parameters and the seconds per epoch; for fine-tuning also the language-model loss on
held-out text before and after (forgetting). The rows that draw random numbers (the BiGRU's initialisation and
data order, fine-tuning's head and data order) are repeated for each seed; the linear heads are deterministic.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time

import torch

from companion import data, folders, lm_eval
from companion import transfer as tr
from companion import transfer_data as td
from companion import transfer_finetune as ft
from companion.checks import positive_int
from companion.gpt import GPT
from companion.transfer_curves import backbones

MAX_TOKENS = 64
FINETUNE = {"epochs": 2, "min_steps": 30, "batch_size": 32, "lr": 3e-4, "head_lr": 1e-3}
LM_EVAL_TOKENS = 16384
CURVE_SIZES = (64, 256)  # training texts for the learning curve; the main rows use all of them


def param_batches(max_tokens: int = MAX_TOKENS) -> tuple[tr.Batch, tr.Batch]:
    """Train and test batches of the parameter task, token labels at each word's first sub-token."""
    task = td.param_task()
    _, tokenizer = backbones()["pretrained"]

    def batch(rows):
        return tr.encode(tokenizer, [r.text for r in rows], max_tokens,
                         spans=[r.spans for r in rows], labels=[r.labels for r in rows])

    return batch(task.train), batch(task.test)


@torch.no_grad()
def token_states(model: GPT, batch: tr.Batch, layer: int, batch_size: int = 64) -> torch.Tensor:
    """(N, T, C): one layer's states for every token of a padded batch (padding rows are zeros)."""
    out = torch.zeros(len(batch), batch.ids.shape[1], model.config.n_embd)
    model.eval()
    for start in range(0, len(batch), batch_size):
        rows = slice(start, start + batch_size)
        states = model.hidden_states(batch.ids[rows])[layer]
        out[rows] = states * batch.mask[rows].unsqueeze(-1)
    return out


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def bigru_f1(s_train: torch.Tensor, train: tr.Batch, s_test: torch.Tensor, test: tr.Batch,
             seed: int) -> tuple[float, int]:
    """(test F1, trainable parameters) of a BiGRU tagger trained on frozen token states (`token_states`)."""
    gru = tr.fit_bigru(s_train, train.token_labels, epochs=6, seed=seed)
    with torch.no_grad():
        pred = gru(s_test).argmax(-1)[test.token_labels != tr.IGNORE]
    return tr.f1(pred, tr.scored_labels(test)), sum(p.numel() for p in gru.parameters())


def frozen_rows(name: str, model: GPT, train: tr.Batch, test: tr.Batch, seeds: int = 1) -> list[dict]:
    """Probe F1 by layer, concat of the last four, scalar mix and the BiGRU, on frozen features."""
    (f_train, f_test), extract = _timed(lambda: (tr.features(model, train), tr.features(model, test)))
    y_train, y_test = tr.scored_labels(train), tr.scored_labels(test)
    rows = []
    n_layers = f_train.shape[0]
    for layer in range(n_layers):
        head, seconds = _timed(lambda layer=layer: tr.fit_linear(f_train[layer], y_train, 2))
        rows.append({"backbone": name, "method": f"layer {layer}", "layer": layer,
                     "f1": tr.f1(head.predict(f_test[layer]), y_test), "seconds": seconds,
                     "trainable": sum(p.numel() for p in head.parameters())})
    k = min(4, n_layers - 1)
    head, seconds = _timed(lambda: tr.fit_linear(tr.concat_last(f_train, k), y_train, 2))
    rows.append({"backbone": name, "method": f"concat last {k}", "f1": tr.f1(
        head.predict(tr.concat_last(f_test, k)), y_test), "seconds": seconds,
        "trainable": sum(p.numel() for p in head.parameters())})
    mix, seconds = _timed(lambda: tr.fit_scalar_mix(f_train, y_train, 2))
    rows.append({"backbone": name, "method": "scalar mix, all layers", "f1": tr.f1(mix.predict(f_test), y_test),
                 "seconds": seconds, "trainable": sum(p.numel() for p in mix.parameters()),
                 "weights": [round(w, 4) for w in mix.weights().tolist()]})
    s_train, s_test = token_states(model, train, -1), token_states(model, test, -1)
    for seed in range(seeds):
        (f1, trainable), seconds = _timed(lambda seed=seed: bigru_f1(s_train, train, s_test, test, seed))
        rows.append({"backbone": name, "method": "BiGRU on last layer", "seed": seed, "f1": f1,
                     "seconds": seconds, "trainable": trainable})
    rows.append({"backbone": name, "method": "feature extraction", "seconds": extract})
    return rows


def finetune_rows(train: tr.Batch, test: tr.Batch, windows: torch.Tensor, seeds: int = 1) -> list[dict]:
    """Fine-tuning, plain and with discriminative rates, and from random init; with the LM loss before/after."""
    rows = []
    plans = [("pretrained", "fine-tune", 1.0), ("pretrained", "fine-tune, discriminative", 2.6),
             ("random", "fine-tune", 1.0)]
    for seed in range(seeds):
        for name, method, decay in plans:
            rows.append(_finetune_row(name, method, decay, seed, train, test, windows))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def fine_tune_f1(model: GPT, train: tr.Batch, test: tr.Batch, seed: int,
                 decay: float = 1.0) -> tuple[float, dict, ft.Classifier]:
    """Fine-tune a copy of ``model`` on the token task: (test F1, `fine_tune`'s stats, the classifier)."""
    classifier = ft.Classifier(copy.deepcopy(model), 2, token_level=True)
    stats = ft.fine_tune(classifier, train, decay=decay, seed=seed, **FINETUNE)
    return tr.f1(ft.predict(classifier, test), tr.scored_labels(test)), stats, classifier


def _finetune_row(name: str, method: str, decay: float, seed: int, train: tr.Batch, test: tr.Batch,
                  windows: torch.Tensor) -> dict:
    model = backbones()[name][0]
    f1, stats, classifier = fine_tune_f1(model, train, test, seed, decay)
    return {"backbone": name, "method": method, "seed": seed, "f1": f1,
            "seconds": stats["seconds"], "seconds_per_epoch": stats["seconds_per_epoch"],
            "trainable": ft.trainable_parameters(classifier), "lm_loss_before": lm_eval.estimate_loss(model, windows),
            "lm_loss_after": lm_eval.estimate_loss(classifier.backbone, windows)}


def curve_rows(train: tr.Batch, test: tr.Batch, sizes=CURVE_SIZES, seeds: int = 1) -> list[dict]:
    """The token task with fewer labels: the BiGRU on frozen last-layer states and plain fine-tuning, for both
    backbones, on ``n`` training texts drawn with each seed (the main rows use every training text)."""
    rows = []
    states = {name: (token_states(model, train, -1), token_states(model, test, -1))
              for name, (model, _) in backbones().items()}
    for n in sizes:
        for seed in range(seeds):
            pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
            subset = train.select(pick)
            for name, (model, _) in backbones().items():
                s_train, s_test = states[name]
                rows.append({"backbone": name, "method": "BiGRU on last layer", "n": n, "seed": seed,
                             "f1": bigru_f1(s_train[pick], subset, s_test, test, seed)[0]})
                rows.append({"backbone": name, "method": "fine-tune", "n": n, "seed": seed,
                             "f1": fine_tune_f1(model, subset, test, seed)[0]})
                print(json.dumps(rows[-2:]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the BiGRU and fine-tuning rows")
    args = parser.parse_args(argv)
    positive_int(args.seeds, "seeds")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    train, test = param_batches()
    rows = []
    for name, (model, _) in backbones().items():
        rows += frozen_rows(name, model, train, test, args.seeds)
        print(json.dumps(rows[-6:]), flush=True)
    _, tokenizer = backbones()["pretrained"]
    valid = lm_eval.tokenize_cached(data.pretraining_texts("valid"), tokenizer, data.cache_dir())
    windows = lm_eval.eval_windows(valid, backbones()["pretrained"][0].config.block_size, LM_EVAL_TOKENS)
    rows += finetune_rows(train, test, windows, args.seeds)
    curves = curve_rows(train, test, CURVE_SIZES, args.seeds)
    manifest = {"name": "transfer-regimes", "command": "python -m companion.transfer_regimes " + " ".join(
        argv if argv is not None else sys.argv[1:]), "seconds": round(time.perf_counter() - start, 1),
        "seeds": args.seeds, "curve_sizes": list(CURVE_SIZES), "finetune": FINETUNE, "max_tokens": MAX_TOKENS, "lm_eval_tokens": LM_EVAL_TOKENS,
        "train_texts": len(train), "test_texts": len(test), "test_words": int(len(tr.scored_labels(test))),
        "python_version": platform.python_version(), "torch_version": torch.__version__}
    folders.write_folder(args.out, manifest, files={"rows.json": json.dumps(rows, indent=0),
                                                    "curves.json": json.dumps(curves, indent=0)})


def load_results(folder=None) -> tuple[dict, list[dict]]:
    """The shipped comparison: (manifest, rows), checksums verified."""
    found = folders.read_folder(folder if folder is not None else folders.shipped("results", "transfer-regimes"))
    return found.manifest, json.loads(found.files["rows.json"])


def load_curves(folder=None) -> list[dict]:
    """The shipped learning-curve rows of the token task (`curve_rows`), checksums verified."""
    found = folders.read_folder(folder if folder is not None else folders.shipped("results", "transfer-regimes"))
    return json.loads(found.files["curves.json"])


def summary(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """(backbone, method) -> that method's numbers averaged over its seeds, plus ``f1_spread`` (population
    standard deviation of F1 over seeds; 0 for the deterministic rows) and ``seeds`` (how many rows)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["backbone"], r["method"]), []).append(r)
    table = {}
    for key, group in groups.items():
        merged = dict(group[0])
        merged.pop("seed", None)
        for field, value in group[0].items():
            if isinstance(value, (int, float)) and field not in ("seed", "layer", "trainable"):
                merged[field] = sum(r[field] for r in group) / len(group)
        if "f1" in merged:
            mean = merged["f1"]
            merged["f1_spread"] = (sum((r["f1"] - mean) ** 2 for r in group) / len(group)) ** 0.5
        merged["seeds"] = len(group)
        table[key] = merged
    return table


if __name__ == "__main__":
    main()
