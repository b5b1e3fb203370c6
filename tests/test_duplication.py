"""The duplication task: its data, a model that learns, and the shipped result that loads only when intact."""

from __future__ import annotations

import json

import pytest
import torch

from companion import duplication as dup
from companion.device import make_generator

TINY = dup.DuplicationConfig(vocab_size=8, length=16, dim=32, heads=2, layers=1, bucket_size=4, n_hashes=2)


def test_batch_is_0w0w() -> None:
    batch = dup.make_batch(64, 20, 6, generator=make_generator(0))
    assert batch.shape == (64, 20) and batch.dtype == torch.long
    assert (batch[:, 0] == 0).all() and (batch[:, 10] == 0).all()
    assert torch.equal(batch[:, 1:10], batch[:, 11:])  # the second half copies the first
    word = batch[:, 1:10]
    assert word.min() >= 1 and word.max() <= 5
    assert set(word.unique().tolist()) == {1, 2, 3, 4, 5}  # every symbol is used
    assert torch.equal(batch, dup.make_batch(64, 20, 6, generator=make_generator(0)))  # seeded
    assert not torch.equal(batch, dup.make_batch(64, 20, 6, generator=make_generator(1)))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"batch_size": 0, "length": 8, "vocab_size": 4}, "batch_size must be an int >= 1"),
    ({"batch_size": 2, "length": 7, "vocab_size": 4}, "length must be even and >= 4"),
    ({"batch_size": 2, "length": 8, "vocab_size": 1}, "vocab_size must be >= 2"),
])
def test_batch_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dup.make_batch(**kwargs)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="length must be even"):
        dup.DuplicationConfig(length=15)
    with pytest.raises(ValueError, match="dim must be divisible by heads"):
        dup.DuplicationConfig(dim=30, heads=4)
    with pytest.raises(ValueError, match="n_hashes must be an int >= 1"):
        dup.DuplicationConfig(n_hashes=0)


def test_model_is_causal_when_one_chunk_holds_the_sequence() -> None:
    # With bucket_size >= length every round is exact causal attention, so later tokens cannot matter.
    # (With several chunks they can, through the sort by bucket: see generated_accuracy.)
    config = dup.DuplicationConfig(vocab_size=8, length=16, dim=32, heads=2, bucket_size=16)
    model = dup.ReformerLM(config, seed=0).eval()
    x = dup.make_batch(3, config.length, config.vocab_size, generator=make_generator(0))
    y = x.clone()
    y[:, 9:] = (y[:, 9:] % (config.vocab_size - 1)) + 1  # change every token after position 8
    with torch.no_grad():
        a = model(x, generator=make_generator(5))
        b = model(y, generator=make_generator(5))
    assert torch.allclose(a[:, :9], b[:, :9], atol=1e-5)
    assert not torch.allclose(a[:, 9:], b[:, 9:], atol=1e-3)


def test_accuracies_of_a_model_that_copies_perfectly() -> None:
    class Oracle(dup.ReformerLM):  # predicts the true next token of the 0w0w sequence it is given
        def forward(self, idx, *, n_hashes=None, generator=None):
            half = self.config.length // 2
            nxt = torch.zeros_like(idx)
            nxt[:, half:] = idx[:, 1:half + 1][:, : max(0, idx.shape[1] - half)]
            return torch.nn.functional.one_hot(nxt, self.config.vocab_size).float()

    oracle = Oracle(TINY)
    x = dup.make_batch(4, TINY.length, TINY.vocab_size, generator=make_generator(0))
    assert dup.copy_accuracy(oracle, x) == 1.0
    assert dup.generated_accuracy(oracle, x) == 1.0
    assert dup.copy_accuracy(dup.ReformerLM(TINY), x, generator=make_generator(0)) < 0.6  # untrained


def test_training_reduces_the_loss() -> None:
    model, losses = dup.train(TINY, steps=40, batch_size=16, lr=1e-2, seed=0, device="cpu", show_progress=False)
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.85 * losses[0]
    assert not model.training


def test_save_and_load_verify_the_checksum(tmp_path) -> None:
    model = dup.ReformerLM(TINY, seed=3).eval()
    manifest = dup.save_result(model, tmp_path, {"steps": 0})
    assert manifest["config"]["length"] == TINY.length
    loaded, info = dup.load_result(tmp_path, device="cpu")
    x = dup.make_batch(2, TINY.length, TINY.vocab_size, generator=make_generator(0))
    with torch.no_grad():
        assert torch.equal(model(x, generator=make_generator(1)), loaded(x, generator=make_generator(1)))
    assert info == json.loads((tmp_path / "manifest.json").read_text())

    data = bytearray((tmp_path / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF  # flip the bits of one byte of the weights
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt"):
        dup.load_result(tmp_path, device="cpu")


def test_shipped_result_reproduces_its_manifest() -> None:
    model, manifest = dup.load_result(device="cpu")
    assert manifest["command"].startswith("python -m companion.duplication")
    accuracy = dup.evaluate(model, (1, 8))
    for n in (1, 8):
        assert accuracy[n] == pytest.approx(manifest["accuracy"][str(n)], abs=2e-3)
    assert manifest["accuracy"]["8"] >= manifest["accuracy"]["1"]
