"""The word-manipulation tasks of GPT-3 (Brown et al. 2020, section 3.9.2) and their prompts.

Each task hides a word and asks for it back:

* ``cycle_letters``: the letters rotated, ``lyinevitab = inevitably``;
* ``anagrams1``: all letters but the first and last shuffled, ``criroptuon = corruption``;
* ``anagrams2``: all but the first two and last two shuffled, ``opoepnnt = opponent``;
* ``random_insertion``: a random punctuation mark or space between every two letters,
  ``s.u!c/c!e.s s i/o/n = succession``;
* ``reversed_words``: the letters backwards, ``stcejbo = objects``.

A prompt (the paper's Figure 2.1) is an optional task description line, ``k`` demonstrations
``question = answer`` one per line, and the query ``question = ``; the model's answer runs to the
end of its line. `byte_tokenizer` is the tokenizer of the course's in-context models: one token per
byte, so every letter is its own token.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from companion.bpe import BYTE_TO_CHAR, BPETokenizer

TASKS = ("cycle_letters", "anagrams1", "anagrams2", "random_insertion", "reversed_words")
MIN_LETTERS, MAX_LETTERS = 5, 14
SEPARATOR = " = "
# Characters random insertion puts between letters: punctuation and the space, but not "=" (the separator).
INSERTIONS = " !\"#$%&'()*+,-./:;<>?@[\\]^_`{|}~"
# Short task descriptions (at most 16 characters, so a described 10-shot prompt still fits 512 bytes).
DESCRIPTIONS = {
    "cycle_letters": "Unrotate:",
    "anagrams1": "Unscramble:",
    "anagrams2": "Unscramble:",
    "random_insertion": "Drop symbols:",
    "reversed_words": "Reverse:",
}
_WORD = re.compile(r"[a-z]+")


def check_task(task: str) -> str:
    """``task`` if it is one of `TASKS`, else a ValueError listing them."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return task


def _shuffle_changed(letters: str, rng: random.Random) -> str:
    """A shuffle of ``letters`` that differs from them (they must hold two different letters)."""
    while True:
        chars = list(letters)
        rng.shuffle(chars)
        if "".join(chars) != letters:
            return "".join(chars)


def is_usable(word: str, task: str) -> bool:
    """Whether ``word`` can be a question of ``task``: 5 to 14 letters a-z and some transformation differs.

    A palindrome cannot be reversed into something new; anagrams need two different letters in the
    shuffled part (a 5-letter word has a 1-letter middle for ``anagrams2``); a rotation needs two
    different letters.
    """
    check_task(task)
    if not (MIN_LETTERS <= len(word) <= MAX_LETTERS and _WORD.fullmatch(word)):
        return False
    if task == "cycle_letters":
        return len(set(word)) > 1
    if task == "anagrams1":
        return len(set(word[1:-1])) > 1
    if task == "anagrams2":
        return len(set(word[2:-2])) > 1
    if task == "reversed_words":
        return word != word[::-1]
    return True


def transform(word: str, task: str, rng: random.Random) -> str:
    """The question of ``task`` whose answer is ``word`` (never equal to ``word``); draws from ``rng``."""
    if not is_usable(word, task):
        raise ValueError(f"word must be usable for {task} (5 to 14 letters a-z, some transformation "
                         f"differs), got {word!r}")
    if task == "cycle_letters":
        shifts = [s for s in range(1, len(word)) if word[s:] + word[:s] != word]
        s = rng.choice(shifts)
        return word[s:] + word[:s]
    if task == "anagrams1":
        return word[0] + _shuffle_changed(word[1:-1], rng) + word[-1]
    if task == "anagrams2":
        return word[:2] + _shuffle_changed(word[2:-2], rng) + word[-2:]
    if task == "random_insertion":
        return "".join(c + rng.choice(INSERTIONS) for c in word[:-1]) + word[-1]
    return word[::-1]


def usable_words(words: Iterable[str], task: str) -> list[str]:
    """The distinct usable words of ``words`` for ``task``, in their first order."""
    return [w for w in dict.fromkeys(words) if is_usable(w, task)]


def demonstration(question: str, answer: str) -> str:
    """One line of a prompt: ``question = answer`` and a newline."""
    return f"{question}{SEPARATOR}{answer}\n"


def build_prompt(demos: Sequence[tuple[str, str]], query: str, *, description: str | None = None) -> str:
    """The prompt of Figure 2.1: a description line (if any), the demonstrations, then ``query = ``."""
    head = f"{description}\n" if description else ""
    return head + "".join(demonstration(q, a) for q, a in demos) + query + SEPARATOR


def task_prompt(task: str, word: str, demo_words: Sequence[str], rng: random.Random, *,
                description: bool = False) -> tuple[str, str]:
    """``(prompt, answer)`` asking for ``word`` after one demonstration per word of ``demo_words``."""
    demos = [(transform(w, task, rng), w) for w in demo_words]
    text = DESCRIPTIONS[task] if description else None
    return build_prompt(demos, transform(word, task, rng), description=text), word


def longest_prompt(k: int, *, description: bool = True) -> int:
    """Bytes of the longest ``k``-shot prompt plus its answer and newline, over every task and usable word."""
    worst = MAX_LETTERS * "a" + "\n"
    question = (2 * MAX_LETTERS - 1) * "a"  # random insertion doubles a word, less one
    head = max(len(d) for d in DESCRIPTIONS.values()) + 1 if description else 0
    return head + k * len(demonstration(question, worst[:-1])) + len(question + SEPARATOR) + len(worst)


def byte_tokenizer() -> BPETokenizer:
    """A `BPETokenizer` with no merges whose id of each byte is the byte's value: 256 tokens."""
    return BPETokenizer({BYTE_TO_CHAR[b]: b for b in range(256)}, [])


def corpus_words(texts: Iterable[str], *, min_count: int = 3) -> list[str]:
    """Lower-case words of 5 to 14 letters seen at least ``min_count`` times in ``texts``, most frequent first."""
    counts = Counter(w for text in texts for w in re.findall(r"\b[a-z]{5,14}\b", text))
    return [w for w, c in sorted(counts.items(), key=lambda item: (-item[1], item[0])) if c >= min_count]


def split_words(words: Sequence[str], *, eval_every: int = 5) -> tuple[list[str], list[str]]:
    """(training words, evaluation words): every ``eval_every``-th word (by a stable hash) is held out.

    The hash is of the word alone, so the split does not depend on the order or the Python version.
    """
    import hashlib

    held = [int(hashlib.sha256(w.encode()).hexdigest()[:8], 16) % eval_every == 0 for w in words]
    return [w for w, h in zip(words, held, strict=True) if not h], [w for w, h in zip(words, held, strict=True) if h]
