"""Byte-level Byte Pair Encoding (BPE), trained and applied exactly like Hugging Face `tokenizers`.

Text is cut into pre-tokens with the GPT-2 pattern, each pre-token becomes its UTF-8 bytes, and each
byte is shown as one printable character (GPT-2's byte alphabet, where a space reads "Ġ"). Training
starts from the 256 bytes and keeps merging the most frequent adjacent pair into a new token; encoding
replays the learned merges. Every byte is in the vocabulary, so no text ever needs an unknown token.

The rules, found by experiment against `tokenizers.trainers.BpeTrainer`:
- ids: the special tokens first (in the order given), then the 256 byte characters sorted by code
  point, then each merged token in the order it was learned;
- the most frequent pair wins, and equal counts go to the smaller (left id, right id);
- a pair is counted at every position ("aaa" holds (a, a) twice) but merged left to right without
  overlap ("aaa" -> "aa" "a");
- a merge whose string is already a token (a special token, say) reuses that id and adds no entry;
  training runs until the vocabulary, special tokens included, has `vocab_size` tokens, or until the
  best pair is seen fewer than max(min_frequency, 1) times;
- encoding merges, one at a time, the leftmost occurrence of the earliest-learned pair present.
"""

from __future__ import annotations

import heapq
import json
import operator
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

import regex
from tqdm import tqdm

from companion.files import atomic_write

# GPT-2's split: contractions, letters, digits, other symbols (each may take one leading space), spaces.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_SPLIT = regex.compile(GPT2_SPLIT_PATTERN)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte alphabet: printable Latin-1 bytes stand for themselves, the others get U+0100 onwards."""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {char: byte for byte, char in BYTE_TO_CHAR.items()}


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"text must be encodable as UTF-8, but it holds the lone surrogate "
                         f"{err.object[err.start]!r}") from None


def _check_texts(texts: Iterable[str]) -> None:
    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of strings, not a single str (wrap it in a list)")


def _count_words(texts: Iterable[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"texts must hold strings, got {type(text).__name__}")
        counts.update(_SPLIT.findall(text))
    return counts


def _merge_in_words(pair: str, new: str, positions: Iterable[int], words: list[str], counts: list[int],
                    pair_counts: defaultdict[str, int]) -> dict[str, set[int]]:
    """Merge `pair` into `new` in the words at `positions` and update the counts of the pairs around it.

    Words are strings with one character per token id, so `find` and `replace` run in C. Returns each
    new pair with the words holding it. Like HF, the count of `pair` itself is left alone: it cannot occur
    again.
    """
    first, second = pair
    new_where: defaultdict[str, set[int]] = defaultdict(set)
    for index in positions:
        word = words[index]
        at = word.find(pair)
        if at < 0:
            continue  # an earlier merge took one of its two tokens
        count, end = counts[index], -1
        while at >= 0:
            if at > 0:  # the left neighbour is the new token if the previous occurrence ends here
                left = new if at == end else word[at - 1]
                pair_counts[left + first] -= count
                pair_counts[left + new] += count
                new_where[left + new].add(index)
            end = at + 2
            if end < len(word):  # the right neighbour is not merged yet, even if it starts another pair
                right = word[end]
                pair_counts[second + right] -= count
                pair_counts[new + right] += count
                new_where[new + right].add(index)
            at = word.find(pair, end)
        words[index] = word.replace(pair, new)
    return new_where


class BPETokenizer:
    """A byte-level BPE tokenizer: `train` or `load` one, then `encode`, `decode` and `save`."""

    def __init__(self, vocab: dict[str, int], merges: Iterable[tuple[str, str]],
                 special_tokens: Iterable[str] = ()):
        self._vocab = dict(sorted(vocab.items(), key=lambda item: item[1]))
        self._merges = [tuple(merge) for merge in merges]
        self._special_tokens = tuple(special_tokens)
        self._id_to_token = {i: token for token, i in self._vocab.items()}
        if len(self._id_to_token) < len(self._vocab):
            raise ValueError("vocab must give each token its own id")
        missing = [char for char in BYTE_TO_CHAR.values() if char not in self._vocab]
        if missing:
            raise ValueError(f"vocab must hold all 256 byte characters, it lacks {missing[:5]}")
        unknown = [m for m in self._merges if not {m[0], m[1], m[0] + m[1]} <= self._vocab.keys()]
        if unknown:
            raise ValueError(f"merges must join tokens of the vocab into a token of the vocab, got {unknown[:3]}")
        # (left id, right id) -> (rank, merged id); a pair listed twice keeps its later rank, as in HF.
        self._ranks = {(self._vocab[a], self._vocab[b]): (rank, self._vocab[a + b])
                       for rank, (a, b) in enumerate(self._merges)}
        self._byte_ids = [self._vocab[BYTE_TO_CHAR[byte]] for byte in range(256)]
        # HF decodes a token of byte characters to those bytes, any other token to its own UTF-8.
        self._token_bytes = {i: bytes(CHAR_TO_BYTE[c] for c in token) if set(token) <= CHAR_TO_BYTE.keys()
                             else token.encode("utf-8") for i, token in self._id_to_token.items()}
        # Special tokens are cut out whole before pre-tokenization; where several start, the longest wins.
        longest_first = sorted(set(self._special_tokens), key=len, reverse=True)
        self._special_split = (regex.compile("(" + "|".join(map(regex.escape, longest_first)) + ")")
                               if longest_first else None)
        self._cache: dict[str, list[int]] = {}  # pre-token -> ids

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, *, min_frequency: int = 0,
              special_tokens: Iterable[str] = (), show_progress: bool = True) -> BPETokenizer:
        """Learn merges from `texts` until the vocabulary (special tokens included) has `vocab_size` tokens."""
        _check_texts(texts)
        special_tokens = list(dict.fromkeys(special_tokens))
        vocab: dict[str, int] = {}
        for token in [*special_tokens, *sorted(BYTE_TO_CHAR.values())]:
            vocab.setdefault(token, len(vocab))  # a special token that is a byte character keeps its id
        if not len(vocab) <= vocab_size <= 0x110000:
            raise ValueError(f"vocab_size must be in [{len(vocab)}, {0x110000}] (256 bytes + "
                             f"{len(special_tokens)} special tokens at least), got {vocab_size}")
        if min_frequency < 0:
            raise ValueError(f"min_frequency must be >= 0, got {min_frequency}")
        id_to_token = list(vocab)

        word_counts = _count_words(texts)
        as_chars = {byte: chr(vocab[char]) for byte, char in BYTE_TO_CHAR.items()}
        words = [_utf8(word).decode("latin-1").translate(as_chars) for word in word_counts]
        counts = list(word_counts.values())
        # Every adjacent pair (a two-character string), counted at every position, and the words holding it.
        pair_counts: defaultdict[str, int] = defaultdict(int)
        where: defaultdict[str, set[int]] = defaultdict(set)
        for index, (word, count) in enumerate(zip(words, counts, strict=True)):
            for pair in map(operator.add, word, word[1:]):
                pair_counts[pair] += count
                where[pair].add(index)

        # A max-heap by count, then by smallest pair (two-character strings compare like (left, right) ids).
        # A pair's count only falls after it appears, so an entry popped with an out-of-date count is
        # pushed back with the current one; an up-to-date entry on top is the best pair.
        heap = [(-pair_counts[pair], pair, positions) for pair, positions in where.items()]
        heapq.heapify(heap)
        merges: list[tuple[str, str]] = []
        bar = tqdm(total=vocab_size - len(vocab), desc="BPE merges", unit="merge", disable=not show_progress)
        while len(vocab) < vocab_size and heap:
            neg_count, pair, positions = heapq.heappop(heap)
            count = pair_counts[pair]
            if -neg_count != count:
                heapq.heappush(heap, (-count, pair, positions))
                continue
            if count < max(min_frequency, 1):
                break
            left, right = id_to_token[ord(pair[0])], id_to_token[ord(pair[1])]
            if left + right not in vocab:
                vocab[left + right] = len(id_to_token)
                id_to_token.append(left + right)
                bar.update(1)
            merges.append((left, right))
            new_where = _merge_in_words(pair, chr(vocab[left + right]), positions, words, counts, pair_counts)
            for new_pair, new_positions in new_where.items():
                if pair_counts[new_pair] > 0:
                    heapq.heappush(heap, (-pair_counts[new_pair], new_pair, new_positions))
        bar.close()
        return cls(vocab, merges, special_tokens)

    def _encode_word(self, word: str) -> list[int]:
        """BPE of one pre-token: merge the leftmost occurrence of the lowest-ranked pair until none is left."""
        ids = [self._byte_ids[byte] for byte in _utf8(word)]
        ranks = self._ranks
        while len(ids) > 1:
            best = None
            for i, pair in enumerate(zip(ids, ids[1:], strict=False)):
                found = ranks.get(pair)
                if found is not None and (best is None or found[0] < best[0]):
                    best, at = found, i
            if best is None:
                break
            ids[at:at + 2] = [best[1]]
        self._cache[word] = ids
        return ids

    def _encode_ordinary(self, text: str, out: list[int]) -> None:
        cache, encode_word = self._cache, self._encode_word
        for word in _SPLIT.findall(text):
            ids = cache.get(word)
            out.extend(encode_word(word) if ids is None else ids)

    def encode(self, text: str) -> list[int]:
        """The token ids of `text`; special-token strings in it become their ids."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        out: list[int] = []
        if self._special_split is None:
            self._encode_ordinary(text, out)
            return out
        for n, piece in enumerate(self._special_split.split(text)):
            if n % 2:  # split() puts the matched special tokens at the odd places
                out.append(self._vocab[piece])
            elif piece:
                self._encode_ordinary(piece, out)
        return out

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        """`encode` of each text."""
        _check_texts(texts)
        return [self.encode(text) for text in texts]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; special tokens are kept and invalid UTF-8 becomes U+FFFD, as in HF."""
        try:
            data = b"".join([self._token_bytes[i] for i in ids])
        except KeyError as err:
            raise ValueError(f"ids must be token ids in [0, {self.vocab_size}), got {err.args[0]!r}") from None
        return data.decode("utf-8", errors="replace")

    def tokens(self, text: str) -> list[str]:
        """The byte-level strings of the tokens of `text` (a space shows as "Ġ")."""
        return [self._id_to_token[i] for i in self.encode(text)]

    @property
    def vocab_size(self) -> int:
        """Number of tokens, special tokens included."""
        return len(self._vocab)

    @property
    def vocab(self) -> dict[str, int]:
        """Token string -> id, in id order (a copy)."""
        return dict(self._vocab)

    @property
    def merges(self) -> list[tuple[str, str]]:
        """The learned merges as (left, right) byte-level strings, earliest first (a copy)."""
        return list(self._merges)

    @property
    def special_tokens(self) -> tuple[str, ...]:
        return self._special_tokens

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self._merges)})"

    def save(self, path: str | os.PathLike) -> None:
        """Write a HF `tokenizer.json` that `tokenizers.Tokenizer.from_file` loads and encodes identically."""
        atomic_write(path, self.to_json())

    def to_json(self) -> str:
        """The text of the HF `tokenizer.json` that `save` writes."""
        byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
        added = [{"id": self._vocab[token], "content": token, "single_word": False, "lstrip": False,
                  "rstrip": False, "normalized": False, "special": True} for token in self._special_tokens]
        model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                 "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                 "vocab": self._vocab, "merges": [list(merge) for merge in self._merges]}
        data = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
                "pre_tokenizer": byte_level, "post_processor": None, "decoder": byte_level, "model": model}
        return json.dumps(data, ensure_ascii=False, indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BPETokenizer:
        """Read a HF `tokenizer.json`; a ValueError names each feature in it that this class lacks."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"), source=str(path))

    @classmethod
    def from_json(cls, text: str, *, source: str = "tokenizer.json") -> BPETokenizer:
        """Parse the text of a HF `tokenizer.json` (``source`` names it in error messages)."""
        data = json.loads(text)
        problems = _unsupported_features(data)
        if problems:
            raise ValueError(f"{source} uses tokenizer.json features BPETokenizer does not implement: "
                             + "; ".join(problems))
        vocab = dict(data["model"]["vocab"])
        added = data.get("added_tokens") or []
        for token in added:
            if vocab.setdefault(token["content"], token["id"]) != token["id"]:
                raise ValueError(f"added token {token['content']!r} has id {token['id']}, "
                                 f"the vocab gives it {vocab[token['content']]}")
        # Newer files list a merge as [left, right], older ones as "left right".
        merges = [m if isinstance(m, list) else m.split(" ", 1) for m in data["model"].get("merges", [])]
        return cls(vocab, merges, [token["content"] for token in added])


def _unsupported_features(data: dict) -> list[str]:
    """The settings of a tokenizer.json under which HF's ids or text would differ from ours."""
    problems = []
    model = data.get("model") or {}
    if model.get("type", "BPE") != "BPE":
        problems.append(f"model type {model.get('type')!r} (only BPE)")
    # unk_token and byte_fallback only act on characters missing from the vocab; we require all 256 bytes.
    for key in ("dropout", "continuing_subword_prefix", "end_of_word_suffix", "ignore_merges"):
        if model.get(key):
            problems.append(f"model {key}={model[key]!r}")
    for key in ("normalizer", "truncation", "padding"):
        if data.get(key):
            problems.append(f"{key} {data[key].get('type', data[key])!r}")
    pre = data.get("pre_tokenizer") or {}
    if pre.get("type") != "ByteLevel":
        problems.append(f"pre_tokenizer {pre.get('type')!r} (only ByteLevel)")
    if pre.get("add_prefix_space") or not pre.get("use_regex", True):
        problems.append("pre_tokenizer add_prefix_space=True or use_regex=False")
    for key in ("post_processor", "decoder"):  # a ByteLevel post-processor only trims offsets
        if data.get(key) and data[key].get("type") != "ByteLevel":
            problems.append(f"{key} {data[key].get('type')!r} (only ByteLevel)")
    added = data.get("added_tokens") or []
    for token in added:
        for key in ("single_word", "lstrip", "rstrip"):
            if token.get(key):
                problems.append(f"added token {token.get('content')!r} with {key}=True")
    if len({bool(token.get("normalized")) for token in added}) > 1:
        problems.append("added tokens with both normalized=True and normalized=False (HF splits them in two passes)")
    return problems
