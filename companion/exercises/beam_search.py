"""Self-checks for the exercises of the chapter "Beam search" (book/decoding/beam-search.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed by `companion.decoding` and `companion.toy_lm`, not typed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from companion.decoding import beam_search, greedy_search
from companion.exercises._feedback import report
from companion.toy_lm import TableLM

# Exercise 1: greedy search, beam search (2 beams) and the most probable text, by hand on this table.
EXERCISE_PROMPT = "I"
EXERCISE_TABLE = {
    "I": {"like": 0.6, "love": 0.4},
    "I like": {"it": 0.4, "tea": 0.35, "you": 0.25},
    "I love": {"you": 0.8, "tea": 0.2},
    "I like it": {"here": 0.6, "now": 0.4},
    "I like tea": {"too": 1.0},
    "I like you": {"too": 1.0},
    "I love you": {"too": 0.6, "all": 0.4},
    "I love tea": {"too": 1.0},
}
EXERCISE_WORDS = 3  # words to generate; every text in the table ends after three

# Exercise 2: two finished hypotheses, given as the probability of each generated token (<eos> included).
SHORT_HYPOTHESIS = ("no <eos>", (0.5, 0.8))
LONG_HYPOTHESIS = ("not that one <eos>", (0.3, 0.9, 0.9, 0.8))
EXERCISE_LENGTH_PENALTY = 1.0


def exercise_model() -> TableLM:
    """The table of exercise 1 as a language model."""
    return TableLM(EXERCISE_TABLE)


# ------------------------------------------------------------------------------------------------ exercise 1
def _decoded(lm: TableLM, sequences: torch.Tensor, prompt_length: int) -> str:
    return lm.decode(sequences[0, prompt_length:])


def exercise_answers() -> tuple[str, str, str]:
    """(greedy, 2-beam search, most probable) continuations of `EXERCISE_PROMPT`, by companion's own code."""
    lm = exercise_model()
    ids = torch.tensor([lm.encode(EXERCISE_PROMPT)])
    greedy, _ = greedy_search(lm, ids, EXERCISE_WORDS)
    beam, _ = beam_search(lm, ids, 2, EXERCISE_WORDS)
    best = lm.continuations(EXERCISE_PROMPT, EXERCISE_WORDS)[0][0]
    return _decoded(lm, greedy, ids.size(1)), _decoded(lm, beam, ids.size(1)), best


def _words(answer: object, name: str) -> str:
    if not isinstance(answer, str):
        raise TypeError(f"{name} must be a string of words such as 'like it here', got {type(answer).__name__}")
    words = answer.split()
    if words[:1] == EXERCISE_PROMPT.split():  # accept the text with its prompt, too
        words = words[1:]
    return " ".join(words)


def check_by_hand(greedy: str, beam: str, best: str) -> bool:
    """Exercise 1: the words greedy search and 2-beam search add after `EXERCISE_PROMPT`, and the most probable."""
    greedy, beam, best = _words(greedy, "greedy"), _words(beam, "beam"), _words(best, "best")
    lm = exercise_model()
    expected_greedy, expected_beam, expected_best = exercise_answers()
    p = {text: lm.probability(EXERCISE_PROMPT, text) for text in (expected_greedy, expected_beam, expected_best)}
    if greedy != expected_greedy:
        return report(False, "", f"Not quite: greedy search gives something else than {greedy!r}. Hint: at "
                                  "each step take the single most probable next word, even if a less probable "
                                  "word now leads to more probable words later.")
    if beam != expected_beam:
        return report(False, "", f"Not quite: greedy is right, but beam search gives something else than {beam!r}. "
                                  "Hint: after each step keep the 2 prefixes with the largest *product* of "
                                  "probabilities, over all extensions of both beams.")
    if best != expected_best:
        return report(False, "", f"Not quite: greedy and beam search are right, but {best!r} is not the most probable text. "
                                  "Hint: multiply the probabilities along every path of the tree (there are "
                                  f"only {len(lm.continuations(EXERCISE_PROMPT, EXERCISE_WORDS))}) and compare; beam search need "
                                  "not find the best one.")
    return report(True, f"Right: greedy says {expected_greedy!r} (probability {p[expected_greedy]:.3f}), beam "
                         f"search {expected_beam!r} ({p[expected_beam]:.3f}), and the most probable text is "
                         f"{expected_best!r} ({p[expected_best]:.3f}): two beams were still too few to keep its "
                         "prefix alive.", "")


# ------------------------------------------------------------------------------------------------ exercise 2
def length_penalised_score(token_probs: tuple[float, ...], length_penalty: float) -> float:
    """What beam search ranks by: sum of log-probabilities / (number of generated tokens) ** length_penalty."""
    return sum(math.log(p) for p in token_probs) / len(token_probs) ** length_penalty


def check_scores(short: float, long: float) -> bool:
    """Exercise 2: the scores of `SHORT_HYPOTHESIS` and `LONG_HYPOTHESIS` with `EXERCISE_LENGTH_PENALTY`."""
    for name, value in (("short", short), ("long", long)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number (a score), got {type(value).__name__}")
    expected = {name: length_penalised_score(probs, EXERCISE_LENGTH_PENALTY)
                for name, (_, probs) in (("short", SHORT_HYPOTHESIS), ("long", LONG_HYPOTHESIS))}
    given = {"short": float(short), "long": float(long)}
    wrong = [name for name in given if abs(given[name] - expected[name]) > 1e-3]
    if not wrong:
        winner = max(expected, key=expected.get)
        raw = {name: math.log(math.prod(probs)) for name, (_, probs) in
               (("short", SHORT_HYPOTHESIS), ("long", LONG_HYPOTHESIS))}
        return report(True, f"Right: short {expected['short']:.4f}, long {expected['long']:.4f}, so beam search "
                             f"returns the {winner} one. Without the penalty (length_penalty=0) the log-"
                             f"probabilities {raw['short']:.4f} and {raw['long']:.4f} pick the short one.", "")
    name = wrong[0]
    text = (SHORT_HYPOTHESIS if name == "short" else LONG_HYPOTHESIS)[0]
    return report(False, "", f"Not quite: the {name} score ({given[name]:.4f}) is off. Hint: add the natural "
                              f"logs of the token probabilities of {text!r} (<eos> counts as a token), then "
                              f"divide by the number of tokens to the power {EXERCISE_LENGTH_PENALTY}.")


# ------------------------------------------------------------------------------------------------ exercise 3
class RandomBigramLM:
    """A model whose next-token logits depend only on the last token: a random (vocab, vocab) table."""

    def __init__(self, vocab_size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.logits = 2.0 * torch.randn(vocab_size, vocab_size, generator=generator)

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        return self.logits[idx]


def _test_cases() -> list[tuple[Callable[[torch.Tensor], torch.Tensor], list[int], int, int]]:
    """(model, prompt ids, num_beams, steps): the chapter's style of table plus random bigram models."""
    table = TableLM(EXERCISE_TABLE)
    cases = [(table, table.encode(EXERCISE_PROMPT), 2, 3), (table, table.encode(EXERCISE_PROMPT), 1, 3)]
    for seed in range(6):
        model = RandomBigramLM(vocab_size=7 + seed, seed=seed)
        cases.append((model, [seed % 5, (seed + 2) % 5], 1 + seed % 4, 3 + seed % 3))
    return cases


def check_beam_search(my_beam_search: Callable) -> bool:
    """Exercise 3: ``my_beam_search(model, prompt_ids, num_beams, steps)`` -> the best ``steps`` new token ids.

    No eos: every hypothesis has exactly ``steps`` new tokens, so the score is the sum of log-probabilities.
    Compared with `companion.decoding.beam_search` on the exercise table and on random bigram models.
    """
    if not callable(my_beam_search):
        raise TypeError("my_beam_search must be a function my_beam_search(model, prompt_ids, num_beams, steps)")
    for model, prompt, num_beams, steps in _test_cases():
        ids = torch.tensor([prompt])
        expected = beam_search(model, ids, num_beams, steps)[0][0, len(prompt):].tolist()
        got = my_beam_search(model, list(prompt), num_beams, steps)
        got = got.tolist() if isinstance(got, torch.Tensor) else got
        if not isinstance(got, (list, tuple)) or [int(t) for t in got] != expected:
            return report(False, "", f"Not quite: with prompt {prompt}, num_beams={num_beams}, steps={steps} "
                                      f"you return {got}, beam search gives {expected}. Hint: return only the "
                                      "new tokens; score a prefix by its summed log_softmax, extend every kept "
                                      "prefix by every token, keep the num_beams best, and start from one beam.")
    return report(True, "Right: your beam search returns what companion.decoding.beam_search returns, on the "
                         "table and on random models, for 1 to 4 beams.", "")
