"""What every self-check shares: the message it prints and how it reads the reader's answer."""

from __future__ import annotations


def report(ok: bool, right: str, hint: str) -> bool:
    """Print ``right`` or ``hint`` and return ``ok``, so a check reads as one expression."""
    print(right if ok else hint)
    return ok


def as_number(answer: object, name: str) -> float:
    """The answer as a float; a bool or a non-number is the reader's mistake, not a wrong answer."""
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(answer).__name__}")
    return float(answer)


def as_int(answer: object, name: str) -> int:
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise TypeError(f"{name} must be an int, got {type(answer).__name__}")
    return answer


def close(value: float, expected: float, rel: float = 1e-3) -> bool:
    return abs(value - expected) <= rel * abs(expected)
