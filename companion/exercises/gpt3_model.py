"""Self-checks for the exercises of the chapter "The GPT-3 model" (book/gpt3/model.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed with `companion.scaling` and the shipped sweep, not typed in.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from companion.exercises._feedback import as_function, as_int, as_number, close, report
from companion.scaling import GPT3_TOKENS, parameter_count, pf_days, training_flops, training_memory

EXERCISE_13B = 13e9  # exercise 1: parameters of GPT-3 13B, trained on GPT3_TOKENS tokens
TOKENS_PER_PARAM = 20  # exercise 2: Hoffmann et al.'s compute-optimal rule of thumb
GPU_BYTES = 80e9  # exercise 3: one 80 GB accelerator
GPT3_PARAMS = 175e9
EXTRAPOLATE_FACTOR = 10  # exercise 4: ten times the largest of the four fitted sizes


def check_pf_days_13b(answer: float) -> bool:
    """Exercise 1: petaflop/s-days to train a 13 B-parameter model on 300 B tokens (C = 6 N D)."""
    value = as_number(answer, "answer")
    flops = training_flops(EXERCISE_13B, GPT3_TOKENS)
    expected = pf_days(flops)
    return report(close(value, expected, 0.02),
                  f"Right: 6 x 13e9 x 300e9 = {flops:.3g} FLOPs; divided by 1e15 x 86,400 that is {expected:,.0f} "
                  "PF-days, about 7 % of the 175 B model's.",
                  f"Not quite ({value:,.4g}). Hint: C = 6 N D FLOPs, and one PF-day is 1e15 FLOP/s for "
                  "86,400 seconds.")


def chinchilla_params(flops: float) -> float:
    """N with C = 6 N D and D = TOKENS_PER_PARAM N: N = sqrt(C / (6 * 20))."""
    return math.sqrt(flops / (6 * TOKENS_PER_PARAM))


def check_chinchilla_params(answer: float) -> bool:
    """Exercise 2: the compute-optimal N for GPT-3's compute if D = 20 N (Hoffmann et al. 2022)."""
    value = as_number(answer, "answer")
    flops = training_flops(GPT3_PARAMS, GPT3_TOKENS)
    expected = chinchilla_params(flops)
    return report(close(value, expected, 0.03),
                  f"Right: N = sqrt(C / 120) = {expected / 1e9:.0f} B parameters on {20 * expected / 1e12:.2f} T "
                  "tokens: a smaller model trained on more than three times the data.",
                  f"Not quite ({value:.4g}). Hint: substitute D = 20 N into C = 6 N D, so C = 120 N^2; "
                  f"C = {flops:.3g}.")


def check_gpus_for_state(answer: int) -> bool:
    """Exercise 3: 80 GB accelerators needed just to hold 175 B parameters' training state (mixed precision)."""
    value = as_int(answer, "answer")
    total = sum(training_memory(GPT3_PARAMS, "mixed").values())
    expected = math.ceil(total / GPU_BYTES)
    return report(value == expected,
                  f"Right: 16 bytes x 175e9 = {total / 1e12:.1f} TB, so at least {expected} devices before a "
                  "single activation is stored; hence model parallelism.",
                  f"Not quite ({value}). Hint: fp16 weights and gradients (2 + 2 bytes), an fp32 master copy "
                  "(4) and two fp32 Adam moments (8) per parameter; round up.")


def check_extrapolated_loss(answer: float) -> bool:
    """Exercise 4: the fitted law's validation loss at 10x the largest of the four fitted sizes."""
    from companion.sweep import fit_sizes, load_sweep, summary

    value = as_number(answer, "answer")
    _, runs = load_sweep()
    law = fit_sizes(runs)
    fourth = sorted(summary(run)["N"] for run in runs)[3]
    expected = float(law(EXTRAPOLATE_FACTOR * fourth))
    return report(close(value, expected, 0.005),
                  f"Right: ({law.scale:.3g} / {EXTRAPOLATE_FACTOR * fourth:,})^{law.alpha:.4f} = {expected:.3f} "
                  "nats. Compare it with what the larger sizes of the sweep actually reached.",
                  f"Not quite ({value:.4g}). Hint: L(N) = (N_c / N)^alpha with N = {EXTRAPOLATE_FACTOR} x "
                  f"{fourth:,}, and N_c and alpha as fitted in the chapter.")


def _fresh_shapes(seed: int = 12) -> list[tuple[int, int, int, int]]:
    rng = random.Random(seed)
    shapes = [(1, 8, 10, 4), (12, 768, 50257, 2048)]
    shapes += [(rng.randint(1, 48), 8 * rng.randint(1, 512), rng.randint(2, 60000), rng.randint(1, 4096))
               for _ in range(10)]
    return shapes


def check_parameter_count(my_count: Callable[[int, int, int, int], int]) -> bool:
    """Exercise 5: ``my_count(n_layer, n_embd, vocab_size, block_size)`` gives a course GPT's exact size."""
    as_function(my_count, "my_count(n_layer, n_embd, vocab_size, block_size)")
    for shape in _fresh_shapes():
        expected, got = parameter_count(*shape), my_count(*shape)
        if got != expected:
            n_layer, d = shape[0], shape[1]
            if isinstance(got, int) and (got - expected) % d == 0:
                hint = (f"you are off by {(expected - got) // d:,} x n_embd (n_layer = {n_layer}): count the "
                        "biases (9 n_embd per block), the layer norms' gains and biases (4 n_embd per block) "
                        "and the final layer norm (2 n_embd).")
            else:
                hint = "each block holds 12 d^2 weights; the tied output layer is the token table, counted once."
            return report(False, "", f"Not quite: for (n_layer, n_embd, vocab, block) = {shape} you return "
                                      f"{got!r}, the model has {expected:,}. Hint: {hint}")
    return report(True, "Right: your count equals companion.scaling.parameter_count on twelve shapes, from a "
                         "one-block toy to GPT-3 Small.", "")
