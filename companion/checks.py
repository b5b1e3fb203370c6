"""Parameter checks that many modules share: one rule and one message for each."""

from __future__ import annotations

import numbers


def positive_int(value: object, name: str) -> int:
    """Return ``value`` as an int if it is a whole number >= 1 (Python's or NumPy's; a bool is not a count),
    else raise ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)
