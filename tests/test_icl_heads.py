"""Tests for companion.icl_heads: the probe on hand-built models, attention patterns, head scores."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from companion import icl
from companion.gpt import GPT, GPTConfig


class PerfectCopier(torch.nn.Module):
    """A hand-built induction model: if the current token occurred before, predict the tokens that followed
    its earlier occurrences (all of them, equally); otherwise predict uniformly."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, ids):
        B, T = ids.shape
        logits = torch.zeros(B, T, self.vocab_size)
        for b in range(B):
            row = ids[b].tolist()
            for t, token in enumerate(row):
                for s in range(t):
                    if row[s] == token:
                        logits[b, t, row[s + 1]] = 10.0
        return logits


class Uniform(torch.nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, ids):
        return torch.zeros(*ids.shape, self.vocab_size)


def test_repeated_sequences_shape_and_range():
    ids = icl.repeated_sequences(256, n=4, length=10, seed=3)
    assert ids.shape == (4, 20)
    assert torch.equal(ids[:, :10], ids[:, 10:])
    assert ids.min() >= 32 and ids.max() < 256
    assert torch.equal(ids, icl.repeated_sequences(256, n=4, length=10, seed=3))
    with pytest.raises(ValueError, match="length"):
        icl.repeated_sequences(256, length=0)


def test_probe_separates_a_copying_model_from_one_that_cannot_copy():
    copier = icl.induction_probe(PerfectCopier(256), 256)
    assert copier < 0.05
    assert icl.induction_probe(Uniform(256), 256) == pytest.approx(1.0)
    first, second = icl.copy_losses(Uniform(256), icl.repeated_sequences(256))
    assert first == pytest.approx(torch.log(torch.tensor(256.0)).item(), rel=1e-5) and second == pytest.approx(first)


def test_in_context_learning_score_is_negative_for_a_copier():
    windows = icl.repeated_sequences(256, n=4, length=40)
    assert icl.in_context_learning_score(PerfectCopier(256), windows, early=10, late=60) < -4
    assert icl.in_context_learning_score(Uniform(256), windows, early=10, late=60) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="early and late"):
        icl.in_context_learning_score(Uniform(256), windows, early=10, late=80)


def _gpt(position: str = "learned", seed: int = 0) -> GPT:
    config = GPTConfig(vocab_size=64, block_size=32, n_layer=2, n_head=2, n_embd=16, position=position)
    return GPT(config, seed=seed).eval()


@pytest.mark.parametrize("position", ["learned", "rotary"])
def test_attention_patterns_reproduce_the_attention_output(position):
    model = _gpt(position)
    idx = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(0))
    patterns = icl.attention_patterns(model, idx)
    states = model.hidden_states(idx)
    assert len(patterns) == 2 and patterns[0].shape == (2, 2, 12, 12)
    torch.testing.assert_close(patterns[1].sum(-1), torch.ones(2, 2, 12))
    assert patterns[0].triu(diagonal=1).abs().max() == 0  # causal
    for block, x, pattern in zip(model.blocks, states, patterns, strict=False):
        C = x.shape[-1]
        v = block.attn.qkv(block.ln_1(x)).split(C, dim=2)[2].view(2, 12, 2, C // 2).transpose(1, 2)
        mixed = (pattern @ v).transpose(1, 2).reshape(2, 12, C)
        expected, _ = block.attn(block.ln_1(x))
        torch.testing.assert_close(block.attn.proj(mixed), expected, atol=1e-5, rtol=1e-5)


def test_prefix_matching_score_of_a_hand_set_head():
    model = _gpt()
    ids = icl.repeated_sequences(64, n=2, length=6)
    scores = icl.prefix_matching_scores(model, ids)
    assert scores.shape == (2, 2) and ((scores > 0) & (scores < 1)).all()
    # a head whose query and key weights are zero attends uniformly: from position i it gives 1 / (i + 1)
    with torch.no_grad():
        model.blocks[0].attn.qkv.weight[:32] = 0
        model.blocks[0].attn.qkv.bias[:32] = 0
    expected = sum(1 / (i + 1) for i in range(6, 12)) / 6
    assert icl.prefix_matching_scores(model, ids)[0].tolist() == pytest.approx([expected] * 2, abs=1e-6)


def test_copying_scores_of_hand_set_circuits():
    model = _gpt()
    C, dh = 16, 8
    with torch.no_grad():
        E = torch.linalg.qr(torch.randn(64, C, generator=torch.Generator().manual_seed(1)))[0]
        model.wte.weight.copy_(E)  # tied: W_U = E^T, so W_U W_E = I on the embedding space
        attn = model.blocks[0].attn
        attn.qkv.weight[2 * C:] = 0
        attn.qkv.weight[2 * C: 2 * C + dh, :dh] = torch.eye(dh)  # head 0 reads dims 0..7 ...
        attn.proj.weight.zero_()
        attn.proj.weight[:dh, :dh] = torch.eye(dh)  # ... and writes them back: it copies
        attn.qkv.weight[2 * C + dh:, dh:] = torch.eye(dh)  # head 1 reads dims 8..15 ...
        attn.proj.weight[dh:, dh:] = -torch.eye(dh)  # ... and writes their negatives: anti-copying
    scores = icl.copying_scores(model)
    assert scores.shape == (2, 2)
    assert scores[0, 0].item() == pytest.approx(1.0, abs=1e-6)
    assert scores[0, 1].item() == pytest.approx(-1.0, abs=1e-6)
    # the same number from the full vocabulary-sized matrix M = W_E W_V W_O W_U
    W_V, W_O = attn.qkv.weight[2 * C:].T[:, :dh], attn.proj.weight.T[:dh]
    eig = torch.linalg.eigvals((E @ W_V @ W_O @ E.T).double())
    assert (eig.sum().real / eig.abs().sum()).item() == pytest.approx(1.0, abs=1e-6)


def test_token_losses_equal_cross_entropy():
    model = _gpt()
    ids = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(2))
    losses = icl.token_losses(model, ids)
    assert losses.shape == (2, 8)
    expected = F.cross_entropy(model(ids[:, :-1]).reshape(-1, 64), ids[:, 1:].reshape(-1))
    assert losses.mean().item() == pytest.approx(expected.item(), rel=1e-5)
