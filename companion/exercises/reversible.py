"""Self-checks for the exercises of the chapter "Reversible residual layers" (book/reformer/reversible.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed here from the definitions, not typed in.
"""

from __future__ import annotations

import numpy as np

from companion.exercises._feedback import as_number, report

GiB, MiB = 2**30, 2**20

# Exercise 1: a block with f(t) = 3 t and g(t) = t^2 (scalars), seen only through its outputs.
INVERT_OUTPUTS = (2.0, 5.0)  # (y1, y2)


def block_f(t: float) -> float:
    return 3.0 * t


def block_g(t: float) -> float:
    return t * t


# Exercise 2: what a stack stores for the backward pass.
STORE_BATCH, STORE_LENGTH, STORE_WIDTH, STORE_BLOCKS, STORE_BYTES_PER_VALUE = 8, 4096, 512, 48, 4

# Exercise 3: which statement about random-number replay is true.
REPLAY_STATEMENTS = {
    "a": "Replay is only needed to make the forward pass repeatable; the gradients are right without it.",
    "b": "Without replay the backward pass recomputes f and g with new dropout masks, so the rebuilt inputs "
         "and the gradients are wrong.",
    "c": "Replay keeps every dropout mask of the forward pass, so memory grows with depth again.",
}
REPLAY_TRUE = "b"

# Exercise 4: float32 reconstruction of a small x1 next to a large f(x2).
FLOAT_X1, FLOAT_F = 1e-8, 1.0


def invert(y1: float, y2: float) -> tuple[float, float]:
    """The inverse of the block: x2 = y2 - g(y1), then x1 = y1 - f(x2)."""
    x2 = y2 - block_g(y1)
    return y1 - block_f(x2), x2


def check_inverse(x1: float, x2: float) -> bool:
    """Exercise 1: the inputs (x1, x2) of the block whose outputs are (2, 5)."""
    a, b = as_number(x1, "x1"), as_number(x2, "x2")
    e1, e2 = invert(*INVERT_OUTPUTS)
    y1, y2 = INVERT_OUTPUTS
    return report(
        abs(a - e1) < 1e-9 and abs(b - e2) < 1e-9,
        f"Right: x2 = y2 - g(y1) = {y2:g} - {block_g(y1):g} = {e2:g}, then x1 = y1 - f(x2) = {y1:g} - "
        f"{block_f(e2):g} = {e1:g}. Forward again: {e1:g} + 3 x {e2:g} = {y1:g}, {e2:g} + {y1:g}^2 = {y2:g}.",
        f"Not quite (x1 = {a:g}, x2 = {b:g}). Hint: undo the second line first. y2 = x2 + g(y1), and y1 is "
        "known, so x2 = y2 - g(y1); then y1 = x1 + f(x2) gives x1.",
    )


def stored_bytes(blocks: int, batch: int, length: int, width: int, bytes_per_value: int) -> tuple[int, int]:
    """(checkpointing, reversible): the inputs of every block (two halves each) vs the final outputs only."""
    pair = 2 * batch * length * width * bytes_per_value
    return blocks * pair, pair


def check_stored_bytes(checkpoint_bytes: float, reversible_bytes: float) -> bool:
    """Exercise 2: bytes kept for the backward pass by checkpointing and by the reversible stack."""
    got_c, got_r = as_number(checkpoint_bytes, "checkpoint_bytes"), as_number(reversible_bytes,
                                                                                 "reversible_bytes")
    exp_c, exp_r = stored_bytes(STORE_BLOCKS, STORE_BATCH, STORE_LENGTH, STORE_WIDTH, STORE_BYTES_PER_VALUE)
    ok = abs(got_c - exp_c) <= 1e-3 * exp_c and abs(got_r - exp_r) <= 1e-3 * exp_r
    return report(
        ok,
        f"Right: one pair (x1, x2) is 2 x 8 x 4096 x 512 x 4 bytes = {exp_r / MiB:g} MiB. Checkpointing keeps "
        f"one pair per block, {exp_c / GiB:g} GiB; the reversible stack keeps only the last pair, "
        f"{exp_r / MiB:g} MiB, at any depth.",
        f"Not quite ({got_c:,.0f} and {got_r:,.0f}). Hint: a block's input is two halves of B x L x d values "
        "of 4 bytes. Checkpointing keeps the input of each of the 48 blocks; the reversible stack rebuilds "
        "them from the output. Answer in bytes.",
    )


def check_replay(answer: str) -> bool:
    """Exercise 3: the letter ("a", "b" or "c") of the true statement in `REPLAY_STATEMENTS`."""
    if not isinstance(answer, str) or answer.strip().lower() not in REPLAY_STATEMENTS:
        raise ValueError(f"answer must be one of {sorted(REPLAY_STATEMENTS)}, got {answer!r}")
    choice = answer.strip().lower()
    return report(
        choice == REPLAY_TRUE,
        "Right: the backward pass calls f and g again, and dropout would draw new masks. Restoring the random "
        "state recorded before each call (a few bytes per call, not the masks) makes them draw the same ones.",
        f"Not quite: {REPLAY_STATEMENTS[choice]!r} is false. Hint: think of what the backward pass of a "
        "reversible layer does with f and g, and of how big a random-number state is compared with a mask.",
    )


def float32_reconstruction(x1: float, f_of_x2: float) -> float:
    """x1 rebuilt in float32 as (x1 + f(x2)) - f(x2)."""
    x1_32, f_32 = np.float32(x1), np.float32(f_of_x2)
    return float((x1_32 + f_32) - f_32)


def check_float_reconstruction(answer: float) -> bool:
    """Exercise 4: what x1 = 1e-8 comes back as, in float32, next to f(x2) = 1."""
    value = as_number(answer, "answer")
    expected = float32_reconstruction(FLOAT_X1, FLOAT_F)
    return report(
        value == expected,
        f"Right: it comes back as {expected:g}. float32 has about 7 decimal digits, so 1 + 1e-8 rounds to 1 "
        "and the small x1 is lost; the error is about half a unit in the last place of y1 (6e-8 here), not of x1.",
        f"Not quite ({value:g}). Hint: float32 resolves numbers near 1 only to about 6e-8. What is "
        "1 + 1e-8 in float32, and what is left after subtracting 1?",
    )
