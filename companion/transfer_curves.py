"""Learning curves: the test score of each transfer method against the number of labelled examples.

    python -m companion.transfer_curves --out companion/results/transfer --log curves.jsonl   # the grid
    rows = run_cell("kind", "finetune-random", n=64, seed=0)               # one cell, as the chapter re-runs it

Every cell trains on ``n`` class-balanced training examples drawn with ``seed`` and scores accuracy on the
whole test split (held-out packages). Frozen features are computed once per (model, task) and reused by every
cell. The grid, the scores and the command that made them are written with `companion.folders`.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from functools import cache
from pathlib import Path

import torch

from companion import folders, pretrained
from companion import transfer as tr
from companion import transfer_data as td
from companion import transfer_finetune as ft
from companion.gpt import GPT

FEATURE_METHODS = ("ngram", "probe-pretrained", "probe-random", "mix-pretrained")
FINETUNE_METHODS = ("finetune-pretrained", "finetune-random")
METHODS = FEATURE_METHODS + FINETUNE_METHODS
MAX_TOKENS = {"kind": 32, "shuffle": 48}
FINETUNE = {"epochs": 2, "min_steps": 30, "batch_size": 32, "lr": 3e-4, "head_lr": 1e-3, "decay": 2.6}
RANDOM_SEED = 1  # the random-init backbone's seed (0 is the default of GPT(), nothing special)


@cache
def backbones() -> dict[str, tuple[GPT, object]]:
    """The pretrained tiny GPT and a random-init GPT of the same shape, with the shared tokenizer."""
    model, tokenizer = pretrained.load("tiny-gpt", device="cpu")
    return {"pretrained": (model, tokenizer), "random": (GPT(model.config, seed=RANDOM_SEED).eval(), tokenizer)}


@cache
def prepared(task_name: str):
    """(task, batch of train + test texts, labels, number of training examples) for a sequence task."""
    task = {"kind": td.kind_task, "shuffle": td.shuffle_task}[task_name]()
    examples = task.train + task.test
    _, tokenizer = backbones()["pretrained"]
    batch = tr.encode(tokenizer, [e.text for e in examples], MAX_TOKENS[task_name])
    labels = torch.tensor([e.label for e in examples])
    return task, batch, labels, len(task.train)


def sizes(task_name: str, grid=(16, 64, 256, 1024)) -> list[int]:
    """The grid of training-set sizes, then "all" (every training example)."""
    n_train = prepared(task_name)[3]
    return [n for n in grid if n < n_train] + [n_train]


def _train_rows(task_name: str, n: int, seed: int) -> torch.Tensor:
    task, _, _, n_train = prepared(task_name)
    if n >= n_train:
        return torch.arange(n_train)
    index = {id(e): i for i, e in enumerate(task.train)}
    picked = td.subsample(task.train, n, seed, n_classes=len(task.classes))
    return torch.tensor([index[id(e)] for e in picked])


def run_cell(task_name: str, method: str, n: int, seed: int) -> dict:
    """Train ``method`` on ``n`` examples drawn with ``seed``; its test accuracy, time and trainable parameters."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    task, batch, labels, n_train = prepared(task_name)
    train = _train_rows(task_name, n, seed)
    test = torch.arange(n_train, len(batch))
    k = len(task.classes)
    start = time.perf_counter()
    if method == "ngram":
        texts = [e.text for e in task.train + task.test]
        vocab = tr.ngram_vocab([texts[i] for i in train.tolist()])
        x = tr.ngram_features(texts, vocab)
        head = tr.fit_linear(x[train], labels[train], k)
        pred, trainable = head.predict(x[test]), sum(p.numel() for p in head.parameters())
    elif method in ("probe-pretrained", "probe-random", "mix-pretrained"):
        model = backbones()[method.split("-")[1]][0]
        feats = tr.features(model, batch)
        if method.startswith("probe"):
            head = tr.fit_linear(feats[-1][train], labels[train], k)
            pred = head.predict(feats[-1][test])
        else:
            head = tr.fit_scalar_mix(feats[:, train], labels[train], k)
            pred = head.predict(feats[:, test])
        trainable = sum(p.numel() for p in head.parameters())
    else:
        backbone = backbones()[method.split("-")[1]][0]
        classifier = ft.Classifier(copy.deepcopy(backbone), k)
        ft.fine_tune(classifier, batch.select(train), labels[train], seed=seed, **FINETUNE)
        pred, trainable = ft.predict(classifier, batch.select(test)), ft.trainable_parameters(classifier)
    return {"task": task_name, "method": method, "n": int(len(train)), "seed": seed,
            "accuracy": round(tr.accuracy(pred, labels[test]), 4), "seconds": round(time.perf_counter() - start, 2),
            "trainable": int(trainable)}


def layer_probe(task_name: str) -> list[dict]:
    """The linear probe on every layer (all training examples) for the pretrained and random backbones."""
    task, batch, labels, n_train = prepared(task_name)
    rows = []
    for name, (model, _) in backbones().items():
        feats = tr.features(model, batch)
        for layer in range(feats.shape[0]):
            head = tr.fit_linear(feats[layer][:n_train], labels[:n_train], len(task.classes))
            acc = tr.accuracy(head.predict(feats[layer][n_train:]), labels[n_train:])
            rows.append({"task": task_name, "backbone": name, "layer": layer, "accuracy": round(acc, 4)})
    return rows


def plan(task_names=("kind", "shuffle"), seeds: int = 3) -> list[tuple[str, str, int, int]]:
    """Every (task, method, n, seed) cell, those the chapter's assert needs first: fine-tuning at 64 to 1024
    on the kind task, then the frozen-feature methods, then fine-tuning on 16 and on all training examples."""
    cells = [("kind", m, n, s) for n in (64, 256, 1024) for m in FINETUNE_METHODS for s in range(seeds)]
    cells += [(t, m, n, s) for t in task_names for m in FEATURE_METHODS for n in sizes(t) for s in range(seeds)]
    cells += [("kind", m, n, s) for n in (16, sizes("kind")[-1]) for m in FINETUNE_METHODS for s in range(seeds)]
    return cells


def load_results(folder=None) -> tuple[dict, list[dict], list[dict]]:
    """The shipped grid: (manifest, learning-curve rows, layer-probe rows), checksums verified."""
    found = folders.read_folder(folder if folder is not None else folders.shipped("results", "transfer"))
    return (found.manifest, json.loads(found.files["curves.json"]), json.loads(found.files["layers.json"]))


def summary(rows: list[dict], task_name: str) -> dict[str, dict[int, tuple[float, float]]]:
    """method -> n -> (mean, standard deviation over seeds) of the accuracy on ``task_name``."""
    cells: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        if r["task"] == task_name:
            cells.setdefault(r["method"], {}).setdefault(r["n"], []).append(r["accuracy"])
    return {m: {n: (float(torch.tensor(v).mean()), float(torch.tensor(v).std(unbiased=False)) if len(v) > 1 else 0.0)
                for n, v in sorted(by_n.items())} for m, by_n in cells.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the result folder to write at the end")
    parser.add_argument("--log", required=True, help="a JSON-lines file of finished cells; a rerun skips them")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", default=None, help="a folder for frozen features (reused by reruns)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    log = Path(args.log)
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    seen = {(r["task"], r.get("method"), r.get("n"), r.get("seed"), r.get("backbone"), r.get("layer")) for r in done}
    for name in ("kind", "shuffle"):
        for model, _ in backbones().values():
            tr.features(model, prepared(name)[1], cache_dir=args.cache)
    with log.open("a") as out:
        if not any("layer" in r for r in done):
            for row in layer_probe("shuffle") + layer_probe("kind"):
                out.write(json.dumps(row) + "\n")
                done.append(row)
            out.flush()
        for task_name, method, n, seed in plan(seeds=args.seeds):
            n = min(n, prepared(task_name)[3])
            if (task_name, method, n, seed, None, None) in seen:
                continue
            row = run_cell(task_name, method, n, seed)
            out.write(json.dumps(row) + "\n")
            out.flush()
            done.append(row)
            print(json.dumps(row), flush=True)
    layers = [r for r in done if "layer" in r]
    curves = [r for r in done if "method" in r]
    manifest = {"name": "transfer", "command": "python -m companion.transfer_curves " + " ".join(
        argv if argv is not None else sys.argv[1:]), "seconds_last_run": round(time.perf_counter() - start, 1),
        "finetune": FINETUNE, "max_tokens": MAX_TOKENS, "random_seed": RANDOM_SEED,
        "python_version": platform.python_version(), "torch_version": torch.__version__,
        "tasks": {name: {"train": prepared(name)[3], "test": len(prepared(name)[1]) - prepared(name)[3]}
                  for name in MAX_TOKENS}}
    folders.write_folder(args.out, manifest, files={"curves.json": json.dumps(curves, indent=0),
                                                    "layers.json": json.dumps(layers, indent=0)})


if __name__ == "__main__":
    main()
