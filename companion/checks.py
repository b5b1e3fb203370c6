"""Parameter checks that many modules share: one rule and one message for each."""

from __future__ import annotations


def positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is an int >= 1 (a bool is not a count); else raise ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value
