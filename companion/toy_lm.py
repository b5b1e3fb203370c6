"""A language model you can follow by hand: its next-word probabilities are written in a table.

    lm = TableLM({
        "the":     {"cat": 0.5, "dog": 0.4, "end": 0.1},
        "the cat": {"sat": 0.6, "ran": 0.4},
    })
    lm(torch.tensor([lm.encode("the cat")]))   # logits (1, 2, vocab): log-probabilities of the next word

Keys are prefixes (words joined by single spaces, the prompt included); values give the next
word's probabilities. A prefix that the table does not list ends the text: its next word is
``<eos>`` with probability 1. The model is a logits callable like every model in
`companion.decoding`, so greedy search, beam search and sampling run on it unchanged, and
`TableLM.continuations` lists every complete text with its probability, for checking them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from companion.checks import positive_int

EOS = "<eos>"


class TableLM:
    """A language model over words, given as a table ``prefix -> {next word: probability}``."""

    def __init__(self, table: Mapping[str, Mapping[str, float]]) -> None:
        if not isinstance(table, Mapping) or not table:
            raise ValueError("table must be a non-empty mapping from prefixes to {word: probability}")
        self.table: dict[tuple[str, ...], dict[str, float]] = {}
        vocab = [EOS]
        for prefix, probs in table.items():
            words = tuple(prefix.split())
            if not words or " ".join(words) != prefix:
                raise ValueError(f"table keys must be words separated by single spaces, got {prefix!r}")
            if EOS in words:
                raise ValueError(f"table keys must not contain {EOS}, got {prefix!r}")
            if not probs or any(p < 0 for p in probs.values()) or not math.isclose(sum(probs.values()), 1.0,
                                                                                    abs_tol=1e-9):
                raise ValueError(f"table[{prefix!r}] must hold probabilities >= 0 that sum to 1, got {dict(probs)}")
            self.table[words] = dict(probs)
            vocab += [w for w in dict.fromkeys((*words, *probs)) if w not in vocab]  # each word once
        self.vocab = vocab
        self.token_to_id = {word: i for i, word in enumerate(vocab)}
        self.eos_token_id = 0  # <eos> is always id 0
        # One row of log-probabilities per prefix; zero probability is -inf, so a word never appears by rounding.
        self._rows = {prefix: self._log_prob_row(probs) for prefix, probs in self.table.items()}
        self._end_row = self._log_prob_row({EOS: 1.0})

    def __repr__(self) -> str:
        return f"TableLM({len(self.table)} prefixes, vocab_size={self.vocab_size})"

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _log_prob_row(self, probs: Mapping[str, float]) -> torch.Tensor:
        row = torch.full((len(self.vocab),), float("-inf"), dtype=torch.float64)
        for word, p in probs.items():
            if p > 0:
                row[self.token_to_id[word]] = math.log(p)
        return row

    def encode(self, text: str) -> list[int]:
        """Ids of the space-separated words of ``text``; every word must be in the vocabulary."""
        unknown = [w for w in text.split() if w not in self.token_to_id]
        if unknown:
            raise ValueError(f"text has words outside the vocabulary {self.vocab}: {unknown}")
        return [self.token_to_id[w] for w in text.split()]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The words of ``ids`` joined by spaces (``<eos>`` included, so an ending stays visible)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return " ".join(self.vocab[i] for i in ids)

    def next_word_probs(self, prefix: str | Sequence[str]) -> dict[str, float]:
        """The table's row for ``prefix`` (``{<eos>: 1.0}`` if the table does not list it)."""
        words = tuple(prefix.split()) if isinstance(prefix, str) else tuple(prefix)
        return dict(self.table.get(words, {EOS: 1.0}))

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, time, vocab)``: at each position, log-probabilities of the word after it."""
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
            raise ValueError("idx must be a LongTensor of shape (batch, time)")
        out = torch.empty(*idx.shape, self.vocab_size, dtype=torch.float64)
        for b, row in enumerate(idx.tolist()):
            words = [self.vocab[i] for i in row]
            for t in range(len(words)):
                out[b, t] = self._end_row if EOS in words[: t + 1] else self._rows.get(tuple(words[: t + 1]),
                                                                                       self._end_row)
        return out.float().to(idx.device)

    def probability(self, prompt: str, continuation: str) -> float:
        """P(continuation | prompt): the product of the table's probabilities, word by word."""
        words, p = prompt.split(), 1.0
        for word in continuation.split():
            p *= self.next_word_probs(words).get(word, 0.0)
            words.append(word)
        return p

    def continuations(self, prompt: str, max_new_tokens: int) -> list[tuple[str, float]]:
        """Every continuation of ``prompt`` with probability > 0, most probable first.

        A continuation is complete when it ends in ``<eos>`` or has ``max_new_tokens`` words: the
        leaves of the tree that greedy and beam search walk. The probabilities sum to 1.
        """
        positive_int(max_new_tokens, "max_new_tokens")
        self.encode(prompt)
        done, frontier = [], [([], 1.0)]
        while frontier:
            words, p = frontier.pop()
            for word, q in self.next_word_probs(prompt.split() + words).items():
                if q <= 0:
                    continue
                longer = (words + [word], p * q)
                ended = word == EOS or len(longer[0]) == max_new_tokens
                (done if ended else frontier).append(longer)
        # Most probable first; equal probabilities in the order of the words (a stable, readable tie-break).
        return sorted(((" ".join(w), p) for w, p in done), key=lambda item: (-item[1], item[0]))
