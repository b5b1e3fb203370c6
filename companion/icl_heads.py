"""Induction heads (Olsson et al. 2022): the copying probe, the in-context-learning score, head scores.

* `induction_probe`: random token sequences each followed by itself; the ratio of the model's mean loss
  on the second copy to that on the first. A model that copies from its context is far below 1.
* `in_context_learning_score`: loss late in the context minus loss early (negative: the context helps).
* `attention_patterns`: every head's attention weights, recomputed from `GPT.hidden_states`.
* `prefix_matching_scores` and `copying_scores`: how much each head looks like an induction head.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from companion.checks import positive_int
from companion.gpt import GPT


def repeated_sequences(vocab_size: int, *, n: int = 16, length: int = 40, seed: int = 0) -> torch.Tensor:
    """``n`` rows of ``length`` random ids from the upper 7/8 of the vocabulary, each followed by itself.

    The lowest eighth (for a byte model: control characters, space and digits) is left out, as in the
    probe of the course's issue; returns a LongTensor (n, 2 * length) drawn on the CPU from ``seed``.
    """
    for value, name in ((vocab_size, "vocab_size"), (n, "n"), (length, "length")):
        positive_int(value, name)
    low = vocab_size // 8
    generator = torch.Generator().manual_seed(seed)
    half = torch.randint(low, vocab_size, (n, length), generator=generator)
    return torch.cat([half, half], dim=1)


@torch.no_grad()
def token_losses(model: Callable[[torch.Tensor], torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (nats) of each next token: (batch, time - 1); entry t is the loss of predicting ids[:, t + 1]."""
    logits = model(ids[:, :-1]).float()
    return F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")


def copy_losses(model: Callable[[torch.Tensor], torch.Tensor], ids: torch.Tensor) -> tuple[float, float]:
    """Mean loss on the first and on the second copy of rows made by `repeated_sequences`.

    Each copy's first token is left out: the first copy's cannot be predicted at all, and the second
    copy's first token cannot be known to start a repeat.
    """
    length = ids.shape[1] // 2
    losses = token_losses(model, ids)  # losses[:, t] predicts token t + 1
    first = losses[:, : length - 1].mean().item()  # tokens 1 .. length - 1
    second = losses[:, length:].mean().item()  # tokens length + 1 .. 2 length - 1
    return first, second


def induction_probe(model: Callable[[torch.Tensor], torch.Tensor], vocab_size: int, *, n: int = 16,
                    length: int = 40, seed: int = 0, device: str | torch.device | None = None) -> float:
    """Loss on the second copy of random sequences over that on the first: about 1 without copying.

    ``model(ids)`` must return (batch, time, vocab) logits. A model with induction heads is far below 0.5.
    """
    ids = repeated_sequences(vocab_size, n=n, length=length, seed=seed)
    if device is not None:
        ids = ids.to(device)
    first, second = copy_losses(model, ids)
    return second / first


def in_context_learning_score(model: Callable[[torch.Tensor], torch.Tensor], windows: torch.Tensor, *,
                              early: int = 20, late: int = 200) -> float:
    """Mean loss of the ``late``-th token of each window minus that of the ``early``-th (Olsson et al.).

    ``windows`` (batch, time) must hold more than ``late`` tokens; a negative score means that tokens far
    into the context are predicted better than tokens near its start: the model uses its context.
    """
    if not 1 <= early < late < windows.shape[1]:
        raise ValueError(f"early and late must satisfy 1 <= early < late < window length {windows.shape[1]}, "
                         f"got early={early}, late={late}")
    losses = token_losses(model, windows)
    return (losses[:, late - 1].mean() - losses[:, early - 1].mean()).item()


@torch.no_grad()
def attention_patterns(model: GPT, idx: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's attention weights: a list of n_layer tensors (batch, n_head, time, time).

    Row ``i`` of a head's pattern is the softmax over keys ``0 .. i`` of ``q_i . k_j / sqrt(head_dim)``, the
    weights that `CausalSelfAttention` applies (it never returns them, so they are recomputed here from
    the residual stream that `GPT.hidden_states` returns).
    """
    states = model.hidden_states(idx)
    patterns = []
    T = idx.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril()
    for block, x in zip(model.blocks, states, strict=False):
        q, k, _ = block.attn.heads(block.ln_1(x))
        scores = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
        patterns.append(scores.masked_fill(~causal, float("-inf")).softmax(dim=-1))
    return patterns


def prefix_matching_scores(model: GPT, ids: torch.Tensor) -> torch.Tensor:
    """(n_layer, n_head): each head's mean attention, on rows made by `repeated_sequences`, from a token of
    the second copy to the token that followed the same token in the first copy.

    Position ``i = length + j`` of the second copy holds the token of position ``j``; an induction head
    looks at position ``j + 1``, the token that came next last time. A score near 1 means the head does
    nothing else; a head attending uniformly scores about 1 / i.
    """
    length = ids.shape[1] // 2
    patterns = attention_patterns(model, ids)
    rows = torch.arange(length, 2 * length, device=ids.device)
    return torch.stack([p[:, :, rows, rows - length + 1].mean(dim=(0, 2)) for p in patterns])


@torch.no_grad()
def copying_scores(model: GPT) -> torch.Tensor:
    """(n_layer, n_head): each head's copying score from its OV circuit (Olsson et al.).

    For head h, ``M = W_E W_V^h W_O^h W_U`` maps a token the head attends to onto the logits it adds. The
    score is ``sum(eigenvalues) / sum(|eigenvalues|)`` of M, in [-1, 1]: near 1 when attending to a token
    raises that same token's logit (copying). Layer norms are left out. The nonzero eigenvalues of M are
    those of the small (head_dim, head_dim) matrix ``W_O^h W_U W_E W_V^h``, which is what is computed.
    """
    E = model.wte.weight  # (vocab, C)
    U = model.lm_head.weight.T  # (C, vocab)
    UE = U @ E  # (C, C)
    C = E.shape[1]
    scores = []
    for block in model.blocks:
        n_head = block.attn.n_head
        dh = C // n_head
        W_V = block.attn.qkv.weight[2 * C:].T  # (C, C): input -> values of every head
        W_O = block.attn.proj.weight.T  # (C, C): concatenated heads -> output
        row = []
        for h in range(n_head):
            cols = slice(h * dh, (h + 1) * dh)
            small = W_O[cols] @ UE @ W_V[:, cols]  # (dh, dh)
            eig = torch.linalg.eigvals(small.double())
            row.append((eig.sum().real / eig.abs().sum()).item())
        scores.append(row)
    return torch.tensor(scores)
