"""Tests for companion.folders: the one way a model or result folder is written and read."""

from __future__ import annotations

import json

import pytest
import torch

from companion import folders


def test_round_trip_keeps_tensors_files_and_manifest(tmp_path):
    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)}
    written = folders.write_folder(tmp_path, {"name": "x", "metric": 0.5}, tensors=tensors,
                                   files={"history.json": "[1, 2]", "notes.bin": b"\x00\x01"})
    assert set(written["files"]) == {"model.safetensors", "history.json", "notes.bin"}
    assert written["files"]["notes.bin"]["bytes"] == 2
    folder = folders.read_folder(tmp_path)
    assert folder.manifest == written == json.loads((tmp_path / "manifest.json").read_text())
    assert folder.tensors.keys() == tensors.keys() and all(torch.equal(folder.tensors[k], tensors[k]) for k in tensors)
    assert folder.files == {"history.json": b"[1, 2]", "notes.bin": b"\x00\x01"}


def test_a_folder_without_tensors_has_no_weights_file(tmp_path):
    folders.write_folder(tmp_path, {"name": "sweep"}, files={"runs.json": "{}"})
    assert not (tmp_path / "model.safetensors").exists()
    assert folders.read_folder(tmp_path).tensors == {}


@pytest.mark.parametrize("name", ["model.safetensors", "history.json"])
def test_a_changed_file_is_refused_before_parsing(tmp_path, name):
    folders.write_folder(tmp_path, {}, tensors={"w": torch.ones(3)}, files={"history.json": "[1]"})
    data = bytearray((tmp_path / name).read_bytes())
    data[-1] ^= 1
    (tmp_path / name).write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{name} is corrupt: its sha256 is"):
        folders.read_folder(tmp_path)


def test_bad_file_names_and_missing_manifests_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="files must be plain file names"):
        folders.write_folder(tmp_path, {}, files={"../escape.txt": "x"})
    with pytest.raises(ValueError, match="files must be plain file names"):
        folders.write_folder(tmp_path, {}, files={"manifest.json": "{}"})
    with pytest.raises(ValueError, match="has no manifest.json"):
        folders.read_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="kind must be 'models' or 'results'"):
        folders.shipped("weights", "tiny-gpt")


def test_the_package_ships_models_and_results_apart():
    assert "tiny-gpt" in folders.listed("models")
    assert "duplication" in folders.listed("results") and "duplication" not in folders.listed("models")


@pytest.mark.parametrize("kind", ["models", "results"])
def test_shipped_commands_name_no_machine_path(kind):
    """A manifest's command is for any reader to run: relative paths only, never this machine's folders."""
    for name in folders.listed(kind):
        manifest = json.loads((folders.shipped(kind, name) / folders.MANIFEST).read_text())
        assert manifest["command"].startswith("python -m companion.")
        assert not [word for word in manifest["command"].split() if word.startswith(("/", "~"))], name
