"""Self-checks for the exercises of the chapter "Feature-based vs fine-tuning" (book/transfer/feature-vs-finetune.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed with `companion.transfer` and `companion.transfer_finetune`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from companion.exercises._feedback import as_int, as_number, close, report

# Exercise 1: the trainable parameters of a linear probe on the last four layers side by side.
EXERCISE_WIDTH, EXERCISE_LAYERS, EXERCISE_CLASSES = 256, 4, 2
# Exercise 2: ULMFiT's discriminative learning rates on a 4-block GPT.
EXERCISE_TOP_LR, EXERCISE_DECAY, EXERCISE_BLOCKS = 3e-4, 2.6, 4


def check_concat_parameters(answer: int) -> bool:
    """Exercise 1: trainable parameters of a linear probe (weights and biases) on the concatenation."""
    value = as_int(answer, "answer")
    features = EXERCISE_WIDTH * EXERCISE_LAYERS
    expected = features * EXERCISE_CLASSES + EXERCISE_CLASSES
    if value == expected:
        return report(True, f"Right: {features} features x {EXERCISE_CLASSES} classes + {EXERCISE_CLASSES} biases; "
                            "fine-tuning trains about 2,000 times as many.", "")
    hint = ("add one bias per class" if value == features * EXERCISE_CLASSES
            else f"the concatenated feature has {EXERCISE_LAYERS} x {EXERCISE_WIDTH} numbers")
    return report(False, "", f"Not quite: {hint}.")


def embedding_lr(top_lr: float = EXERCISE_TOP_LR, decay: float = EXERCISE_DECAY,
                 blocks: int = EXERCISE_BLOCKS) -> float:
    """The learning rate of the embeddings: one decay step below each of the blocks under the top one, and one
    more below the first block (`transfer_finetune.fine_tune`'s layer groups)."""
    return top_lr / decay ** blocks


def check_embedding_lr(answer: float) -> bool:
    """Exercise 2: the embeddings' learning rate with discriminative rates (top block EXERCISE_TOP_LR)."""
    value = as_number(answer, "answer")
    expected = embedding_lr()
    if close(value, expected, 1e-2):
        return report(True, f"Right: {EXERCISE_TOP_LR:g} / {EXERCISE_DECAY}^{EXERCISE_BLOCKS} = {expected:.3g}, "
                            f"{EXERCISE_DECAY ** EXERCISE_BLOCKS:.0f} times slower than the top block.", "")
    off_by_one = close(value, EXERCISE_TOP_LR / EXERCISE_DECAY ** (EXERCISE_BLOCKS - 1), 1e-2)
    hint = ("count the steps: top block, three blocks below it, then the embeddings below the first block"
            if off_by_one else "divide the top block's rate by the decay once for every group below it")
    return report(False, "", f"Not quite: {hint}.")


def scalar_mix(layers: torch.Tensor, scalars: torch.Tensor, gamma: float) -> torch.Tensor:
    """ELMo's mix: gamma * sum_j softmax(scalars)_j * layers[j]; layers (L, ..., C), scalars (L,)."""
    weights = scalars.softmax(0)
    return gamma * (weights.view(-1, *([1] * (layers.dim() - 1))) * layers).sum(0)


def check_scalar_mix(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> bool:
    """Exercise 3: ``fn(layers, scalars, gamma)`` with layers (L, N, C), scalars (L,) -> (N, C)."""
    rng = random.Random(11)
    for _ in range(20):
        n_layers, n, width = rng.randint(1, 6), rng.randint(1, 4), rng.randint(1, 5)
        gen = torch.Generator().manual_seed(rng.randrange(10**6))
        layers = torch.randn(n_layers, n, width, generator=gen)
        scalars = torch.randn(n_layers, generator=gen) * 2
        gamma = rng.uniform(0.2, 3.0)
        expected = scalar_mix(layers, scalars, gamma)
        got = fn(layers.clone(), scalars.clone(), gamma)
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            return report(False, "", f"Not quite: for layers of shape {tuple(layers.shape)} the mix has shape "
                                     f"{tuple(expected.shape)}.")
        if not torch.allclose(got.float(), expected, atol=1e-5):
            plain = gamma * (scalars.view(-1, 1, 1) * layers).sum(0)
            hint = ("normalise the scalars with a softmax first, so the weights are positive and sum to one"
                    if torch.allclose(got.float(), plain, atol=1e-5)
                    else "weight each layer by softmax(scalars), sum over layers, then multiply by gamma")
            return report(False, "", f"Not quite: {hint}.")
    return report(True, "Right: the weights are a softmax, so the mix can lean on any layer but never leaves "
                        "their span; gamma rescales the result for the task.", "")
