"""The same K labelled examples used two ways: read in the prompt, or learned by fine-tuning.

GPT-3's argument against fine-tuning on small task datasets (Brown et al. 2020, section 1) is that a model
fine-tuned on a narrow distribution can exploit its spurious features and generalise worse outside it. This
module measures that on the word tasks of `companion.icl_tasks`:

* `demonstrations`: K (question, answer) pairs of a task;
* `prompted_accuracy`: exact-match accuracy of queries after those pairs in the prompt (none: zero-shot);
* `fine_tune`: a copy of the model after a few full-batch AdamW steps on the same pairs, with the loss on the
  answers only (the question is given, as in the prompt);
* `length_split`: short and long words, the distribution shift: examples come from short words, and the
  queries from short words (in distribution) or long ones (out of distribution).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence

import torch

from companion.checks import positive_int
from companion.gpt import GPT, IGNORE, lm_loss
from companion.icl import exact_match
from companion.icl_tasks import SEPARATOR, build_prompt, transform, usable_words


def demonstrations(task: str, words: Sequence[str], rng: random.Random) -> list[tuple[str, str]]:
    """One (question, answer) pair of ``task`` per word, in order: the answer is the word itself."""
    return [(transform(word, task, rng), word) for word in words]


def prompted_accuracy(model: GPT, tokenizer, task: str, queries: Sequence[str],
                      demos: Sequence[tuple[str, str]] = (), *, seed: int = 0) -> float:
    """Exact-match accuracy of ``queries`` (words) asked after ``demos`` in the prompt (zero-shot without)."""
    if not queries:
        raise ValueError("queries must hold at least one word")
    rng = random.Random(f"{seed}:{task}:queries")
    prompts = [build_prompt(demos, transform(word, task, rng)) for word in queries]
    return sum(exact_match(model, tokenizer, prompts, list(queries))) / len(queries)


def answer_batch(tokenizer, demos: Sequence[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets (K, T) for the lines ``question = answer`` of ``demos``, padded with zeros.

    A target is the next byte where it belongs to the answer or its final newline, and `IGNORE` elsewhere:
    on the question, the separator and the padding.
    """
    if not demos:
        raise ValueError("demos must hold at least one (question, answer) pair")
    lines = [tokenizer.encode(f"{q}{SEPARATOR}{a}\n") for q, a in demos]
    width = max(len(line) for line in lines) - 1
    inputs = torch.zeros(len(lines), width, dtype=torch.long)
    targets = torch.full((len(lines), width), IGNORE, dtype=torch.long)
    for row, (line, (question, _)) in enumerate(zip(lines, demos, strict=True)):
        given = len(tokenizer.encode(question + SEPARATOR))  # the answer starts at this position
        inputs[row, : len(line) - 1] = torch.tensor(line[:-1])
        targets[row, given - 1: len(line) - 1] = torch.tensor(line[given:])
    return inputs, targets


def fine_tune(model: GPT, tokenizer, demos: Sequence[tuple[str, str]], *, steps: int = 20,
              lr: float = 1e-4) -> GPT:
    """A copy of ``model`` after ``steps`` full-batch AdamW steps on the answers of ``demos`` (model untouched)."""
    positive_int(steps, "steps")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    device = next(model.parameters()).device
    inputs, targets = (t.to(device) for t in answer_batch(tokenizer, demos))
    tuned = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(tuned.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(steps):
        loss = lm_loss(tuned(inputs), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return tuned.eval()


def length_split(words: Sequence[str], task: str, *, short: tuple[int, int] = (5, 8),
                 long: tuple[int, int] = (11, 14)) -> tuple[list[str], list[str]]:
    """The usable words of ``task`` with ``short[0]`` to ``short[1]`` letters, and with ``long[0]`` to ``long[1]``."""
    if not short[0] <= short[1] < long[0] <= long[1]:
        raise ValueError(f"short and long must be ordered, non-overlapping ranges, got {short} and {long}")
    usable = usable_words(words, task)
    return ([w for w in usable if short[0] <= len(w) <= short[1]],
            [w for w in usable if long[0] <= len(w) <= long[1]])
