"""companion.checks: the shared parameter rule."""

from __future__ import annotations

import numpy as np
import pytest

from companion import attention, lsh, memory, sampling
from companion.checks import positive_int
from companion.gpt import GPTConfig


def test_positive_int_returns_counts_and_names_the_parameter_otherwise():
    assert positive_int(1, "n") == 1 and positive_int(4096, "vocab_size") == 4096
    counted = positive_int(np.int64(512), "length")  # a length from a NumPy grid is a count too
    assert counted == 512 and type(counted) is int
    with pytest.raises(ValueError, match="must be an int >= 1"):
        positive_int(np.float64(2.0), "length")
    for bad in (0, -3, 2.0, True, "3", None):
        with pytest.raises(ValueError, match=rf"num_beams must be an int >= 1, got {bad!r}"):
            positive_int(bad, "num_beams")



@pytest.mark.parametrize("call, name", [
    (lambda: lsh.random_rotations(0, 4, 1), "dim"),
    (lambda: memory.attention_memory_bytes(0, 8), "length"),
    (lambda: sampling.check_sampling_args(1.0, True, None), "top_k"),
    (lambda: attention.default_n_buckets(64, 0), "bucket_size"),
    (lambda: GPTConfig(n_head=True), "n_head"),
])
def test_modules_share_the_one_message(call, name):
    with pytest.raises(ValueError, match=rf"^{name} must be an int >= 1, got"):
        call()
