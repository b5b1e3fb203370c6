"""What every self-check shares: the message it prints and how it reads the reader's answer."""

from __future__ import annotations

from collections.abc import Callable


def report(ok: bool, right: str, hint: str) -> bool:
    """Print ``right`` or ``hint`` and return ``ok``, so a check reads as one expression."""
    print(right if ok else hint)
    return ok


def is_number(answer: object) -> bool:
    """An int or float, but not a bool (True is an int to Python, never a count or a score to us)."""
    return isinstance(answer, (int, float)) and not isinstance(answer, bool)


def as_number(answer: object, name: str) -> float:
    """The answer as a float; a bool or a non-number is the reader's mistake, not a wrong answer."""
    if not is_number(answer):
        raise TypeError(f"{name} must be a number, got {type(answer).__name__}")
    return float(answer)


def as_int(answer: object, name: str) -> int:
    """The answer as an int; anything else (a bool or a float included) raises TypeError naming ``name``."""
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise TypeError(f"{name} must be an int, got {type(answer).__name__}")
    return answer


def as_function(answer: object, usage: str) -> Callable:
    """The reader's function; ``usage`` shows how the check calls it, e.g. ``"encode(text, merges)"``."""
    if not callable(answer):
        raise TypeError(f"{usage.split('(')[0]} must be a function {usage}, got {type(answer).__name__}")
    return answer


def close(value: float, expected: float, rel: float = 1e-3, abs_tol: float = 0.0) -> bool:
    """``value`` within ``rel`` of ``expected`` (relative) or within ``abs_tol`` (absolute), whichever is looser."""
    return abs(value - expected) <= max(rel * abs(expected), abs_tol)
