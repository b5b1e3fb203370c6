"""companion.checks: the shared parameter rule."""

from __future__ import annotations

import pytest

from companion.checks import positive_int


def test_positive_int_returns_counts_and_names_the_parameter_otherwise():
    assert positive_int(1, "n") == 1 and positive_int(4096, "vocab_size") == 4096
    for bad in (0, -3, 2.0, True, "3", None):
        with pytest.raises(ValueError, match=rf"num_beams must be an int >= 1, got {bad!r}"):
            positive_int(bad, "num_beams")
