"""Fine-tuning in and out of distribution on a language task whose labels do not depend on the module.

    python -m companion.ood_finetune --out companion/results/ood-finetune     # about 5 minutes on one thread

The task is the transfer chapters' "real or shuffled?" (`transfer_data.shuffle_task`): whether a docstring
opening's words are in their real order cannot depend on which module it comes from. Its training split is
divided by top-level package into two groups (a stable hash, 70 % / 30 %). The course GPT is fine-tuned on N
examples of the first group and tested on other examples of the same group (in distribution) and on examples
of the second group's packages, which fine-tuning never saw (out of distribution). Both groups were part of
pretraining, so the only shift is the one fine-tuning introduces.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import platform
import sys
import time
from collections.abc import Sequence

import torch

from companion import folders, pretrained
from companion import transfer as tr
from companion.checks import positive_int
from companion.transfer_data import Example, shuffle_task, subsample
from companion.transfer_finetune import Classifier, fine_tune, predict

FIRST_GROUP_SHARE = 0.7
N_TEST = 300


def in_first_group(module: str, share: float = FIRST_GROUP_SHARE) -> bool:
    """Whether ``module``'s top-level package falls in the first group (a stable hash of its name)."""
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), got {share}")
    top = module.split(".")[0]
    return int.from_bytes(hashlib.sha256(top.encode()).digest()[:4], "big") / 2**32 < share


def splits(examples: Sequence[Example], n: int, seed: int, n_test: int = N_TEST
           ) -> tuple[list[Example], list[Example], list[Example]]:
    """(train, in-distribution test, out-of-distribution test): each drawn class-balanced with ``seed``.

    Train and the in-distribution test are disjoint draws from the first group; the out-of-distribution
    test comes from the packages of the second group.
    """
    positive_int(n, "n")
    positive_int(n_test, "n_test")
    first = [e for e in examples if in_first_group(e.module)]
    second = [e for e in examples if not in_first_group(e.module)]
    train = subsample(first, n, seed, 2)
    chosen = {id(e) for e in train}
    inside = subsample([e for e in first if id(e) not in chosen], n_test, seed, 2)
    return train, inside, subsample(second, n_test, seed, 2)


def _accuracy(classifier: Classifier, tokenizer, examples: Sequence[Example]) -> float:
    pred = predict(classifier, tr.encode(tokenizer, [e.text for e in examples]))
    return tr.accuracy(pred, torch.tensor([e.label for e in examples]))


def run_cell(model, tokenizer, examples: Sequence[Example], n: int, seed: int, n_test: int = N_TEST) -> dict:
    """Fine-tune a copy of ``model`` on ``n`` examples; its accuracy in and out of distribution."""
    train, inside, outside = splits(examples, n, seed, n_test)
    classifier = Classifier(copy.deepcopy(model), 2)
    timing = fine_tune(classifier, tr.encode(tokenizer, [e.text for e in train]),
                       torch.tensor([e.label for e in train]), seed=seed)
    return {"n": n, "seed": seed, "in_distribution": round(_accuracy(classifier, tokenizer, inside), 4),
            "out_of_distribution": round(_accuracy(classifier, tokenizer, outside), 4),
            "seconds": round(timing["seconds"], 1)}


def load_results(folder=None) -> tuple[dict, list[dict]]:
    """The shipped manifest and rows (one per fine-tuning run)."""
    read = folders.read_folder(folder or folders.shipped("results", "ood-finetune"))
    return read.manifest, json.loads(read.files["rows.json"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m companion.ood_finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model, tokenizer = pretrained.load("tiny-gpt", device="cpu")
    task = shuffle_task()
    rows = []
    for n in args.sizes:
        for seed in range(args.seeds):
            rows.append(run_cell(model, tokenizer, task.train, n, seed))
            print(json.dumps(rows[-1]), flush=True)
    manifest = {"name": "ood-finetune", "command": "python -m companion.ood_finetune " + " ".join(
        argv if argv is not None else sys.argv[1:]), "seconds": round(time.perf_counter() - start, 1),
        "model": "tiny-gpt", "model_checksum": tr.model_checksum(model), "task": "shuffle",
        "first_group_share": FIRST_GROUP_SHARE, "n_test": N_TEST,
        "python_version": platform.python_version(), "torch_version": torch.__version__}
    folders.write_folder(args.out, manifest, files={"rows.json": json.dumps(rows, indent=0)})


if __name__ == "__main__":
    main()
