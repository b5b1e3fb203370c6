"""Train ``icl-gpt``: a byte-level GPT meta-trained to learn word tasks from its prompt (and ``induction-gpt``).

    python -m companion.icl_train --out companion/models/icl-gpt            # the shipped model
    python -m companion.icl_train --out companion/models/icl-gpt --resume   # go on after an interruption
    python -m companion.icl_train --model induction-gpt --out companion/models/induction-gpt

Checkpoints go to ``--checkpoints`` (default ``runs/<name>``); the final model folder to ``--out``.

The outer loop is ordinary SGD over many tasks; the inner loop happens in the context (GPT-3's Figure
1.1). Each row of a batch is one of three kinds, drawn from ``(seed, step)`` only so resuming is exact:

* an episode: one word task (never the held-out one), an optional description, then demonstrations
  ``question = answer`` of training words until the row is full, so one row teaches every K at once;
* corpus text (the course's default corpus, as bytes), for spelling and words;
* random byte sequences each followed by itself, which reward copying from the context.

Evaluation words (`companion.icl_tasks.split_words`) never appear in an episode. ``induction-gpt`` is a
smaller model with a 128-byte context trained on text and repeated sequences only. Both use rotary positions and
a short-context warm-up (`Recipe`); see the chapter "In-context learning" for what they learn.
"""

from __future__ import annotations

import argparse
import platform
import random
import shlex
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from companion import data
from companion.gpt import GPTConfig
from companion.icl import (
    DESCRIPTIONS,
    TASKS,
    byte_tokenizer,
    corpus_words,
    demonstration,
    induction_probe,
    prefix_matching_scores,
    repeated_sequences,
    split_words,
    transform,
    usable_words,
    word_task_accuracy,
)
from companion.train import TrainConfig, train, write_model

HELD_OUT = "anagrams2"


@dataclass(frozen=True)
class Recipe:
    """How one model is trained: its config, the share of each row kind, and the short-context warm-up.

    During the first ``short_steps`` steps the batches hold the same number of tokens in windows of
    ``short_window`` bytes; repeated sequences are ``shortest_repeat`` to 64 bytes long.
    """
    config: TrainConfig
    mix: dict[str, float]
    short_window: int = 0
    short_steps: int = 0
    shortest_repeat: int = 8


# Rotary positions and a short-context warm-up: the first steps see short windows, where a head that looks one
# byte back is quick to learn, and rotary attention depends on distance only, so the heads learned there work at
# every position of the full context. Learned positions would have to learn "one back" anew at every position.
# Measured with a 2-layer model on repeated random bytes and a 32-byte warm-up of 1,000 steps: the probe stood at
# 0.89 after 1,750 steps with learned positions, and at 0.11 after 1,250 with rotary ones. The earlier icl-gpt,
# with learned positions and no warm-up, answered none of the word tasks (0 % in every cell).
MIX = {"episode": 0.6, "text": 0.15, "repeat": 0.25}
CONFIG = TrainConfig(model=GPTConfig(vocab_size=256, block_size=512, n_layer=3, n_head=4, n_embd=64,
                                     position="rotary"),
                     batch_size=8, steps=6000, lr=3e-3, min_lr=3e-4, warmup_steps=100, weight_decay=0.1,
                     eval_every=50, eval_tokens=8192, checkpoint_every=100, vocab_size=256)
# induction-gpt: a smaller, shorter-context model on text and repeated sequences only, for induction heads.
INDUCTION = TrainConfig(model=GPTConfig(vocab_size=256, block_size=128, n_layer=2, n_head=4, n_embd=64,
                                        position="rotary"),
                        batch_size=48, steps=2400, lr=1e-3, min_lr=3e-4, warmup_steps=100, weight_decay=0.1,
                        eval_every=50, eval_tokens=8192, checkpoint_every=250, vocab_size=256)
MODELS = {
    "icl-gpt": Recipe(CONFIG, MIX, short_window=64, short_steps=600),
    "induction-gpt": Recipe(INDUCTION, {"text": 0.2, "repeat": 0.8}, short_window=32, short_steps=800,
                            shortest_repeat=4),
}


def episode(task: str, words: list[str], length: int, rng: random.Random) -> bytes:
    """One task's demonstrations of random training words until ``length`` bytes, maybe after a description."""
    text = DESCRIPTIONS[task] + "\n" if rng.random() < 0.5 else ""
    while len(text) < length:
        word = rng.choice(words)
        text += demonstration(transform(word, task, rng), word)
    return text.encode()[:length]


def repeats(length: int, vocab_size: int, rng: random.Random, shortest: int = 8) -> bytes:
    """Random byte sequences (upper 7/8 of the vocabulary) each followed by itself, until ``length`` bytes.

    Each sequence has ``shortest`` to 64 bytes, and at most half the row so that short rows hold a whole repeat.
    """
    out = bytearray()
    while len(out) < length:
        size = rng.randint(shortest, max(shortest, min(64, length // 2)))
        half = bytes(rng.randrange(vocab_size // 8, vocab_size) for _ in range(size))
        out += half + half
    return bytes(out[:length])


class Batches:
    """``batches(step)`` for `companion.train.train`: a mixture of episodes, text and repeats (see `Recipe`)."""

    def __init__(self, recipe: Recipe, text: np.ndarray, words: dict[str, list[str]]):
        self.recipe, self.config, self.text, self.words = recipe, recipe.config, text, words
        self.tasks = [t for t in TASKS if t != HELD_OUT]

    def row(self, rng: random.Random, length: int) -> bytes:
        mix = self.recipe.mix
        kind = rng.choices(list(mix), weights=list(mix.values()))[0]
        if kind == "episode":
            task = rng.choice(self.tasks)
            return episode(task, self.words[task], length, rng)
        if kind == "text":
            start = rng.randrange(len(self.text) - length)
            return self.text[start: start + length].tobytes()
        return repeats(length, self.config.model.vocab_size, rng, self.recipe.shortest_repeat)

    def window(self, step: int) -> int:
        """The window length of ``step``: the short one during the warm-up, else the block size."""
        return self.recipe.short_window if step < self.recipe.short_steps else self.config.model.block_size

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = random.Random(self.config.seed * 1_000_003 + step)
        T = self.window(step)
        n = self.config.batch_size * self.config.model.block_size // T
        rows = torch.tensor([list(self.row(rng, T + 1)) for _ in range(n)], dtype=torch.long)
        return rows[:, :-1], rows[:, 1:]


def as_bytes(texts: list[str]) -> np.ndarray:
    """Texts joined by blank lines as an array of byte values (uint8)."""
    return np.frombuffer("\n\n".join(texts).encode("utf-8"), dtype=np.uint8)


def word_split() -> tuple[list[str], list[str]]:
    """(training words, evaluation words) of the default corpus's training split."""
    return split_words(corpus_words(data.pretraining_texts("train")))


SHORT_PROBE = 12  # a probe of 12 + 12 bytes fits the 32-byte warm-up windows as well as the full context


def make_metrics(eval_words: list[str], vocab_size: int, *, word_tasks: bool = True):
    """``metrics(model)`` logged with each loss: the probe and the best prefix-matching head, on 40 + 40 and on
    12 + 12 random bytes, and word-task accuracy."""
    probe_ids = repeated_sequences(vocab_size)
    short_ids = repeated_sequences(vocab_size, length=SHORT_PROBE)

    def metrics(model) -> dict[str, float]:
        device = next(model.parameters()).device
        record = {"induction_probe": induction_probe(model, vocab_size, device=device),
                  "prefix_matching": prefix_matching_scores(model, probe_ids.to(device)).max().item(),
                  "induction_probe_short": induction_probe(model, vocab_size, length=SHORT_PROBE, device=device),
                  "prefix_matching_short": prefix_matching_scores(model, short_ids.to(device)).max().item()}
        for k in (0, 1, 10) if word_tasks else ():
            accs = [word_task_accuracy(model, tokenizer, task, k, words=eval_words, n=10, seed=1) for task in TASKS]
            record[f"accuracy_{k}shot"] = sum(accs) / len(accs)
        return record

    tokenizer = byte_tokenizer()
    return metrics


EVAL_SHOTS = (0, 1, 2, 4, 10)


def _reproducing(argv: list[str]) -> list[str]:
    """The arguments that decide the model: without --resume (resuming is exact, the batches depend on the
    step only) and without the checkpoint folder."""
    out, skip = [], False
    for arg in argv:
        if skip or arg == "--resume":
            skip = False
            continue
        if arg == "--checkpoints":
            skip = True
            continue
        if not arg.startswith("--checkpoints="):
            out.append(arg)
    return out


def evaluate(model, eval_words: list[str], *, n: int = 100) -> dict:
    """Exact-match accuracy on the evaluation words: {"none" or "description": {task: {k: accuracy}}}."""
    tokenizer = byte_tokenizer()
    return {setting: {task: {str(k): word_task_accuracy(model, tokenizer, task, k, words=eval_words, n=n,
                                                        description=setting == "description")
                             for k in EVAL_SHOTS} for task in TASKS}
            for setting in ("none", "description")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m companion.icl_train", description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="icl-gpt", help="which model to train")
    parser.add_argument("--out", required=True, help="folder for the final model")
    parser.add_argument("--steps", type=int, help="optimizer steps (default: the model's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.json if present")
    parser.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--name", help="the model's name in its manifest (default: --model)")
    parser.add_argument("--checkpoints", help="folder for checkpoints (default: runs/NAME)")
    parser.add_argument("--no-progress", action="store_true")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = MODELS[args.model]
    name = args.name or args.model
    config = replace(recipe.config, seed=args.seed, steps=args.steps or recipe.config.steps)
    recipe = replace(recipe, config=config)
    episodes = "episode" in recipe.mix

    train_texts, valid_texts = data.pretraining_texts("train"), data.pretraining_texts("valid")
    train_words, eval_words = word_split()
    words = {task: usable_words(train_words, task) for task in TASKS}
    text, valid = as_bytes(train_texts), as_bytes(valid_texts)
    started = time.perf_counter()
    work = Path(args.checkpoints or f"runs/{name}")
    model, history = train(config, text, valid, work, batches=Batches(recipe, text, words),
                           metrics=make_metrics(eval_words, config.model.vocab_size, word_tasks=episodes),
                           device=args.device,
                           resume=args.resume, show_progress=not args.no_progress)
    minutes = (time.perf_counter() - started) / 60
    model.eval()
    evaluation = evaluate(model, eval_words) if episodes else None
    tokenizer = byte_tokenizer()
    out = Path(args.out)
    (work / "tokenizer.json").write_text(tokenizer.to_json(), encoding="utf-8")
    facts = {"corpus": "companion.data.pretraining_texts (bytes)",
             "corpus_checksum": {"train": data.corpus_checksum(train_texts),
                                 "valid": data.corpus_checksum(valid_texts)},
             "python_version": platform.python_version(), "tokenizer": "bytes (BPETokenizer with no merges)",
             "mixture": recipe.mix, "short_context": {"window": recipe.short_window, "steps": recipe.short_steps},
             "held_out_task": HELD_OUT if episodes else None,
             "training_tasks": [t for t in TASKS if t != HELD_OUT] if episodes else [],
             "words": {"train": len(train_words), "eval": len(eval_words)},
             "train_minutes_this_session": round(minutes, 1), "threads": args.threads,
             "device": str(next(model.parameters()).device),
             "command": "python -m companion.icl_train " + shlex.join(_reproducing(argv)),
             "word_tasks": evaluation, "word_tasks_n": 100,
             "induction_probe": induction_probe(model, config.model.vocab_size)}
    write_model(out, model.eval(), work / "tokenizer.json", config, history, facts, argv, name=name)
    print(f"wrote {out} ({minutes:.1f} min); config {asdict(config.model)}")


if __name__ == "__main__":
    main()
