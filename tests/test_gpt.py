"""Tests for companion.gpt: shapes, causality, parameter count, and the key/value cache."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from companion.gpt import GPT, GPTConfig, KVCache, lm_loss, rotary_tables, rotate

CONFIG = GPTConfig(vocab_size=97, block_size=24, n_layer=2, n_head=4, n_embd=32)


def make_model(config: GPTConfig = CONFIG, seed: int = 0) -> GPT:
    model = GPT(config, seed=seed).double().eval()  # float64 so cache and full pass agree far below 1e-5
    # a random init barely uses attention; bigger weights make every position matter
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=p.dtype) * 0.3)
    return model


def random_ids(batch: int, length: int, vocab: int = CONFIG.vocab_size, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_forward_shape_and_loss_matches_cross_entropy():
    model = make_model()
    idx = random_ids(3, 10)
    logits, loss = model(idx, idx.roll(-1, dims=1))
    assert logits.shape == (3, 10, CONFIG.vocab_size)
    expected = F.cross_entropy(logits.reshape(-1, CONFIG.vocab_size), idx.roll(-1, dims=1).reshape(-1))
    assert torch.allclose(loss, expected)
    assert torch.equal(model(idx), logits)


def test_causal_future_tokens_do_not_change_past_logits():
    model = make_model()
    idx = random_ids(2, 12)
    changed = idx.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % CONFIG.vocab_size
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :7], b[:, :7], rtol=0, atol=1e-12)
    assert (a[:, 7:] - b[:, 7:]).abs().max() > 1e-3


def test_weight_tying_and_parameter_count():
    model = GPT(CONFIG)
    assert model.lm_head.weight is model.wte.weight
    C, V, T, L = CONFIG.n_embd, CONFIG.vocab_size, CONFIG.block_size, CONFIG.n_layer
    per_layer = 2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    expected = V * C + T * C + L * per_layer + 2 * C
    assert model.num_parameters() == expected
    assert model.num_parameters(non_embedding=True) == expected - T * C


def test_init_is_seeded_and_residual_projections_are_scaled():
    a, b, c = GPT(CONFIG, seed=3), GPT(CONFIG, seed=3), GPT(CONFIG, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.wte.weight, c.wte.weight)
    assert a.blocks[0].attn.proj.weight.std() < 0.75 * a.blocks[0].attn.qkv.weight.std()


def test_dropout_only_in_training_mode():
    model = GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.5))
    idx = random_ids(2, 8, vocab=50)
    model.eval()
    assert torch.equal(model(idx), model(idx))
    model.train()
    assert not torch.equal(model(idx), model(idx))


@settings(derandomize=True, deadline=None, max_examples=15)
@given(batch=st.integers(1, 3), length=st.integers(1, CONFIG.block_size), seed=st.integers(0, 10**6))
def test_decode_step_token_by_token_equals_full_forward(batch, length, seed):
    model = make_model(seed=seed % 5)
    idx = random_ids(batch, length, seed=seed)
    full = model(idx)
    cache, steps = None, []
    for t in range(length):
        logits, cache = model.decode_step(idx[:, t: t + 1], cache)
        steps.append(logits)
    assert cache.length == length
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=1e-5)


@settings(derandomize=True, deadline=None, max_examples=15)
@given(cuts=st.lists(st.integers(1, CONFIG.block_size - 1), max_size=4, unique=True), seed=st.integers(0, 10**6))
def test_decode_step_in_chunks_equals_full_forward(cuts, seed):
    model = make_model(seed=seed % 5)
    idx = random_ids(2, CONFIG.block_size, seed=seed)
    bounds = [0, *sorted(cuts), CONFIG.block_size]
    cache, chunks = None, []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        logits, cache = model.decode_step(idx[:, lo:hi], cache)
        assert logits.shape == (2, hi - lo, CONFIG.vocab_size)
        chunks.append(logits)
    torch.testing.assert_close(torch.cat(chunks, dim=1), model(idx), rtol=0, atol=1e-5)


def test_decode_step_float32_matches_full_forward():
    model = GPT(CONFIG, seed=1).eval()
    idx = random_ids(2, 20)
    logits, cache = model.decode_step(idx[:, :5])
    for t in range(5, 20):
        step, cache = model.decode_step(idx[:, t: t + 1], cache)
        logits = torch.cat([logits, step], dim=1)
    torch.testing.assert_close(logits, model(idx), rtol=0, atol=1e-5)


def test_cache_select_reorders_and_duplicates_rows():
    model = make_model()
    idx = random_ids(3, 9)
    _, cache = model.decode_step(idx[:, :6])
    order = torch.tensor([2, 0, 2, 1])
    selected = cache.select(order)
    assert isinstance(selected, KVCache) and selected.batch_size == 4 and selected.length == 6
    logits, _ = model.decode_step(idx[order, 6:], selected)
    torch.testing.assert_close(logits, model(idx[order])[:, 6:], rtol=0, atol=1e-5)
    assert cache.batch_size == 3  # the original is unchanged


def test_decode_step_does_not_modify_the_cache_passed_in():
    model = make_model()
    idx = random_ids(1, 6)
    _, cache = model.decode_step(idx[:, :4])
    first, _ = model.decode_step(idx[:, 4:5], cache)
    second, _ = model.decode_step(idx[:, 4:5], cache)  # same cache again: beam search branches like this
    assert cache.length == 4
    assert torch.equal(first, second)


def test_lm_loss_is_mean_cross_entropy():
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[0, 1, 2], [3, 4, 0]])
    manual = -torch.log_softmax(logits, -1).gather(-1, targets[..., None]).mean()
    torch.testing.assert_close(lm_loss(logits, targets), manual)


def test_too_long_input_raises():
    model = GPT(CONFIG)
    with pytest.raises(ValueError, match=r"sequence length must be <= block_size=24, got 25"):
        model(random_ids(1, 25))
    _, cache = model.decode_step(random_ids(1, 20))
    with pytest.raises(ValueError, match=r"block_size=24, got 25 \(cached 20 \+ new 5\)"):
        model.decode_step(random_ids(1, 5), cache)


def test_bad_inputs_raise():
    model = GPT(CONFIG)
    with pytest.raises(ValueError, match="idx must be a LongTensor of shape"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="idx must be a LongTensor"):
        model(torch.zeros(1, 4))
    _, cache = model.decode_step(random_ids(2, 3))
    with pytest.raises(ValueError, match=r"idx batch size must equal the cache's \(2\), got 3"):
        model.decode_step(random_ids(3, 1), cache)
    with pytest.raises(ValueError, match="batch_indices must be 1-D"):
        cache.select(torch.zeros(2, 2, dtype=torch.long))


@pytest.mark.parametrize("kwargs, message", [
    ({"n_embd": 30, "n_head": 4}, "n_embd must be divisible by n_head"),
    ({"n_layer": 0}, "n_layer must be an int >= 1, got 0"),
    ({"vocab_size": 2.5}, "vocab_size must be an int >= 1"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ({"position": "sinusoidal"}, "position must be 'learned' or 'rotary', got 'sinusoidal'"),
    ({"n_embd": 12, "n_head": 4, "position": "rotary"}, "needs an even head size n_embd / n_head, got 12 / 4"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_decode_step_matches_cpu():
    model = GPT(CONFIG, seed=2).eval()
    idx = random_ids(2, 10)
    cpu = model(idx)
    gpu = model.cuda()
    logits, cache = gpu.decode_step(idx[:, :4].cuda())
    for t in range(4, 10):
        step, cache = gpu.decode_step(idx[:, t: t + 1].cuda(), cache)
        logits = torch.cat([logits, step], dim=1)
    torch.testing.assert_close(logits.cpu(), cpu, rtol=1e-4, atol=1e-4)


def test_hidden_states_are_every_stage_of_the_residual_stream():
    config = GPTConfig(vocab_size=50, block_size=12, n_layer=3, n_head=2, n_embd=16)
    model = GPT(config, seed=1).eval()
    idx = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(0))
    states = model.hidden_states(idx)
    assert len(states) == 4 and all(s.shape == (2, 12, 16) for s in states)
    torch.testing.assert_close(states[0], model.wte(idx) + model.wpe(torch.arange(12)))
    torch.testing.assert_close(states[1], model.blocks[0](states[0])[0])
    torch.testing.assert_close(model.lm_head(model.ln_f(states[-1])), model(idx))


@pytest.mark.parametrize("count", [True, 0, 2.0])
def test_config_refuses_non_counts(count):
    with pytest.raises(ValueError, match=r"n_layer must be an int >= 1"):
        GPTConfig(n_layer=count)


ROTARY = GPTConfig(vocab_size=97, block_size=24, n_layer=2, n_head=4, n_embd=32, position="rotary")


def test_rotate_matches_transformers_llama():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    head_dim, T = 8, 24
    config = LlamaConfig(hidden_size=32, num_attention_heads=4, max_position_embeddings=T, rope_theta=10000.0)
    q, k = torch.randn(2, 2, 4, T, head_dim, generator=torch.Generator().manual_seed(0))
    cos_hf, sin_hf = LlamaRotaryEmbedding(config)(q, torch.arange(T)[None])
    cos, sin = rotary_tables(head_dim, T)
    torch.testing.assert_close(cos, cos_hf[0])
    torch.testing.assert_close(sin, sin_hf[0])
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos_hf, sin_hf)
    torch.testing.assert_close(rotate(q, cos, sin), q_hf)
    torch.testing.assert_close(rotate(k, cos, sin), k_hf)


def test_rotary_scores_depend_on_distance_only():
    cos, sin = rotary_tables(8, 30)
    q, k = torch.randn(2, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def score(m: int, n: int) -> float:
        return (rotate(q, cos[m].double(), sin[m].double()) @ rotate(k, cos[n].double(), sin[n].double())).item()

    assert score(5, 2) == pytest.approx(score(20, 17), abs=1e-6) == pytest.approx(score(3, 0), abs=1e-6)
    assert abs(score(5, 2) - score(5, 3)) > 1e-3  # a different distance, a different score


def test_rotary_model_has_no_position_table_and_its_cache_matches_the_full_pass():
    model = make_model(ROTARY, seed=3)
    assert model.wpe is None and not any("wpe" in k or "cos" in k for k in model.state_dict())
    idx = random_ids(2, ROTARY.block_size, seed=4)
    logits, cache = model.decode_step(idx[:, :7])
    for lo, hi in ((7, 8), (8, 15), (15, 24)):
        step, cache = model.decode_step(idx[:, lo:hi], cache)
        logits = torch.cat([logits, step], dim=1)
    torch.testing.assert_close(logits, model(idx), rtol=0, atol=1e-5)
    assert model.num_parameters(non_embedding=True) == model.num_parameters()
