"""Decoding: greedy search, beam search and sampling, for any language model.

A *model* here is anything callable from token ids ``(batch, time)`` to logits
``(batch, time, vocab)``, one row of logits per position. The decoders call it on the whole
prefix at every step. A model that also has a key/value cache offers

    model.decode_step(idx, cache=None) -> (logits, cache)

where ``idx`` ``(batch, t_new)`` holds only the tokens the cache has not seen yet, ``logits`` is
``(batch, t_new, vocab)`` for those positions, and ``cache.select(rows)`` returns a cache whose
batch rows are ``rows`` (a LongTensor; rows may repeat) of the old one. The decoders use it
whenever it is there, so each step costs one position instead of the whole prefix. Put the
model in eval mode first (``model.eval()``), or dropout makes every step random.

Every decoder returns ``(sequences, scores)``. ``sequences`` is a LongTensor
``(batch * num_return_sequences, prompt + new)``: the prompt followed by the generated tokens,
batch-major, best first, padded after ``eos_token_id`` with ``eos_token_id``. Generation stops
early once every sequence has ended, so ``new`` can be less than ``max_new_tokens``. Greedy
and beam search (num_beams >= 2) give the same sequences and scores as ``transformers``'
``generate``; `companion.hf_adapter.HFCausalLM` runs a ``transformers`` model through these same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from companion.checks import positive_int
from companion.sampling import (
    check_penalty_args,
    check_sampling_args,
    no_repeat_ngram_filter,
    penalize_repetition,
    temperature_scale,
    top_k_filter,
    top_p_filter,
)

__all__ = [
    "greedy_search", "beam_search", "sample", "generated_tokens", "token_log_probs",
    "temperature_scale", "top_k_filter", "top_p_filter", "penalize_repetition", "no_repeat_ngram_filter",
]

Model = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def _next_token_logits(model: Model, sequences: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
    """Float32 logits ``(rows, vocab)`` for the token after each row of ``sequences``, and the new cache.

    With a cache only the tokens it has not seen are fed: the whole prompt first, then the last token.
    """
    if hasattr(model, "decode_step"):
        logits, cache = model.decode_step(sequences if cache is None else sequences[:, -1:], cache)
    else:
        logits = model(sequences)
    return logits[:, -1, :].float(), cache


def _check_common(input_ids: torch.Tensor, max_new_tokens: int) -> None:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.dtype != torch.long:
        raise TypeError("input_ids must be a LongTensor of shape (batch, time)")
    if input_ids.size(0) < 1 or input_ids.size(1) < 1:
        raise ValueError(f"input_ids must have at least one row and one token, got shape {tuple(input_ids.shape)}")
    positive_int(max_new_tokens, "max_new_tokens")


def _penalties(repetition_penalty: float, no_repeat_ngram_size: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``process(scores, sequences)``: the repetition penalty, then the n-gram ban, as ``generate`` orders them."""
    check_penalty_args(repetition_penalty, no_repeat_ngram_size)

    def process(scores: torch.Tensor, sequences: torch.Tensor) -> torch.Tensor:
        if repetition_penalty != 1.0:
            scores = penalize_repetition(scores, sequences, repetition_penalty)
        if no_repeat_ngram_size > 0:
            scores = no_repeat_ngram_filter(scores, sequences, no_repeat_ngram_size)
        return scores

    return process


def _one_token_per_step(
    model: Model, input_ids: torch.Tensor, max_new_tokens: int, eos_token_id: int | None,
    choose: Callable[[torch.Tensor], torch.Tensor],
    process: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = lambda scores, sequences: scores,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loop shared by greedy search and sampling: ``choose`` maps logits to the next token of each row.

    ``process(logits, sequences)`` (the repetition penalties) changes the logits ``choose`` sees;
    the scores stay the model's own log-probabilities.
    """
    sequences, cache = input_ids, None
    ended = torch.zeros(input_ids.size(0), dtype=torch.bool, device=input_ids.device)
    scores = torch.zeros(input_ids.size(0), device=input_ids.device)
    for _ in range(max_new_tokens):
        logits, cache = _next_token_logits(model, sequences, cache)
        tokens = choose(process(logits, sequences))
        chosen = F.log_softmax(logits, dim=-1).gather(-1, tokens[:, None]).squeeze(-1)
        scores += chosen.masked_fill(ended, 0.0)
        if eos_token_id is not None:
            tokens = tokens.masked_fill(ended, eos_token_id)  # rows that ended are padded with eos
            ended |= tokens == eos_token_id
        sequences = torch.cat([sequences, tokens[:, None]], dim=1)
        if bool(ended.all()):
            break
    return sequences, scores


def greedy_search(
    model: Model, input_ids: torch.Tensor, max_new_tokens: int, *, eos_token_id: int | None = None,
    repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick the most likely next token at every step.

    ``repetition_penalty`` (1.0: off) and ``no_repeat_ngram_size`` (0: off) change the logits
    first, with `penalize_repetition` and `no_repeat_ngram_filter` over the prompt and the tokens
    so far. ``scores`` ``(batch,)`` is the sum of the model's log-probabilities (before any
    penalty) of the generated tokens, up to and including the first eos.
    """
    _check_common(input_ids, max_new_tokens)
    process = _penalties(repetition_penalty, no_repeat_ngram_size)
    return _one_token_per_step(model, input_ids, max_new_tokens, eos_token_id, lambda logits: logits.argmax(-1),
                               process)


def sample(
    model: Model, input_ids: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
    top_k: int | None = None, top_p: float | None = None, eos_token_id: int | None = None,
    generator: torch.Generator | None = None, repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw each next token from the model's distribution after temperature, then top-k, then top-p.

    The penalties on repetition, if any, come before the temperature, as in `greedy_search`.
    Draws are made on the CPU with ``generator`` (a CPU ``torch.Generator``; None uses torch's
    global one) and moved to the model's device, so a seed gives the same text on every device.
    ``scores`` ``(batch,)`` is the sum of the *model's* log-probabilities (before temperature
    and filtering) of the generated tokens, up to and including the first eos.
    """
    _check_common(input_ids, max_new_tokens)
    check_sampling_args(temperature, top_k, top_p)
    process = _penalties(repetition_penalty, no_repeat_ngram_size)

    def draw(logits: torch.Tensor) -> torch.Tensor:
        if temperature != 1.0:
            logits = temperature_scale(logits, temperature)
        if top_k is not None:
            logits = top_k_filter(logits, top_k)
        if top_p is not None and top_p < 1.0:
            logits = top_p_filter(logits, top_p)
        probs = logits.softmax(dim=-1).cpu()
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1).to(input_ids.device)

    return _one_token_per_step(model, input_ids, max_new_tokens, eos_token_id, draw, process)


def beam_search(
    model: Model, input_ids: torch.Tensor, num_beams: int, max_new_tokens: int, *,
    eos_token_id: int | None = None, length_penalty: float = 1.0, early_stopping: bool | str = False,
    num_return_sequences: int = 1, repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the ``num_beams`` most probable prefixes at every step; return the best finished ones.

    Each step extends every running beam by every token and keeps the ``2 * num_beams`` best
    candidates by log-probability. A candidate among the first ``num_beams`` that emits
    ``eos_token_id`` (or reaches ``max_new_tokens``) finishes with the score
    ``log_prob / generated_length ** length_penalty``; each prompt keeps its ``num_beams`` best
    finished hypotheses, and the best ``num_beams`` candidates that did not finish run on.
    ``scores`` ``(batch * num_return_sequences,)`` are those finished scores, best first
    (``sequences_scores`` in ``transformers``).

    A prompt is done once all ``num_beams`` slots are finished and, unless ``early_stopping`` is
    True, the best running beam's log-probability divided by ``L ** length_penalty`` cannot beat
    the worst finished score. ``False`` takes L = the current length (a guess when
    ``length_penalty > 0``, since longer beams then gain); ``"never"`` takes L = ``max_new_tokens``
    when ``length_penalty > 0``, an exact bound, which makes it canonical beam search. Decoding
    stops when every prompt is done. With ``num_beams=1`` this is still beam search (``generate``
    switches to greedy search there); with ``early_stopping=True`` the two coincide.

    ``repetition_penalty`` and ``no_repeat_ngram_size`` change each beam's next-token
    log-probabilities before they are added to its score (as in ``generate``), so the scores
    include the penalties.
    """
    _check_common(input_ids, max_new_tokens)
    positive_int(num_beams, "num_beams")
    if not isinstance(num_return_sequences, int) or not 1 <= num_return_sequences <= num_beams:
        raise ValueError(f"num_return_sequences must be in [1, num_beams={num_beams}], got {num_return_sequences!r}")
    if not (early_stopping is True or early_stopping is False or early_stopping == "never"):
        raise ValueError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")
    process = _penalties(repetition_penalty, no_repeat_ngram_size)

    batch, prompt_len = input_ids.shape
    device, max_len = input_ids.device, input_ids.size(1) + max_new_tokens
    fill = eos_token_id if eos_token_id is not None else 0  # without eos every hypothesis has full length
    n_candidates = 2 * num_beams  # so that num_beams stay running even if num_beams candidates end in eos
    row_offset = torch.arange(batch, device=device)[:, None] * num_beams

    running = input_ids.repeat_interleave(num_beams, dim=0)  # (batch * num_beams, length)
    # All beams start as the same prompt: only the first may expand, or the candidates would repeat.
    running_scores = torch.full((batch, num_beams), float("-inf"), device=device)
    running_scores[:, 0] = 0.0
    finished = torch.full((batch, num_beams, max_len), fill, dtype=torch.long, device=device)
    finished_scores = torch.full((batch, num_beams), float("-inf"), device=device)  # -inf: empty slot
    finished_lengths = torch.zeros((batch, num_beams), dtype=torch.long, device=device)
    may_improve = torch.ones(batch, dtype=torch.bool, device=device)
    cache = None

    for step in range(max_new_tokens):
        new_len = step + 1  # generated tokens in the candidates of this step
        logits, cache = _next_token_logits(model, running, cache)
        vocab = logits.size(-1)
        log_probs = process(F.log_softmax(logits, dim=-1), running).view(batch, num_beams, vocab)
        log_probs = log_probs + running_scores[..., None]
        cand_scores, flat = torch.topk(log_probs.view(batch, -1), n_candidates)
        cand_rows = flat // vocab + row_offset  # the running row each candidate extends
        cand_tokens = flat % vocab
        cand_seqs = torch.cat([running[cand_rows.view(-1)], cand_tokens.view(-1, 1)], dim=1)
        cand_seqs = cand_seqs.view(batch, n_candidates, -1)
        ends = torch.full_like(cand_tokens, new_len == max_new_tokens, dtype=torch.bool)
        if eos_token_id is not None:
            ends |= cand_tokens == eos_token_id

        # Finish the candidates that end, if they rank in the top num_beams and the prompt is still open.
        closes = ends & may_improve[:, None]
        closes[:, num_beams:] = False
        if early_stopping is True:
            closes &= ~torch.isfinite(finished_scores).all(-1, keepdim=True)
        if bool(closes.any()):  # merge them into the finished ones, keeping the best num_beams
            new_scores = (cand_scores / new_len**length_penalty).masked_fill(~closes, float("-inf"))
            keep = torch.topk(torch.cat([finished_scores, new_scores], dim=1), num_beams).indices
            finished_scores = torch.cat([finished_scores, new_scores], dim=1).gather(1, keep)
            padded = F.pad(cand_seqs, (0, max_len - cand_seqs.size(-1)), value=fill)
            finished = torch.cat([finished, padded], dim=1).gather(1, keep[..., None].expand(-1, -1, max_len))
            all_lengths = torch.cat([finished_lengths, torch.full_like(cand_tokens, new_len)], dim=1)
            finished_lengths = all_lengths.gather(1, keep)

        # The best num_beams candidates that did not end keep running.
        running_scores, pick = torch.topk(cand_scores.masked_fill(ends, float("-inf")), num_beams)
        source_rows = cand_rows.gather(1, pick).view(-1)
        running = cand_seqs.gather(1, pick[..., None].expand(-1, -1, cand_seqs.size(-1))).flatten(0, 1)

        # A prompt is done when all its slots are finished and the best running beam cannot beat the worst.
        full = torch.isfinite(finished_scores).all(-1)
        best_len = max_new_tokens if early_stopping == "never" and length_penalty > 0 else new_len
        best_possible = running_scores[:, 0] / best_len**length_penalty
        may_improve &= ~full | (best_possible > finished_scores.min(-1).values)
        if step + 1 == max_new_tokens or not bool(may_improve.any()) or (early_stopping is True and bool(full.all())):
            break
        if cache is not None:
            cache = cache.select(source_rows)

    length = prompt_len + int(finished_lengths[:, :num_return_sequences].max())
    sequences = finished[:, :num_return_sequences, :length].flatten(0, 1)
    return sequences, finished_scores[:, :num_return_sequences].flatten()


def generated_tokens(sequences: torch.Tensor, prompt_length: int, eos_token_id: int | None = None) -> list[list[int]]:
    """The new tokens of each row, without the prompt and without the first eos and the padding after it."""
    rows = []
    for row in sequences[:, prompt_length:].tolist():
        if eos_token_id is not None and eos_token_id in row:
            row = row[: row.index(eos_token_id)]
        rows.append(row)
    return rows


@torch.no_grad()
def token_log_probs(model: Model, sequences: torch.Tensor) -> torch.Tensor:
    """Log-probability ``(batch, time - 1)`` the model gives each token of ``sequences`` after its prefix."""
    log_probs = F.log_softmax(model(sequences).float(), dim=-1)
    return log_probs[:, :-1].gather(-1, sequences[:, 1:, None]).squeeze(-1)
