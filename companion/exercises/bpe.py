"""Self-checks for the exercises of the chapter "Byte Pair Encoding (BPE)" (book/tokenization/bpe.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed by `companion.bpe` itself, not typed in, so a check can never
disagree with the tokenizer the chapter studies.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from companion.bpe import BYTE_TO_CHAR, BPETokenizer
from companion.exercises._feedback import report

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
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise TypeError(f"answer must be an int (a number of tokens), got {type(answer).__name__}")
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
def reference_merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids` by `new_id`, left to right and without overlap."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def encode_with_merge(merge: Callable[[list[int], tuple[int, int], int], list[int]],
                      tokenizer: BPETokenizer, word: str) -> list[int]:
    """Encode one word by starting from its bytes and applying the tokenizer's merges in the order learned."""
    vocab = tokenizer.vocab
    ids = [vocab[BYTE_TO_CHAR[b]] for b in word.encode()]
    for a, b in tokenizer.merges:
        ids = merge(list(ids), (vocab[a], vocab[b]), vocab[a + b])
    return list(ids)


def _merge_cases() -> list[tuple[list[int], tuple[int, int], int]]:
    cases = [
        ([1, 2, 3, 1, 2], (1, 2), 9),     # two occurrences
        ([5, 5, 5], (5, 5), 7),           # overlap: the leftmost pair wins, "aaa" -> "aa" "a"
        ([5, 5, 5, 5], (5, 5), 7),        # two pairs side by side
        ([1, 2, 3], (3, 4), 9),           # no occurrence
        ([3, 1, 2], (1, 2), 9),           # at the end
        ([], (1, 2), 9),                  # empty
        ([1], (1, 2), 9),                 # too short to hold a pair
    ]
    rng = random.Random(0)
    for _ in range(40):
        ids = [rng.randrange(4) for _ in range(rng.randrange(12))]
        cases.append((ids, (rng.randrange(4), rng.randrange(4)), 4))
    return cases


def check_merge(merge: Callable[[list[int], tuple[int, int], int], list[int]]) -> bool:
    """Exercise 3: `merge(ids, pair, new_id)`; tried on small cases, then used to encode words like companion.bpe."""
    if not callable(merge):
        raise TypeError(f"merge must be a function merge(ids, pair, new_id), got {type(merge).__name__}")
    for ids, pair, new_id in _merge_cases():
        expected = reference_merge(ids, pair, new_id)
        got = merge(list(ids), pair, new_id)
        if not isinstance(got, (list, tuple)):
            return report(False, "", f"Not quite: merge must return a list of ints, it returned "
                                      f"{type(got).__name__} for merge({ids}, {pair}, {new_id}).")
        if list(got) != expected:
            return report(False, "", f"Not quite: merge({ids}, {pair}, {new_id}) returned {list(got)}, "
                                      f"expected {expected}. Hint: scan left to right; after replacing a "
                                      "pair, skip both of its elements so pairs never overlap.")
    tokenizer = toy_tokenizer()
    for word in ["tank", "plant", "antan", "planktan", "tantan"]:
        got, expected = encode_with_merge(merge, tokenizer, word), tokenizer.encode(word)
        if got != expected:
            return report(False, "", f"Not quite: replaying the merges with your function encodes {word!r} "
                                      f"as {got}, companion.bpe gives {expected}.")
    return report(True, "Right: your merge passes the edge cases (overlaps, empty, no match), and replaying "
                         "the learned merges with it encodes words exactly as companion.bpe does.", "")


# ------------------------------------------------------------------------------------------------ exercise 4
def check_merge_count(answer: int) -> bool:
    """Exercise 4: merges learned with `MERGE_COUNT_VOCAB_SIZE` and `MERGE_COUNT_SPECIAL_TOKENS`."""
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise TypeError(f"answer must be an int (a number of merges), got {type(answer).__name__}")
    specials = len(MERGE_COUNT_SPECIAL_TOKENS)
    expected = MERGE_COUNT_VOCAB_SIZE - len(BYTE_TO_CHAR) - specials
    return report(
        answer == expected,
        f"Right: {MERGE_COUNT_VOCAB_SIZE} = {len(BYTE_TO_CHAR)} bytes + {specials} special tokens + "
        f"{expected} merged tokens, one per merge rule.",
        f"Not quite (you said {answer}). Hint: the vocabulary size counts everything: the byte alphabet, "
        "the special tokens, and one new token per merge.",
    )
