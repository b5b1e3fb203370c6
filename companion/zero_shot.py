"""Zero-shot task transfer: a task the model was never trained on, asked for by a cue from its own text.

    items = zero_shot.param_items()                      # held-out docstrings, 1 parameter among 4 words
    hits = zero_shot.hits(model, tokenizer, items, zero_shot.CUE)       # (n,) bool: right option most likely
    zero_shot.sign_test(wins, losses)                    # exact one-sided p-value of a paired comparison

GPT-2 (Radford et al. 2019) summarised articles by appending "TL;DR:", a cue that precedes summaries on the
web. The same idea at our scale: Python docstrings sometimes list their parameters as ``:param name:``, so
after a docstring and ``:param`` a language model that learned the pattern should name a parameter of the
documented function, a word it can only tell from the others by reading the docstring. Each item is a
docstring opening from a module held out of pretraining, with one parameter and three other words of the same
text as options; an option wins when its tokens are most likely after the prompt. The same prompt without the
cue (the docstring, then a blank line) is the comparison, and a paired sign test (exact McNemar) says
whether the cue's advantage is beyond chance.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from companion import data
from companion.checks import positive_int
from companion.gpt import GPT
from companion.icl import score_continuations
from companion.transfer_data import opening, stdlib_definitions

NO_CUE = "\n\n"  # the docstring, a blank line, then an option
CUE = "\n\n:param "  # the same, with the Sphinx field that introduces a parameter
_LOWER_WORD = re.compile(r"\b[a-z_][a-z0-9_]*\b")


@dataclass(frozen=True)
class Item:
    """One question: ``text`` (a docstring opening), its ``options`` and the index of the right one."""

    text: str
    options: tuple[str, ...]
    answer: int
    module: str


def param_items(*, n_options: int = 4, max_words: int = 40, min_length: int = 3, seed: int = 0) -> list[Item]:
    """Questions from function docstrings of modules held out of pretraining (`data.is_validation_module`).

    The right option is the first parameter (from the signature, read with ``ast``) that the opening of
    ``max_words`` words mentions; the others are lower-case words of the same opening, at least
    ``min_length`` characters long, that name no parameter. Options appear in an order drawn with ``seed``.
    """
    if positive_int(n_options, "n_options") < 2:
        raise ValueError(f"n_options must be >= 2, got {n_options}")
    positive_int(max_words, "max_words")
    rng = random.Random(seed)
    items = []
    for d in stdlib_definitions():
        if d.kind == "class" or not d.params or not data.is_validation_module(d.module):
            continue
        text = opening(d.doc, max_words)
        words = list(dict.fromkeys(_LOWER_WORD.findall(text)))
        named = [w for w in words if w in d.params]
        others = [w for w in words if w not in d.params and len(w) >= min_length]
        if not named or len(others) < n_options - 1 or text in {i.text for i in items[-50:]}:
            continue
        options = [named[0], *rng.sample(others, n_options - 1)]
        rng.shuffle(options)
        items.append(Item(text, tuple(options), options.index(named[0]), d.module))
    return items


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def option_scores(model: GPT, tokenizer, prompts: Sequence[str], options: Sequence[Sequence[str]]) -> torch.Tensor:
    """(n_prompts, n_options) log p(option | prompt), summed over the option's tokens.

    ``prompt + option`` is encoded as one string, the way the text was tokenized in pretraining. The tokens
    every option shares with the prompt's own encoding run once (`icl.score_continuations`, its KV cache);
    a token merged across the boundary is then scored for every option alike, which leaves the ranking as it is.
    """
    if len(prompts) != len(options) or not prompts:
        raise ValueError("prompts and options must be non-empty and of the same length")
    if len({len(o) for o in options}) != 1 or not options[0]:
        raise ValueError("every prompt must have the same number of options, at least one")
    rows = []
    for prompt, opts in zip(prompts, options, strict=True):
        full = [tokenizer.encode(prompt + option) for option in opts]
        if max(len(ids) for ids in full) > model.config.block_size:
            raise ValueError(f"a prompt with its option is over the model's block_size {model.config.block_size}")
        shared = max(1, min(_common_prefix(tokenizer.encode(prompt), ids) for ids in full))
        rows.append(score_continuations(model, full[0][:shared], [ids[shared:] for ids in full]).total())
    return torch.stack(rows).cpu()


def hits(model: GPT, tokenizer, items: Sequence[Item], cue: str, *, with_text: bool = True) -> torch.Tensor:
    """(n,) bool: is the right option the most likely after ``text + cue`` (after ``cue`` alone if not
    ``with_text``, the control that shows whether the model reads the docstring at all)?"""
    prompts = [(item.text if with_text else "") + cue for item in items]
    scores = option_scores(model, tokenizer, prompts, [item.options for item in items])
    return scores.argmax(dim=1) == torch.tensor([item.answer for item in items])


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed exactly in log space (no underflow for large n)."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if n < 0 or not 0 <= k:
        raise ValueError(f"n and k must be >= 0, got n={n}, k={k}")
    if k > n:
        return 0.0
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p)
            + (n - i) * math.log1p(-p) for i in range(k, n + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def sign_test(wins: int, losses: int) -> float:
    """One-sided exact sign test (McNemar's test for paired hits): P(at least ``wins`` of the ``wins + losses``
    items where the two conditions disagree go the cue's way, if either way were equally likely)."""
    if wins < 0 or losses < 0:
        raise ValueError(f"wins and losses must be >= 0, got {wins} and {losses}")
    return binomial_tail(wins, wins + losses, 0.5) if wins + losses else 1.0
