"""Self-checks for the exercises of the chapter "Beam search" (book/decoding/beam-search.md).

Each check takes the reader's answer, prints whether it is right (with a hint when it is not) and returns
True or False. The answer keys are computed by `companion.decoding` and `companion.toy_lm`, not typed in.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import torch

from companion.decoding import beam_search, greedy_search
from companion.exercises._feedback import as_function, as_number, close, is_number, report
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
        as_number(value, name)
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
    """A model whose next-token logits depend only on the last token: a random (vocab, vocab) table.

    ``eos_bias`` is added to the logit of token 0, the end token of the exercise, so that beams do end.
    """

    def __init__(self, vocab_size: int, seed: int, eos_bias: float = 0.0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.logits = 2.0 * torch.randn(vocab_size, vocab_size, generator=generator)
        self.logits[:, 0] += eos_bias

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        return self.logits[idx]


EOS_ID = 0  # the end token of the random models of exercise 3
LENGTH_PENALTIES = (0.0, 0.5, 1.0, 2.0, -0.5)


def fresh_cases(seed: int | None = None, n: int = 30) -> list[tuple[RandomBigramLM, list[int], int, int, float]]:
    """(model, prompt ids, num_beams, max_new_tokens, length_penalty): new random models at every call."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        vocab = rng.randrange(5, 12)
        model = RandomBigramLM(vocab, rng.randrange(2**31), eos_bias=rng.choice([0.0, 1.0, 2.0]))
        prompt = [rng.randrange(1, vocab) for _ in range(rng.randrange(1, 4))]
        cases.append((model, prompt, rng.randrange(1, 5), rng.randrange(2, 8), rng.choice(LENGTH_PENALTIES)))
    return cases


def reference_answer(model: RandomBigramLM, prompt: list[int], num_beams: int, max_new_tokens: int,
                     length_penalty: float) -> tuple[list[int], float]:
    """What `companion.decoding.beam_search` returns with early_stopping="never": new tokens (eos kept), score."""
    sequences, scores = beam_search(model, torch.tensor([prompt]), num_beams, max_new_tokens, eos_token_id=EOS_ID,
                                    length_penalty=length_penalty, early_stopping="never")
    new = sequences[0, len(prompt):].tolist()
    if EOS_ID in new:
        new = new[: new.index(EOS_ID) + 1]
    return new, scores.item()


def _is_tie(model: RandomBigramLM, prompt: list[int], tokens: list[int], expected: list[int],
            length_penalty: float) -> bool:
    """True if ``tokens`` is another hypothesis with the very score of ``expected`` (a bigram model gives
    reorderings of the same bigrams equal probability, and either may come first)."""
    def score(new: list[int]) -> float:
        ids = torch.tensor([prompt + new])
        log_probs = model(ids[:, :-1]).float().log_softmax(-1)[0, len(prompt) - 1:]
        return log_probs.gather(-1, ids[0, len(prompt):, None]).sum().item() / max(len(new), 1) ** length_penalty

    if not tokens or len(tokens) > len(expected) + 8 or (EOS_ID in tokens[:-1]):
        return False
    return close(score(tokens), score(expected), rel=1e-6, abs_tol=1e-6)


def check_beam_search_with_eos(
    my_beam_search: Callable[[Callable[[torch.Tensor], torch.Tensor], list[int], int, int, int, float],
                             tuple[list[int], float]],
    seed: int | None = None,
) -> bool:
    """Exercise 3: ``my_beam_search(model, prompt_ids, num_beams, max_new_tokens, eos_token_id, length_penalty)``.

    It returns ``(new_tokens, score)``: the generated tokens of the best finished hypothesis (its eos
    included, if it ended with one) and its score ``log P / length ** length_penalty``. Compared with
    `companion.decoding.beam_search(..., early_stopping="never")` on random models made afresh at every
    call (pass ``seed`` to repeat a run).
    """
    as_function(my_beam_search, "my_beam_search(model, prompt_ids, num_beams, max_new_tokens, eos_token_id, "
                                "length_penalty)")
    ended, cases = 0, fresh_cases(seed)
    for model, prompt, num_beams, max_new, alpha in cases:
        expected, expected_score = reference_answer(model, prompt, num_beams, max_new, alpha)
        ended += expected[-1:] == [EOS_ID]
        answer = my_beam_search(model, list(prompt), num_beams, max_new, EOS_ID, alpha)
        setting = f"prompt {prompt}, num_beams={num_beams}, max_new_tokens={max_new}, length_penalty={alpha}"
        if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
            return report(False, "", f"Not quite: return a pair (new_tokens, score); with {setting} you "
                                      f"returned {answer!r}.")
        tokens, score = answer
        tokens = tokens.tolist() if isinstance(tokens, torch.Tensor) else tokens
        if not isinstance(tokens, (list, tuple)) or ([int(t) for t in tokens] != expected and not (
                _is_tie(model, prompt, [int(t) for t in tokens], expected, alpha))):
            return report(False, "", f"Not quite: with {setting} you return the tokens {tokens}, beam search "
                                      f"gives {expected}. Hint: a candidate ending in eos finishes only if it "
                                      "ranks among the num_beams best candidates of its step; the running beams "
                                      "are the num_beams best candidates that did not end; at the last step "
                                      "every candidate ends.")
        if not is_number(score) or not close(float(score), expected_score, rel=1e-4, abs_tol=1e-5):
            return report(False, "", f"Not quite: with {setting} the tokens are right but your score is "
                                      f"{score!r}, not {expected_score:.5f}. Hint: divide the summed "
                                      "log-probability by (number of generated tokens, eos included) ** "
                                      "length_penalty.")
    return report(True, f"Right: your beam search returns what companion.decoding.beam_search returns with "
                         f"early_stopping='never', tokens and scores, on {len(cases)} new random "
                         f"models ({ended} of the best hypotheses ended with eos).", "")
