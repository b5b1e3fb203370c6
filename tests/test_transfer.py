"""Transfer methods: pooling, cached features, the probe against closed-form ridge, each head on a toy problem."""

from __future__ import annotations

import pytest
import torch

from companion import transfer as tr
from companion import transfer_finetune as ft
from companion.gpt import GPT, GPTConfig

TINY = GPTConfig(vocab_size=32, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0)


def test_mean_pool_ignores_padding_and_last_pool_reads_the_last_real_token():
    states = torch.arange(2 * 3 * 2, dtype=torch.float).view(2, 3, 2)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    assert torch.equal(tr.pool(states, mask), torch.tensor([[1.0, 2.0], [8.0, 9.0]]))
    assert torch.equal(tr.pool(states, mask, "last"), torch.tensor([[2.0, 3.0], [10.0, 11.0]]))
    stacked = torch.stack([states, states + 1])  # a leading layer axis
    assert torch.equal(tr.pool(stacked, mask)[1], tr.pool(states + 1, mask))


def test_features_of_a_padded_batch_equal_each_text_alone():
    model = GPT(TINY, seed=0).eval()
    ids = [[3, 4, 5, 6, 7], [8, 9]]
    batch = tr.Batch(torch.tensor([ids[0], ids[1] + [0, 0, 0]]),
                     torch.tensor([[True] * 5, [True] * 2 + [False] * 3]))
    feats = tr.features(model, batch, batch_size=2)
    assert feats.shape == (3, 2, 16)
    for i, row in enumerate(ids):
        alone = torch.stack(model.hidden_states(torch.tensor([row]))).mean(2)[:, 0]
        torch.testing.assert_close(feats[:, i], alone, atol=1e-5, rtol=1e-5)
    assert tr.features(model, batch) is feats  # cached


def test_token_batches_gather_each_words_first_subtoken():
    class Chars:  # a tokenizer with one token per character
        def tokens(self, text):
            return list(text)

        def encode(self, text):
            return [ord(c) % 32 for c in text]

    text = "ab cd ef"
    batch = tr.encode(Chars(), [text], 6, spans=[[(0, 2), (3, 5), (6, 8)]], labels=[[1, 0, 1]])
    # "ef" starts at character 6, beyond the 6 tokens kept: it drops out
    assert batch.token_labels.tolist() == [[1, -100, -100, 0, -100, -100]]
    assert tr.scored_labels(batch).tolist() == [1, 0]


def test_squared_loss_probe_equals_closed_form_ridge():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(80, 6, generator=gen, dtype=torch.float64) * torch.arange(1, 7) + 3
    y = torch.randn(80, 2, generator=gen, dtype=torch.float64)
    for l2 in (1e-3, 1e-1, 1.0):
        head = tr.fit_linear(x, y, loss="squared", l2=l2)
        weight, bias = tr.ridge(x, y, l2)
        torch.testing.assert_close(head.linear.weight.detach(), weight, atol=1e-6, rtol=1e-6)
        # the bias of standardised, centred features is the mean target
        torch.testing.assert_close(head.linear.bias.detach(), bias, atol=1e-6, rtol=1e-6)


def _two_blobs(n=200, dim=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, dim, generator=gen)
    x[:, 0] += 3 * (2 * y - 1)
    return x, y


def test_logistic_probe_separates_two_blobs():
    x, y = _two_blobs()
    head = tr.fit_linear(x[:100], y[:100])
    assert tr.accuracy(head.predict(x[100:]), y[100:]) > 0.95


def test_concat_and_scalar_mix_find_the_layer_that_carries_the_label():
    x, y = _two_blobs(dim=4)
    noise = torch.randn(3, 200, 4, generator=torch.Generator().manual_seed(1))
    feats = torch.cat([noise, x[None]])  # only the last of four layers knows the class
    assert tr.concat_last(feats, 2).shape == (200, 8)
    assert torch.equal(tr.concat_last(feats, 1), feats[-1])
    head = tr.fit_scalar_mix(feats[:, :100], y[:100])
    assert tr.accuracy(head.predict(feats[:, 100:]), y[100:]) > 0.95
    assert head.weights().argmax().item() == 3
    with pytest.raises(ValueError, match="k must be"):
        tr.concat_last(feats, 5)


def test_bigru_uses_the_right_context():
    """Tag a token 1 when the NEXT token is 'a': invisible to a causal model, easy for a bidirectional one."""
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 2, (300, 10), generator=gen)
    states = torch.nn.functional.one_hot(tokens, 4).float()
    labels = torch.full((300, 10), tr.IGNORE)
    labels[:, :-1] = tokens[:, 1:]
    tagger = tr.fit_bigru(states[:200], labels[:200], epochs=15, seed=0)
    with torch.no_grad():
        pred = tagger(states[200:]).argmax(-1)[:, :-1]
    assert tr.accuracy(pred, labels[200:, :-1]) > 0.95


def test_ngram_baseline_learns_a_word_order_cue():
    texts = [f"{a} {b} item" for a, b in [("not", "good"), ("good", "not")] * 20]
    y = torch.tensor([0, 1] * 20)
    vocab = tr.ngram_vocab(texts)
    assert {"not good", "good not", "item"} <= vocab.keys()
    x = tr.ngram_features(texts, vocab)
    assert tr.accuracy(tr.fit_linear(x, y).predict(x), y) == 1.0


def test_f1_of_the_positive_class():
    assert tr.f1(torch.tensor([1, 1, 0, 0]), torch.tensor([1, 0, 1, 0])) == 0.5
    assert tr.f1(torch.tensor([0, 0]), torch.tensor([0, 0])) == 0.0


def _toy_sequences(n=160, seed=0):
    """Label 1 when token 5 occurs anywhere in the sequence: needs pooling over the real tokens."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(6, 32, (n, 8), generator=gen)
    labels = torch.arange(n) % 2
    where = torch.randint(0, 6, (n,), generator=gen)
    ids[labels == 1, where[labels == 1]] = 5
    mask = torch.ones(n, 8, dtype=torch.bool)
    mask[::3, 6:] = False  # some padded rows
    ids[~mask] = 0
    return tr.Batch(ids, mask), labels


@pytest.mark.parametrize("options", [{}, {"decay": 2.6}, {"unfreeze_every": 10}])
def test_fine_tuning_solves_a_toy_sequence_task(options):
    batch, labels = _toy_sequences()
    classifier = ft.Classifier(GPT(TINY, seed=0), 2, dropout=0.0)
    ft.fine_tune(classifier, batch.select(range(120)), labels[:120], epochs=40, batch_size=16,
                 lr=3e-3, head_lr=1e-2, seed=0, **options)
    test = torch.arange(120, 160)
    assert tr.accuracy(ft.predict(classifier, batch.select(test)), labels[test]) > 0.9
    assert all(p.requires_grad for p in classifier.parameters())


def test_fine_tuning_a_token_task_and_the_layer_groups():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 32, (200, 8), generator=gen)
    token_labels = (ids > 16).long()  # a token-identity task
    batch = tr.Batch(ids, torch.ones_like(ids, dtype=torch.bool), token_labels)
    classifier = ft.Classifier(GPT(TINY, seed=0), 2, token_level=True, dropout=0.0)
    ft.fine_tune(classifier, batch.select(range(150)), epochs=20, lr=3e-3, head_lr=1e-2)
    test = batch.select(range(150, 200))
    assert tr.accuracy(ft.predict(classifier, test), tr.scored_labels(test)) > 0.95
    groups = ft.layer_groups(classifier)
    assert len(groups) == TINY.n_layer + 2
    assert sum(p.numel() for g in groups for p in g) == ft.trainable_parameters(classifier)


def test_features_cache_on_disk_is_keyed_by_model_and_batch(tmp_path):
    batch = tr.Batch(torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.bool))
    first = tr.features(GPT(TINY, seed=3).eval(), batch, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("features-*.safetensors"))) == 1
    tr._CACHE.clear()
    assert torch.equal(tr.features(GPT(TINY, seed=3).eval(), batch, cache_dir=tmp_path), first)
    other = tr.features(GPT(TINY, seed=4).eval(), batch, cache_dir=tmp_path)  # another model: another file
    assert len(list(tmp_path.glob("features-*.safetensors"))) == 2 and not torch.equal(other, first)
