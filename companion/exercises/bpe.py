"""Self-checks for the exercises of the chapter "Byte Pair Encoding (BPE)" (book/tokenization/bpe.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed by `companion.bpe` itself, not typed in, so a check can never
disagree with the tokenizer the chapter studies.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from companion.bpe import BYTE_TO_CHAR, BPETokenizer
from companion.exercises._feedback import as_function, as_int, report

# Exercise 1: a toy corpus given as word counts; the reader finds its first merges by hand.
EXERCISE_WORD_COUNTS = {"tan": 5, "tank": 4, "plank": 3, "plan": 2, "ant": 6}
FIRST_MERGES = 3

# Exercise 2: how many byte-level tokens this text takes before any merge is learned.
KOREAN_BYTES_TEXT = "한국어 BPE"

# Exercise 4: a tokenizer trained with this budget on a large corpus.
MERGE_COUNT_VOCAB_SIZE = 1000
MERGE_COUNT_SPECIAL_TOKENS = ("<|endoftext|>", "<pad>")


def word_count_texts(word_counts: dict[str, int]) -> list[str]:
    """One text per occurrence of each word, so BPE sees exactly these word counts (no spaces, no "Ġ")."""
    return [word for word, count in word_counts.items() for _ in range(count)]


def toy_tokenizer(word_counts: dict[str, int] | None = None, merges: int = 64) -> BPETokenizer:
    """A `BPETokenizer` trained on a dictionary of word counts (the exercise corpus by default)."""
    texts = word_count_texts(EXERCISE_WORD_COUNTS if word_counts is None else word_counts)
    return BPETokenizer.train(texts, 256 + merges, show_progress=False)


# ------------------------------------------------------------------------------------------------ exercise 1
def _as_pairs(answer: object) -> list[tuple[str, str]]:
    """Accept [("a", "n"), ...] or ["a n", ...]; anything else is a TypeError that says what to pass."""
    if isinstance(answer, str) or not isinstance(answer, Sequence):
        raise TypeError("answer must be a list of pairs such as [('a', 'n'), ('t', 'an')]")
    pairs = []
    for item in answer:
        if isinstance(item, str) and len(item.split()) == 2:
            item = tuple(item.split())
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(s, str) for s in item)):
            raise TypeError(f"answer must be a list of pairs such as [('a', 'n'), ('t', 'an')], got item {item!r}")
        pairs.append((item[0], item[1]))
    return pairs


def check_first_merges(answer: Sequence[tuple[str, str]]) -> bool:
    """Exercise 1: the first three merges learned from `EXERCISE_WORD_COUNTS`, in order."""
    given = _as_pairs(answer)
    expected = toy_tokenizer(merges=FIRST_MERGES).merges
    if given == expected:
        steps = ", then ".join(f"{a!r} + {b!r}" for a, b in expected)
        return report(True, f"Right: {steps}. Each merge changes the pairs around it, so count again after "
                             "every merge.", "")
    if len(given) != len(expected):
        return report(False, "", f"Not quite: give exactly {len(expected)} merges, you gave {len(given)}.")
    first_wrong = next(n for n, (g, e) in enumerate(zip(given, expected, strict=True)) if g != e)
    return report(False, "", f"Not quite: merge {first_wrong + 1} is wrong ({given[first_wrong]!r}). Hint: "
                              "after each merge, rewrite every word with the new symbol and count the "
                              "adjacent pairs again, weighting each pair by its word's count.")


# ------------------------------------------------------------------------------------------------ exercise 2
def check_korean_bytes(answer: int) -> bool:
    """Exercise 2: the number of tokens `KOREAN_BYTES_TEXT` takes when no merge has been learned yet."""
    as_int(answer, "answer")
    data = KOREAN_BYTES_TEXT.encode()
    hangul = [ch for ch in KOREAN_BYTES_TEXT if "\uac00" <= ch <= "\ud7a3"]
    return report(
        answer == len(data),
        f"Right: {len(data)} tokens, one per UTF-8 byte: each of the {len(hangul)} Hangul syllables takes "
        f"{len(hangul[0].encode())} bytes, and the space and each Latin letter take one.",
        f"Not quite (you said {answer}). Hint: with no merges every token is one byte. How many bytes does "
        "UTF-8 use for a character between U+0800 and U+FFFF, and where do the Hangul syllables lie?",
    )


# ------------------------------------------------------------------------------------------------ exercise 3
# The tokenizer of the encode exercise is trained on these sentences; the texts it is checked on are new.
ENCODE_CORPUS = (
    "the tokenizer learns the merges from the text, then it encodes new text with the merges",
    "a token is a piece of a word; the pieces of the words are tokens",
    "the lower the rank of a merge, the earlier it was learned and the earlier it is applied",
    "newer, newest, lower, lowest, wider, widest: the endings are shared between words",
    "encoding 2024 tokens, decoding 42 of them again",
)
ENCODE_MERGES = 160


def encode_tokenizer() -> BPETokenizer:
    """The tokenizer whose merges `check_encode` hands to the reader's `encode`."""
    return BPETokenizer.train(list(ENCODE_CORPUS), 256 + ENCODE_MERGES, show_progress=False)


def fresh_texts(seed: int | None = None, n: int = 40) -> list[str]:
    """New texts: words of the corpus cut and glued in new ways, numbers, punctuation and Hangul."""
    rng = random.Random(seed)
    words = sorted({w.strip(",.:;") for line in ENCODE_CORPUS for w in line.split()} - {""})
    texts = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randrange(1, 8)):
            kind = rng.random()
            if kind < 0.45:
                parts.append(rng.choice(words))
            elif kind < 0.8:  # a new word made of the pieces of two corpus words
                a, b = rng.choice(words), rng.choice(words)
                parts.append(a[: rng.randrange(1, len(a) + 1)] + b[rng.randrange(len(b)):])
            elif kind < 0.9:
                parts.append(str(rng.randrange(10 ** rng.randrange(1, 6))))
            else:
                parts.append(rng.choice(["토큰", "병합", "단어", "new😀", "wide-r", "low's"]))
        sep = rng.choice([" ", " ", "  ", ", ", "\n"])
        texts.append(sep.join(parts) + rng.choice(["", ".", "!", " "]))
    return texts


def check_encode(encode: Callable[[str, list[tuple[str, str]]], list[str]], seed: int | None = None) -> bool:
    """Exercise 3: ``encode(text, merges)`` -> the byte-level token strings of ``text``, as companion.bpe gives.

    ``merges`` are the (left, right) pairs of `encode_tokenizer`, earliest first. Each call tries new texts
    (pass ``seed`` to repeat a run).
    """
    as_function(encode, "encode(text, merges)")
    tokenizer = encode_tokenizer()
    merges = tokenizer.merges
    for text in ["", "the", " lowest", "newer tokens", "aaa", *fresh_texts(seed)]:
        expected = tokenizer.tokens(text)
        got = encode(text, list(merges))
        if not isinstance(got, (list, tuple)) or list(got) != expected:
            return report(False, "", f"Not quite: encode({text!r}) returned {got!r}, companion.bpe gives "
                                      f"{expected}. Hint: cut the text with GPT2_SPLIT_PATTERN, spell each "
                                      "piece with BYTE_TO_CHAR, then keep merging the adjacent pair whose merge "
                                      "was learned earliest (the lowest rank), wherever it is in the piece.")
    return report(True, "Right: your encode gives companion.bpe's tokens on every text, new words, numbers "
                         "and Hangul included.", "")


# ------------------------------------------------------------------------------------------------ exercise 4
def check_merge_count(answer: int) -> bool:
    """Exercise 4: merges learned with `MERGE_COUNT_VOCAB_SIZE` and `MERGE_COUNT_SPECIAL_TOKENS`."""
    as_int(answer, "answer")
    specials = len(MERGE_COUNT_SPECIAL_TOKENS)
    expected = MERGE_COUNT_VOCAB_SIZE - len(BYTE_TO_CHAR) - specials
    return report(
        answer == expected,
        f"Right: {MERGE_COUNT_VOCAB_SIZE} = {len(BYTE_TO_CHAR)} bytes + {specials} special tokens + "
        f"{expected} merged tokens, one per merge rule.",
        f"Not quite (you said {answer}). Hint: the vocabulary size counts everything: the byte alphabet, "
        "the special tokens, and one new token per merge.",
    )
