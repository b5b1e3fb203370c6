"""The downstream tasks: labels read from hand-made sources, splits without leakage, class balance."""

from __future__ import annotations

from collections import Counter

import pytest

from companion import data
from companion import transfer_data as td

SOURCE = '''
"""Module docstring."""

def top(path, mode="r", *args, **kwargs):
    """Open path in the given mode."""
    def inner(x):
        """Inner helper of x."""

class Box:
    """A box that holds things."""

    def put(self, item, path):
        """Put item in the box."""

    @classmethod
    def make(cls, size):
        """Make a box."""

    class Lid:
        """The lid."""

        def close(self):
            """Close the lid."""

def undocumented(a):
    pass
'''


def test_definitions_read_kind_and_parameters_from_the_syntax_tree():
    found = {d.qualname: (d.kind, d.params) for d in td.definitions_of("m", SOURCE)}
    assert found == {
        "top": ("function", ("path", "mode", "args", "kwargs")),
        "top.<locals>.inner": ("function", ("x",)),
        "Box": ("class", ()),
        "Box.put": ("method", ("item", "path")),
        "Box.make": ("method", ("size",)),
        "Box.Lid": ("class", ()),
        "Box.Lid.close": ("method", ()),
    }


def test_tag_params_labels_whole_words_only():
    tagged = td.tag_params("Open path; paths and path_like are not path.", ["path"])
    words = [tagged.text[a:b] for a, b in tagged.spans]
    assert words == ["Open", "path", "paths", "and", "path_like", "are", "not", "path"]
    assert tagged.labels == (0, 1, 0, 0, 0, 0, 0, 1)


def test_near_duplicates_exact_after_normalising_and_by_shingles():
    base = "return the value of the named attribute of the object if it exists otherwise the default"
    others = [base]
    texts = [
        base.upper().replace(" ", "\n  "),               # same after lowercasing and collapsing whitespace
        base + " value",                                 # one more word: Jaccard 12/13 >= 0.8
        base.replace("default", "fallback") + " value",  # last shingle changed, one added: 11/14 < 0.8
        "an entirely different sentence about sockets and ports",
    ]
    assert td.near_duplicates(texts, others) == {0, 1}
    assert td.jaccard(td.shingles(texts[2]), td.shingles(base)) < 0.8


def test_leak_free_drops_training_copies_of_test_texts_and_repeats():
    rows = [td.Example("Same text here.", 0, "a"), td.Example("same   TEXT here.", 0, "a"),
            td.Example("Only in train.", 1, "a")]
    train, test = td.leak_free(rows, [td.Example("SAME text here.", 0, "b")])
    assert [e.text for e in train] == ["Only in train."]
    assert len(test) == 1


def test_balance_and_subsample():
    rows = [td.Example(f"t{i}", i % 3 == 0, "m") for i in range(30)]  # 10 of class 1, 20 of class 0
    kept = td.balance(rows, 2)
    assert Counter(e.label for e in kept) == {0: 10, 1: 10}
    assert td.balance(rows, 2) == kept  # deterministic
    picked = td.subsample(kept, 7, seed=1, n_classes=2)
    assert sorted(Counter(e.label for e in picked).values()) == [3, 4]
    assert picked == td.subsample(kept, 7, seed=1, n_classes=2) != td.subsample(kept, 7, seed=2, n_classes=2)
    with pytest.raises(ValueError, match="n must be"):
        td.subsample(kept, 21, seed=0)


def test_shuffled_keeps_the_words_and_changes_the_order():
    text = "the quick brown fox jumps over the lazy dog"
    out = td.shuffled(text)
    assert out != text and sorted(out.split()) == sorted(text.split()) and out.split()[0] == "the"
    assert td.shuffled(text) == out


@pytest.mark.parametrize("make", [td.kind_task, td.shuffle_task, td.param_task])
def test_real_tasks_are_leak_free_and_split_by_held_out_package(make):
    task = make()
    assert len(task.train) > 1000 and len(task.test) > 500
    assert all(data.is_validation_module(e.module) for e in task.test)
    assert not any(data.is_validation_module(e.module) for e in task.train)
    assert td.near_duplicates([e.text for e in task.train], [e.text for e in task.test]) == set()
    if task.name != "param":
        for side in (task.train, task.test):
            counts = Counter(e.label for e in side)
            assert len(counts) == len(task.classes) and len(set(counts.values())) == 1


def test_param_labels_depend_on_context():
    """Some words are a parameter in one docstring and an ordinary word in another."""
    seen: dict[str, set[int]] = {}
    for e in td.param_task().train:
        for (a, b), label in zip(e.spans, e.labels, strict=True):
            seen.setdefault(e.text[a:b], set()).add(label)
    both = [w for w, labels in seen.items() if labels == {0, 1}]
    assert {"name", "key", "value"} <= set(both)
