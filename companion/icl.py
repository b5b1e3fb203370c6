"""In-context learning: a language model that learns a task from the examples in its prompt.

    from companion import icl
    prompt = icl.build_prompt([("stcejbo", "objects")], "drow")          # 'stcejbo = objects\\ndrow = '
    icl.word_task_accuracy(model, tokenizer, "reversed_words", 10, words=words)   # a fraction in [0, 1]
    icl.induction_probe(model, tokenizer.vocab_size)                     # about 1: no copying

Answers are judged by greedy decoding and exact match (`greedy_answer`; `exact_match` gets the same
verdicts from one forward pass), multiple choices by likelihood (`choice_log_likelihoods`), and a
batch of queries sharing its demonstrations by encoding them once (`score_continuations`). The tasks
and prompts live in `companion.icl_tasks`, induction heads in `companion.icl_heads`, regression in
context in `companion.icl_regression`; their entry points are importable from here.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from companion.checks import positive_int
from companion.gpt import GPT
from companion.icl_heads import (  # noqa: F401  (entry points of this package part)
    attention_patterns,
    copy_losses,
    copying_scores,
    in_context_learning_score,
    induction_probe,
    prefix_matching_scores,
    repeated_sequences,
    token_losses,
)
from companion.icl_tasks import (  # noqa: F401
    DESCRIPTIONS,
    SEPARATOR,
    TASKS,
    build_prompt,
    byte_tokenizer,
    check_task,
    corpus_words,
    demonstration,
    is_usable,
    longest_prompt,
    split_words,
    task_prompt,
    transform,
    usable_words,
)


@torch.no_grad()
def greedy_answer(model: GPT, tokenizer, prompt: str, *, max_new_tokens: int = 32) -> str:
    """The model's greedy continuation of ``prompt`` up to (not including) the end of the line."""
    positive_int(max_new_tokens, "max_new_tokens")
    device = next(model.parameters()).device
    ids = torch.tensor([tokenizer.encode(prompt)], device=device)
    logits, cache = model.decode_step(ids)
    out: list[int] = []
    for _ in range(max_new_tokens):
        token = int(logits[0, -1].argmax())
        if "\n" in tokenizer.decode([token]) or cache.length >= model.config.block_size:
            out.append(token)
            break
        out.append(token)
        logits, cache = model.decode_step(torch.tensor([[token]], device=device), cache)
    return tokenizer.decode(out).split("\n")[0]


def _padded(rows: Sequence[Sequence[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows right-padded with 0 into a LongTensor, and their lengths."""
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return ids.to(device), torch.tensor([len(r) for r in rows], device=device)


@torch.no_grad()
def exact_match(model: GPT, tokenizer, prompts: Sequence[str], answers: Sequence[str], *,
                batch_size: int = 32) -> list[bool]:
    """Whether greedy decoding of each prompt yields exactly its answer and then a newline.

    Greedy decoding writes the answer iff, fed the answer so far, the model's most likely next token is
    always the answer's next token and finally the newline: so one forward pass over prompt + answer
    gives the verdict (ties of the arg-max aside). For a BPE tokenizer the answer counts only in its own
    tokenization; with the byte tokenizer of the course's in-context models that is the only one.
    """
    if len(prompts) != len(answers):
        raise ValueError(f"prompts and answers must have the same length, got {len(prompts)} and {len(answers)}")
    positive_int(batch_size, "batch_size")
    device = next(model.parameters()).device
    hits: list[bool] = []
    for start in range(0, len(prompts), batch_size):
        prompt_ids = [tokenizer.encode(p) for p in prompts[start: start + batch_size]]
        answer_ids = [tokenizer.encode(a + "\n") for a in answers[start: start + batch_size]]
        rows = [p + a for p, a in zip(prompt_ids, answer_ids, strict=True)]
        too_long = [len(r) for r in rows if len(r) > model.config.block_size]
        if too_long:
            raise ValueError(f"prompt plus answer must fit block_size={model.config.block_size}, got {too_long[0]} tokens")
        ids, _ = _padded(rows, device)
        predicted = model(ids).argmax(dim=-1)
        for row, (p, a) in enumerate(zip(prompt_ids, answer_ids, strict=True)):
            guess = predicted[row, len(p) - 1: len(p) + len(a) - 1].tolist()
            hits.append(guess == a)
    return hits


@torch.no_grad()
def answer_token_accuracy(model: GPT, tokenizer, prompts: Sequence[str], answers: Sequence[str], *,
                          batch_size: int = 32) -> float:
    """The fraction of answer tokens (the final newline included) that are the model's most likely next token
    when it is fed the right answer so far: a softer measure than `exact_match`, which needs all of them."""
    if len(prompts) != len(answers) or not prompts:
        raise ValueError(f"prompts and answers must be non-empty and of the same length, got {len(prompts)} "
                         f"and {len(answers)}")
    device = next(model.parameters()).device
    right = total = 0
    for start in range(0, len(prompts), batch_size):
        prompt_ids = [tokenizer.encode(p) for p in prompts[start: start + batch_size]]
        answer_ids = [tokenizer.encode(a + "\n") for a in answers[start: start + batch_size]]
        ids, _ = _padded([p + a for p, a in zip(prompt_ids, answer_ids, strict=True)], device)
        predicted = model(ids).argmax(dim=-1)
        for row, (p, a) in enumerate(zip(prompt_ids, answer_ids, strict=True)):
            guess = predicted[row, len(p) - 1: len(p) + len(a) - 1].tolist()
            right += sum(g == t for g, t in zip(guess, a, strict=True))
            total += len(a)
    return right / total


def _query_words(usable: list[str], n: int, rng: random.Random) -> list[str]:
    """``n`` query words: without replacement when there are enough, else with replacement."""
    return rng.sample(usable, n) if n <= len(usable) else [rng.choice(usable) for _ in range(n)]


def task_prompts(task: str, k: int, *, words: Sequence[str], n: int = 100, seed: int = 0,
                 description: bool = False) -> tuple[list[str], list[str]]:
    """``n`` prompts of ``k`` demonstrations and their answers, the ones `word_task_accuracy` scores.

    Query words are the same for every ``k`` at a given seed; each query gets its own ``k`` demonstration
    words, drawn from the other usable words (with replacement only if there are fewer than ``k``).
    """
    check_task(task)
    positive_int(n, "n")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be an int >= 0, got {k!r}")
    usable = usable_words(words, task)
    if len(usable) < (2 if k else 1):
        raise ValueError(f"words must hold at least {2 if k else 1} usable words for {task} "
                         f"(5 to 14 letters a-z), got {len(usable)}")
    queries = _query_words(usable, n, random.Random(f"{seed}:{task}:queries"))
    rng = random.Random(f"{seed}:{task}:{k}:{description}")
    prompts, answers = [], []
    for word in queries:
        others = [w for w in usable if w != word]
        demo_words = rng.sample(others, k) if k <= len(others) else [rng.choice(others) for _ in range(k)]
        prompt, answer = task_prompt(task, word, demo_words, rng, description=description)
        prompts.append(prompt)
        answers.append(answer)
    return prompts, answers


def word_task_accuracy(model: GPT, tokenizer, task: str, k: int, *, words: Sequence[str], n: int = 100,
                       seed: int = 0, description: bool = False) -> float:
    """The fraction of ``n`` ``k``-shot prompts of ``task`` that the model answers exactly (greedy decoding).

    ``task`` is one of `TASKS`; ``words`` is any list of words: those outside 5 to 14 letters a-z, or
    whose transformation would equal the word, are skipped. A demonstration word never equals its query
    word; queries are drawn with replacement when ``n`` exceeds the usable words. By default the prompt
    has no task description (``description=False``): only the demonstrations say what the task is.
    """
    prompts, answers = task_prompts(task, k, words=words, n=n, seed=seed, description=description)
    hits = exact_match(model, tokenizer, prompts, answers)
    return sum(hits) / len(hits)


@dataclass
class ContinuationScores:
    """What the model thinks of each continuation: per-token log-probabilities and greedy agreement.

    ``logprobs[i, j]`` is log p(token j of continuation i | prefix, its tokens before j), 0 past its end;
    ``greedy[i, j]`` says whether that token was the model's most likely one (True past the end).
    """

    logprobs: torch.Tensor
    greedy: torch.Tensor
    lengths: torch.Tensor

    def total(self) -> torch.Tensor:
        """The log-likelihood of each continuation (sum over its tokens)."""
        return self.logprobs.sum(dim=1)


def _scores(first_logits: torch.Tensor, rest_logits: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor
            ) -> ContinuationScores:
    """Scores from the logits before each continuation token: ``first`` (n, V) and ``rest`` (n, L - 1, V)."""
    logits = torch.cat([first_logits[:, None], rest_logits], dim=1).float()
    logprobs = F.log_softmax(logits, dim=-1).gather(2, ids[:, :, None])[:, :, 0]
    inside = torch.arange(ids.shape[1], device=ids.device)[None] < lengths[:, None]
    greedy = (logits.argmax(dim=-1) == ids) | ~inside
    return ContinuationScores(logprobs * inside, greedy, lengths)


@torch.no_grad()
def score_continuations(model: GPT, prefix: Sequence[int], continuations: Sequence[Sequence[int]]
                        ) -> ContinuationScores:
    """Score every continuation after one shared prefix, encoding the prefix once (its KV cache).

    The prefix (say ten demonstrations) runs once with batch size 1; its cache is repeated for every
    continuation (a query and its answer), and only the continuations' tokens run through the model.
    """
    if not prefix or not continuations or min(len(c) for c in continuations) == 0:
        raise ValueError("prefix and every continuation must hold at least one token")
    device = next(model.parameters()).device
    logits, cache = model.decode_step(torch.tensor([list(prefix)], device=device))
    ids, lengths = _padded(continuations, device)
    cache = cache.select(torch.zeros(len(continuations), dtype=torch.long))
    rest = model.decode_step(ids[:, :-1], cache)[0] if ids.shape[1] > 1 else logits[:, :0].expand(len(ids), 0, -1)
    return _scores(logits[:, -1].expand(len(ids), -1), rest, ids, lengths)


@torch.no_grad()
def score_full_prompts(model: GPT, prefix: Sequence[int], continuations: Sequence[Sequence[int]], *,
                       batch_size: int = 32) -> ContinuationScores:
    """The same scores as `score_continuations`, running every prefix + continuation in full (slower)."""
    device = next(model.parameters()).device
    parts = []
    for start in range(0, len(continuations), batch_size):
        chunk = continuations[start: start + batch_size]
        ids, _ = _padded([list(prefix) + list(c) for c in chunk], device)
        logits = model(ids)[:, len(prefix) - 1:]
        cont, lengths = _padded(chunk, device)
        parts.append(_scores(logits[:, 0], logits[:, 1: cont.shape[1]], cont, lengths))
    width = max(p.logprobs.shape[1] for p in parts)
    pad = lambda t, v: F.pad(t, (0, width - t.shape[1]), value=v)  # noqa: E731
    return ContinuationScores(torch.cat([pad(p.logprobs, 0.0) for p in parts]),
                              torch.cat([pad(p.greedy, True) for p in parts]),
                              torch.cat([p.lengths for p in parts]))


def choice_log_likelihoods(model: GPT, tokenizer, prompt: str, choices: Sequence[str]) -> list[float]:
    """Multiple choice by likelihood: log p(choice | prompt) of each choice, the prompt encoded once."""
    if not choices:
        raise ValueError("choices must not be empty")
    scores = score_continuations(model, tokenizer.encode(prompt), [tokenizer.encode(c) for c in choices])
    return scores.total().tolist()


def shared_demo_accuracy(model: GPT, tokenizer, task: str, demos: Sequence[str], queries: Sequence[str], *,
                         description: bool = False, seed: int = 0) -> float:
    """Exact-match accuracy of many queries after the same demonstration words, the prefix encoded once."""
    rng = random.Random(f"{seed}:{task}:shared")
    prefix, _ = task_prompt(task, queries[0], demos, rng, description=description)
    prefix = prefix[: prefix.rindex("\n") + 1] if demos else (DESCRIPTIONS[task] + "\n" if description else "")
    if not prefix:
        raise ValueError("a shared prefix needs demos or a description")
    continuations = [tokenizer.encode(transform(q, task, rng) + SEPARATOR + q + "\n") for q in queries]
    scores = score_continuations(model, tokenizer.encode(prefix), continuations)
    # the question is given: only the answer (after the separator) and its newline must be greedy
    hits = [bool(scores.greedy[i, len(c) - len(tokenizer.encode(q + "\n")):].all())
            for i, (c, q) in enumerate(zip(continuations, queries, strict=True))]
    return sum(hits) / len(hits)
