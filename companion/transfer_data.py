"""Downstream tasks made from the standard library's docstrings, with labels that exist in the data.

Three tasks, all split the same way: **test examples come from the top-level packages the course GPT never
saw in pretraining** (`companion.data.is_validation_module`), training examples from the others, and no text
sits on both sides of the split, not even a near copy (the stdlib repeats docstrings: inherited, copied,
aliased). Two texts are near copies when they are equal after lowercasing and collapsing whitespace, or when
their word 5-gram shingles overlap with Jaccard similarity >= 0.8; a training text near a test text is dropped.

* `kind_task()`: sequence classification. Is a docstring that of a class, a method or a function? The
  label is read from the syntax tree with `ast`; each split is class-balanced.
* `shuffle_task()`: sequence classification. Is a docstring's opening real, or its words after the first
  shuffled?
  The backbone probe of the transfer chapters; balanced by construction.
* `param_task()`: token-level tagging. Given a function's docstring alone, which words name one of its
  parameters? The labels come from the signature (`self` and `cls` left out); the same word is a parameter in
  one docstring and not in another, so the label depends on the context.
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from companion import data
from companion.checks import positive_int

KINDS = ("class", "method", "function")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Example:
    """One labelled text: ``label`` is an index into the task's ``classes``; ``module`` is its source."""

    text: str
    label: int
    module: str


@dataclass(frozen=True)
class TaggedText:
    """One text with word-level labels: ``spans[i]`` is the (start, end) of word i, ``labels[i]`` its tag."""

    text: str
    spans: tuple[tuple[int, int], ...]
    labels: tuple[int, ...]
    module: str


@dataclass(frozen=True)
class Task:
    """A downstream task: its name, class names, and the train and test examples."""

    name: str
    classes: tuple[str, ...]
    train: list
    test: list

    def __repr__(self) -> str:
        return f"Task({self.name!r}, classes={self.classes}, train={len(self.train)}, test={len(self.test)})"


@dataclass(frozen=True)
class Definition:
    """A documented class, method or function of the stdlib, with its parameter names (none for a class)."""

    module: str
    qualname: str
    kind: str
    doc: str
    params: tuple[str, ...]


# ---------------------------------------------------------------------------------------------------------
# Near duplicates


def normalize(text: str) -> str:
    """Lowercase, with every run of whitespace made one space: the key for exact duplicates."""
    return " ".join(text.lower().split())


def shingles(text: str, n: int = 5) -> frozenset[tuple[str, ...]]:
    """The set of word n-grams of the normalized text (a text shorter than n words is one shingle)."""
    positive_int(n, "n")
    words = normalize(text).split()
    if len(words) <= n:
        return frozenset([tuple(words)])
    return frozenset(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    """|a ∩ b| / |a ∪ b| (1.0 for two empty sets)."""
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicates(texts: Sequence[str], others: Sequence[str], threshold: float = 0.8) -> set[int]:
    """Indices i of ``texts`` equal to some text of ``others`` after `normalize`, or with shingle
    Jaccard >= ``threshold`` to one. Only pairs that share a shingle are compared (an inverted index)."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    exact = {normalize(t) for t in others}
    other_sets = [shingles(t) for t in others]
    index: defaultdict[tuple[str, ...], list[int]] = defaultdict(list)
    for j, s in enumerate(other_sets):
        for g in s:
            index[g].append(j)
    found = set()
    for i, text in enumerate(texts):
        if normalize(text) in exact:
            found.add(i)
            continue
        mine = shingles(text)
        candidates = {j for g in mine for j in index.get(g, ())}
        if any(jaccard(mine, other_sets[j]) >= threshold for j in candidates):
            found.add(i)
    return found


def leak_free(train: list, test: list, text_of=lambda r: r.text) -> tuple[list, list]:
    """Drop exact repeats within each side, then every training record near a test record."""
    def unique(records: list) -> list:
        seen, kept = set(), []
        for r in records:
            key = normalize(text_of(r))
            if key not in seen:
                seen.add(key)
                kept.append(r)
        return kept

    train, test = unique(train), unique(test)
    leaked = near_duplicates([text_of(r) for r in train], [text_of(r) for r in test])
    return [r for i, r in enumerate(train) if i not in leaked], test


# ---------------------------------------------------------------------------------------------------------
# Reading definitions with ast


def _params(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, ...]:
    a = node.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return tuple(n for n in names if n not in ("self", "cls"))


def definitions_of(module: str, source: str | bytes) -> list[Definition]:
    """Every documented class, method and function in ``source`` (nested ones too), in source order.

    A ``def`` directly inside a class body is a method; any other ``def`` is a function.
    """
    found: list[tuple[int, Definition]] = []

    def visit(node: ast.AST, prefix: str, in_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                is_class = isinstance(child, ast.ClassDef)
                doc = ast.get_docstring(child, clean=True)
                if doc:
                    kind = "class" if is_class else ("method" if in_class else "function")
                    params = () if is_class else _params(child)
                    found.append((child.lineno, Definition(module, prefix + child.name, kind, doc, params)))
                visit(child, prefix + child.name + ("." if is_class else ".<locals>."), is_class)
            else:
                visit(child, prefix, in_class)

    visit(ast.parse(source), "", False)
    found.sort(key=lambda item: item[0])
    return [d for _, d in found]


@cache
def stdlib_definitions() -> tuple[Definition, ...]:
    """`definitions_of` every stdlib file the corpus reads (a few seconds, then memoised)."""
    rows: list[Definition] = []
    for module, path in data.stdlib_files():
        try:
            rows.extend(definitions_of(module, path.read_bytes()))
        except (SyntaxError, ValueError, OSError):
            continue
    return tuple(rows)


# ---------------------------------------------------------------------------------------------------------
# Sampling helpers


def _rank(text: str, salt: str) -> bytes:
    return hashlib.sha256(f"{salt}\0{text}".encode()).digest()


def balance(examples: Iterable[Example], n_classes: int, salt: str = "balance") -> list[Example]:
    """Keep the same number of examples of every class (the rarest class's count), chosen by a stable hash."""
    examples = list(examples)
    by_class: defaultdict[int, list[Example]] = defaultdict(list)
    for e in examples:
        by_class[e.label].append(e)
    size = min(len(by_class[c]) for c in range(n_classes))
    kept = {id(e) for c in range(n_classes) for e in sorted(by_class[c], key=lambda e: _rank(e.text, salt))[:size]}
    return [e for e in examples if id(e) in kept]


def subsample(examples: Sequence, n: int, seed: int, n_classes: int | None = None) -> list:
    """``n`` examples drawn with ``seed``; with ``n_classes``, as equal a share of each class as possible."""
    positive_int(n, "n")
    if n > len(examples):
        raise ValueError(f"n must be <= the {len(examples)} examples available, got {n}")
    rng = random.Random(seed)
    if n_classes is None:
        return [examples[i] for i in sorted(rng.sample(range(len(examples)), n))]
    pools = [[i for i, e in enumerate(examples) if e.label == c] for c in range(n_classes)]
    for pool in pools:
        rng.shuffle(pool)
    chosen: list[int] = []
    while len(chosen) < n:  # round robin over the classes, so every class gets n // n_classes or one more
        for pool in pools:
            if pool and len(chosen) < n:
                chosen.append(pool.pop())
    return [examples[i] for i in sorted(chosen)]


def _split(records: list, key=lambda r: r.module) -> tuple[list, list]:
    train = [r for r in records if not data.is_validation_module(key(r))]
    test = [r for r in records if data.is_validation_module(key(r))]
    return train, test


# ---------------------------------------------------------------------------------------------------------
# The tasks


def opening(text: str, max_words: int) -> str:
    """The first ``max_words`` whitespace-separated words of ``text``, joined by single spaces."""
    return " ".join(text.split()[:max_words])


@cache
def kind_task(max_words: int = 32) -> Task:
    """Is this docstring (its opening of ``max_words`` words) that of a class, a method or a function?"""
    rows = [Example(opening(d.doc, max_words), KINDS.index(d.kind), d.module) for d in stdlib_definitions()]
    train, test = leak_free(*_split(rows))
    return Task("kind", KINDS, balance(train, len(KINDS)), balance(test, len(KINDS)))


def shuffled(text: str, salt: str = "shuffle") -> str:
    """The first word of ``text``, then its other words in an order drawn from a hash of the text.

    The first word stays in place so that both versions have the same tokens (a capitalised first word
    without a space before it would otherwise give the shuffled one away without any context).
    """
    first, *rest = text.split()
    if len(set(rest)) < 2:
        raise ValueError("text must have at least two different words after the first to be shuffled")
    rng = random.Random(_rank(text, salt))
    order = list(rest)
    while order == rest:
        rng.shuffle(order)
    return " ".join([first, *order])


@cache
def shuffle_task(max_words: int = 24, min_words: int = 8) -> Task:
    """Real docstring openings (label 0) vs the same words shuffled (label 1); a stable hash picks which.

    Each docstring appears once, either real or shuffled, so the two classes never share a text.
    """
    rows = []
    for d in data.stdlib_docstrings():
        text = opening(d.text, max_words)
        if len(text.split()) >= min_words and len(set(text.split()[1:])) >= 2:
            rows.append(Example(text, 0, d.module))
    train, test = leak_free(*_split(rows))

    def label(examples: list[Example]) -> list[Example]:
        out = []
        for e in examples:
            fake = _rank(e.text, "label")[0] % 2
            out.append(Example(shuffled(e.text) if fake else e.text, fake, e.module))
        return balance(out, 2)

    return Task("shuffle", ("real", "shuffled"), label(train), label(test))


def tag_params(text: str, params: Iterable[str]) -> TaggedText | None:
    """Word spans of ``text`` (identifiers: letters, digits, underscores) tagged 1 if they name a parameter."""
    params = set(params)
    spans = tuple(m.span() for m in _WORD.finditer(text))
    labels = tuple(int(text[a:b] in params) for a, b in spans)
    return TaggedText(text, spans, labels, "")


@cache
def param_task(max_words: int = 48) -> Task:
    """Which words of a function's docstring (its first ``max_words`` words) name one of its parameters?

    Only functions and methods with a parameter that their docstring opening mentions are kept.
    """
    rows = []
    for d in stdlib_definitions():
        if d.kind == "class" or not d.params:
            continue
        text = opening(d.doc, max_words)
        tagged = tag_params(text, d.params)
        if any(tagged.labels):
            rows.append(TaggedText(text, tagged.spans, tagged.labels, d.module))
    train, test = leak_free(*_split(rows))
    return Task("param", ("other", "parameter"), train, test)
