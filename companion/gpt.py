"""A small decoder-only transformer (GPT), readable top to bottom.

Pre-LayerNorm blocks, learned absolute positions (or rotary ones), causal self-attention through
``F.scaled_dot_product_attention`` and an output layer that shares its weights
with the token embedding (weight tying). ``forward`` returns logits for every
position; ``decode_step`` adds incremental decoding with a key/value cache:

    logits, cache = model.decode_step(prompt_ids)           # (B, T, V), cache of T positions
    logits, cache = model.decode_step(next_ids, cache)      # (B, 1, V), cache of T + 1
    cache = cache.select(beam_indices)                      # reorder/duplicate rows (beam search)

The logits of ``decode_step`` equal those of a full forward pass over the whole
prefix (tested to 1e-5), because position ids continue from ``cache.length``
and the new queries attend to every cached key plus the causal part of the new ones.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from companion.checks import positive_int

POSITIONS = ("learned", "rotary")  # how GPTConfig.position encodes where a token is
IGNORE = -100  # a target whose loss does not count (cross_entropy's ignore_index)


@dataclass
class GPTConfig:
    """Sizes of a GPT. ``n_embd`` must be divisible by ``n_head``."""

    vocab_size: int = 4096
    block_size: int = 256  # longest context, in tokens
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    dropout: float = 0.0
    bias: bool = True
    # "learned": a table of absolute positions added to the tokens (GPT-2, GPT-3); "rotary": no table, queries
    # and keys rotated by their positions (RoPE), so attention scores depend on distance only
    position: str = "learned"  # one of POSITIONS

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            positive_int(getattr(self, name), name)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd must be divisible by n_head, got n_embd={self.n_embd}, n_head={self.n_head}")
        if self.position not in POSITIONS:
            raise ValueError(f"position must be {' or '.join(map(repr, POSITIONS))}, got {self.position!r}")
        if self.position == "rotary" and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"position='rotary' needs an even head size n_embd / n_head, "
                             f"got {self.n_embd} / {self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


class KVCache:
    """Keys and values of every layer for the positions decoded so far.

    ``keys[i]`` and ``values[i]`` have shape (batch, n_head, length, head_dim).
    """

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor]):
        self.keys = keys
        self.values = values

    @property
    def length(self) -> int:
        """Number of cached positions."""
        return self.keys[0].shape[2]

    @property
    def batch_size(self) -> int:
        return self.keys[0].shape[0]

    def select(self, batch_indices: torch.Tensor) -> KVCache:
        """A new cache whose row ``j`` is row ``batch_indices[j]`` of this one (for beam search)."""
        index = torch.as_tensor(batch_indices, dtype=torch.long, device=self.keys[0].device)
        if index.dim() != 1:
            raise ValueError(f"batch_indices must be 1-D, got shape {tuple(index.shape)}")
        return KVCache([k.index_select(0, index) for k in self.keys],
                       [v.index_select(0, index) for v in self.values])


def rotary_tables(head_dim: int, length: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, each (length, head_dim), of the rotary angles ``p * base ** (-2i / head_dim)``.

    Position p turns the pair of channels (i, i + head_dim / 2) by its i-th angle, so each angle is listed twice.
    """
    inverse_frequencies = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inverse_frequencies)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021) of ``x`` (..., T, head_dim) with the tables of its T positions.

    A query at position m and a key at position n rotated this way have the dot product of the unrotated
    pair turned by (m - n) angles: it depends on their distance only.
    """
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)
        self.rotary = config.position == "rotary"
        if self.rotary:  # not saved: the tables follow from the config
            cos, sin = rotary_tables(config.n_embd // config.n_head, config.block_size)
            self.register_buffer("cos", cos, persistent=False)
            self.register_buffer("sin", sin, persistent=False)

    def heads(self, x: torch.Tensor, start: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values (B, n_head, T, head_dim) of ``x`` (B, T, C) at positions start, start + 1, ..."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if self.rotary:
            cos, sin = self.cos[start: start + T], self.sin[start: start + T]
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        return q, k, v

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        B, T, C = x.shape
        q, k, v = self.heads(x, 0 if past is None else past[0].shape[2])  # cached keys are already rotated
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        dropout = self.dropout if self.training else 0.0
        if past is None or T == 1:
            # plain causal mask; a single new query may see every cached key, so no mask is needed
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=past is None)
        else:
            # T new queries after L cached keys: query i sees keys 0 .. L + i
            L = k.shape[2] - T
            mask = torch.ones(T, L + T, dtype=torch.bool, device=x.device).tril(diagonal=L)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.proj(y)), (k, v)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm: normalise before each sub-layer, add its output to the residual stream."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        attn_out, present = self.attn(self.ln_1(x), past)
        x = x + attn_out
        x = x + self.mlp(self.ln_2(x))
        return x, present


class GPT(nn.Module):
    """A decoder-only transformer language model."""

    def __init__(self, config: GPTConfig, *, seed: int | None = 0):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd) if config.position == "learned" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: one matrix embeds and un-embeds tokens
        self.reset_parameters(seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int | None = 0) -> None:
        """GPT-2 initialisation, drawn on a CPU generator so a seed gives the same model everywhere."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        # residual projections are scaled down so the residual stream does not grow with depth
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, param in self.named_parameters():
            if name.endswith("bias"):
                param.zero_()
            elif param.dim() == 1:  # LayerNorm weights
                param.fill_(1.0)
            else:
                std = residual_std if name.endswith("proj.weight") else 0.02
                param.copy_(torch.randn(param.shape, generator=generator) * std)

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Number of parameters (the tied output matrix counted once); without position embeddings if asked.

        As in GPT-2 and nanoGPT, ``non_embedding`` leaves out the position table but keeps the token
        embedding, because it is also the output layer.
        """
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding and self.wpe is not None else n

    def _check_idx(self, idx: torch.Tensor, past_length: int = 0) -> None:
        if idx.dim() != 2 or idx.dtype != torch.long:
            raise ValueError(f"idx must be a LongTensor of shape (batch, time), got {idx.dtype} {tuple(idx.shape)}")
        total = past_length + idx.shape[1]
        if total > self.config.block_size:
            raise ValueError(f"sequence length must be <= block_size={self.config.block_size}, "
                             f"got {total} (cached {past_length} + new {idx.shape[1]})")

    def _run(self, idx: torch.Tensor, cache: KVCache | None, states: list[torch.Tensor] | None = None
             ) -> tuple[torch.Tensor, KVCache]:
        """The final hidden state (before ``ln_f``) and the new cache; ``states`` collects every layer's."""
        past_length = 0 if cache is None else cache.length
        self._check_idx(idx, past_length)
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(past_length, past_length + idx.shape[1], device=idx.device))
        x = self.drop(x)
        keys, values = [], []
        for i, block in enumerate(self.blocks):
            if states is not None:
                states.append(x)
            past = None if cache is None else (cache.keys[i], cache.values[i])
            x, (k, v) = block(x, past)
            keys.append(k)
            values.append(v)
        if states is not None:
            states.append(x)
        return x, KVCache(keys, values)

    def hidden_states(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """The residual stream after each stage: ``n_layer + 1`` tensors of shape (batch, time, n_embd).

        Index 0 is the token plus position embedding (the token embedding alone with rotary positions),
        index ``i`` the output of block ``i`` (before the final layer norm), so
        ``lm_head(ln_f(hidden_states(idx)[-1]))`` equals ``model(idx)``. One forward pass yields them all.
        """
        states: list[torch.Tensor] = []
        self._run(idx, None, states)
        return states

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, T, vocab_size)`` for every position; with ``targets`` also the mean cross-entropy."""
        x, _ = self._run(idx, None)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits
        return logits, lm_loss(logits, targets)

    def decode_step(self, idx: torch.Tensor, cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        """Run only the new tokens ``idx`` (B, t_new) after the cached ones.

        Returns the logits (B, t_new, vocab_size) of the new positions and a cache that now also
        holds them. Pass ``cache=None`` on the first call (the prompt).
        """
        if cache is not None and cache.batch_size != idx.shape[0]:
            raise ValueError(f"idx batch size must equal the cache's ({cache.batch_size}), got {idx.shape[0]}")
        x, cache = self._run(idx, cache)
        return self.lm_head(self.ln_f(x)), cache


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in nats; ``targets`` (B, T) holds the token after each position.

    Positions whose target is `IGNORE` do not count.
    """
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # the softmax over the vocabulary needs float32 precision
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)
