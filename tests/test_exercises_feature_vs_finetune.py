"""The self-checks of the feature-vs-finetune chapter accept the right answer and reject plausible wrong ones."""

from __future__ import annotations

import torch

from companion import transfer as tr
from companion import transfer_finetune as ft
from companion.exercises import feature_vs_finetune as ex
from companion.gpt import GPT, GPTConfig


def test_check_concat_parameters():
    assert ex.check_concat_parameters(4 * 256 * 2 + 2)
    assert not ex.check_concat_parameters(4 * 256 * 2)
    assert not ex.check_concat_parameters(256 * 2 + 2)
    # the key agrees with a probe fitted by the package on features of that width
    x = torch.randn(20, 4 * 256, generator=torch.Generator().manual_seed(0))
    head = tr.fit_linear(x, torch.arange(20) % 2, steps=5)
    assert sum(p.numel() for p in head.linear.parameters()) == 4 * 256 * 2 + 2


def test_check_embedding_lr_matches_the_optimizer_of_fine_tune():
    assert ex.check_embedding_lr(3e-4 / 2.6**4)
    assert not ex.check_embedding_lr(3e-4 / 2.6**3)
    assert not ex.check_embedding_lr(3e-4)
    # fine_tune's layer groups: head, top block, the blocks below, embeddings
    config = GPTConfig(vocab_size=16, block_size=8, n_layer=ex.EXERCISE_BLOCKS, n_head=1, n_embd=4)
    classifier = ft.Classifier(GPT(config), 2)
    groups = ft.layer_groups(classifier)
    assert len(groups) - 2 == ex.EXERCISE_BLOCKS  # so the embeddings are EXERCISE_BLOCKS decay steps down


def test_check_scalar_mix():
    def right(layers, scalars, gamma):
        w = torch.softmax(scalars, 0)
        return gamma * torch.einsum("l,lnc->nc", w, layers)

    assert ex.check_scalar_mix(right)
    assert not ex.check_scalar_mix(lambda layers, scalars, gamma: gamma * torch.einsum("l,lnc->nc", scalars, layers))
    assert not ex.check_scalar_mix(lambda layers, scalars, gamma: layers.mean(0))


def test_the_key_agrees_with_the_package_scalar_mix():
    feats = torch.randn(3, 10, 4, generator=torch.Generator().manual_seed(1))
    mix = tr.ScalarMix(feats, 2)
    with torch.no_grad():
        mix.scalars.copy_(torch.tensor([0.5, -1.0, 2.0]))
        mix.gamma.fill_(1.7)
    normed = (feats - mix.mean) / mix.std
    torch.testing.assert_close(mix.mix(feats), ex.scalar_mix(normed, mix.scalars.detach(), 1.7))
