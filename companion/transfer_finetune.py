"""Fine-tuning: every weight of the GPT trained on the downstream task, with a new head on top.

    classifier = Classifier(copy.deepcopy(model), n_classes=3)        # or Classifier(GPT(config, seed=1), 3)
    fine_tune(classifier, batch, labels, lr=3e-4, decay=2.6)          # ULMFiT's discriminative learning rates
    accuracy(predict(classifier, test_batch), test_labels)

The head reads the final layer norm's output, mean-pooled over real tokens (sequence tasks) or at every token
(token tasks, labels IGNORE where unscored). Two remedies for forgetting what pretraining taught (ULMFiT,
Howard and Ruder 2018): discriminative learning rates (``decay``: each layer down trains ``decay`` times
slower than the one above) and gradual unfreezing (``unfreeze_every``: the head first, then one more layer
from the top every so many steps). The same architecture from random initialisation is the baseline that
shows what pretraining is worth.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from companion.checks import positive_int
from companion.gpt import GPT
from companion.transfer import IGNORE, Batch, pool


class Classifier(nn.Module):
    """A GPT backbone with a linear head on its final (layer-normed) states."""

    def __init__(self, backbone: GPT, n_classes: int, *, token_level: bool = False, dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.token_level = token_level
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.config.n_embd, positive_int(n_classes, "n_classes"))
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states = self.backbone.ln_f(self.backbone.hidden_states(ids)[-1])
        if self.token_level:
            return self.head(self.drop(states))  # (B, T, K)
        return self.head(self.drop(pool(states, mask)))  # (B, K)


def layer_groups(classifier: Classifier) -> list[list[nn.Parameter]]:
    """Parameters from the top down: the head, the last block with the final norm, ..., the embeddings."""
    gpt = classifier.backbone
    groups = [list(classifier.head.parameters())]
    blocks = list(gpt.blocks)
    groups.append(list(blocks[-1].parameters()) + list(gpt.ln_f.parameters()))
    groups += [list(block.parameters()) for block in reversed(blocks[:-1])]
    groups.append(list(gpt.wte.parameters()) + (list(gpt.wpe.parameters()) if gpt.wpe is not None else []))
    return groups


def trainable_parameters(module: nn.Module) -> int:
    """Number of parameters with ``requires_grad`` (tied weights counted once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def fine_tune(classifier: Classifier, batch: Batch, labels: torch.Tensor | None = None, *, epochs: int = 4,
              min_steps: int = 40, batch_size: int = 16, lr: float = 3e-4, head_lr: float = 1e-3,
              decay: float = 1.0, unfreeze_every: int | None = None, weight_decay: float = 0.01,
              seed: int = 0) -> dict:
    """Train the whole classifier with AdamW; returns steps, seconds and seconds per epoch.

    ``labels`` (N,) for a sequence task; a token task reads ``batch.token_labels``. The head learns at
    ``head_lr``; the top block at ``lr``, each block below at the rate above divided by ``decay``.
    Runs ``max(min_steps, epochs * batches per epoch)`` steps on mini-batches drawn with ``seed``.
    """
    positive_int(epochs, "epochs")
    positive_int(batch_size, "batch_size")
    if decay < 1:
        raise ValueError(f"decay must be >= 1, got {decay}")
    groups = layer_groups(classifier)
    rates = [head_lr] + [lr / decay**i for i in range(len(groups) - 1)]
    optimizer = torch.optim.AdamW([{"params": g, "lr": r} for g, r in zip(groups, rates, strict=True)],
                                  weight_decay=weight_decay)
    per_epoch = math.ceil(len(batch) / batch_size)
    steps = max(min_steps, epochs * per_epoch)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout
    device = next(classifier.parameters()).device
    classifier.train()
    order = torch.randperm(len(batch), generator=generator)
    start = time.perf_counter()
    for step in range(steps):
        if unfreeze_every is not None:
            thawed = 1 + step // positive_int(unfreeze_every, "unfreeze_every")
            for g, params in enumerate(groups):
                for p in params:
                    p.requires_grad_(g < thawed)
        at = (step % per_epoch) * batch_size
        if at == 0 and step:
            order = torch.randperm(len(batch), generator=generator)
        rows = order[at:at + batch_size]
        width = int(batch.mask[rows].sum(1).max())
        ids, mask = batch.ids[rows, :width].to(device), batch.mask[rows, :width].to(device)
        logits = classifier(ids, mask)
        if classifier.token_level:
            target = batch.token_labels[rows, :width].to(device)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE)
        else:
            loss = F.cross_entropy(logits, labels[rows].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    for p in classifier.parameters():
        p.requires_grad_(True)
    seconds = time.perf_counter() - start
    classifier.eval()
    return {"steps": steps, "seconds": seconds, "seconds_per_epoch": seconds * per_epoch / steps}


@torch.no_grad()
def predict(classifier: Classifier, batch: Batch, batch_size: int = 64) -> torch.Tensor:
    """Predicted classes: (N,) for a sequence task, one per scored token (in order) for a token task."""
    classifier.eval()
    device = next(classifier.parameters()).device
    out = []
    for start in range(0, len(batch), batch_size):
        rows = torch.arange(start, min(start + batch_size, len(batch)))
        width = int(batch.mask[rows].sum(1).max())
        logits = classifier(batch.ids[rows, :width].to(device), batch.mask[rows, :width].to(device)).cpu()
        if classifier.token_level:
            out.append(logits.argmax(-1)[batch.token_labels[rows, :width] != IGNORE])
        else:
            out.append(logits.argmax(-1))
    return torch.cat(out)


def step_case(regime: str, batch: int = 32, tokens: int = 32, *, seed: int = 0,
              device: torch.device | str | None = None):
    """A closure running one training step of ``regime`` on random token ids (for peak-memory benchmarks).

    ``regime`` is "frozen" (features without gradients, then a linear head's step) or "finetune" (a step
    through the whole network). The model is a random-init GPT of the tiny-gpt shape.
    """
    from companion.gpt import GPTConfig

    if regime not in ("frozen", "finetune"):
        raise ValueError(f"regime must be 'frozen' or 'finetune', got {regime!r}")
    device = torch.device(device or "cpu")
    model = GPT(GPTConfig(dropout=0.0), seed=seed).to(device)
    classifier = Classifier(model, 2).to(device)
    ids = torch.randint(0, model.config.vocab_size, (batch, tokens), generator=torch.Generator().manual_seed(seed))
    ids, mask, labels = ids.to(device), torch.ones(batch, tokens, dtype=torch.bool, device=device), \
        torch.arange(batch, device=device) % 2
    params = classifier.head.parameters() if regime == "frozen" else classifier.parameters()
    optimizer = torch.optim.AdamW(params, lr=1e-3)

    def step() -> None:
        if regime == "frozen":
            with torch.no_grad():
                feats = pool(model.ln_f(model.hidden_states(ids)[-1]), mask)
            logits = classifier.head(feats)
        else:
            logits = classifier(ids, mask)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # optimizer state and one-time set-up are not what we measure
    return step
