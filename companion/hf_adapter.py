"""An adapter that runs a Hugging Face ``transformers`` causal LM through `companion.decoding`.

Tests and benchmarks use it to compare our decoders with ``generate`` on the same model. Only duck typing:
``companion`` does not import ``transformers``.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch


class HFCausalLM:
    """Makes a Hugging Face causal LM (``GPT2LMHeadModel`` ...) look like our models.

    Calling it returns the logits for every position. With ``use_cache=True`` it also offers
    ``decode_step`` through the model's own key/value cache, so decoding with it costs what
    ``generate`` pays. Only duck typing: ``companion`` does not import ``transformers``.
    """

    def __init__(self, hf_model: Any, use_cache: bool = True) -> None:
        self.hf_model = hf_model
        # transformers 5 renamed `past_key_values` to `cache`, in the arguments and in the outputs
        self._cache_name = "cache" if "cache" in inspect.signature(hf_model.forward).parameters else "past_key_values"
        if use_cache:  # decoders look for the attribute, so it exists only when asked for
            self.decode_step = self._decode_step

    @torch.no_grad()
    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        return self.hf_model(input_ids=idx, use_cache=False).logits

    @torch.no_grad()
    def _decode_step(self, idx: torch.Tensor, cache: _HFCache | None = None) -> tuple[torch.Tensor, _HFCache]:
        past = {} if cache is None else {self._cache_name: cache.past}
        out = self.hf_model(input_ids=idx, use_cache=True, **past)
        return out.logits, _HFCache(getattr(out, self._cache_name))


class _HFCache:
    """Wraps a ``transformers`` cache; ``select`` reorders it in place (the old one is never reused)."""

    def __init__(self, past: Any) -> None:
        self.past = past

    def select(self, rows: torch.Tensor) -> _HFCache:
        if hasattr(self.past, "reorder_cache"):
            self.past.reorder_cache(rows)
            return self
        # older transformers return a tuple of (key, value) per layer
        return _HFCache(tuple(tuple(t.index_select(0, rows) for t in layer) for layer in self.past))
