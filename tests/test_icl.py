"""Tests for companion.icl: word tasks on hand examples, prompt formats, exact match, shared-prefix scoring."""

from __future__ import annotations

import random

import pytest
import torch

from companion import icl
from companion.gpt import GPT, GPTConfig
from companion.icl_tasks import INSERTIONS

# ------------------------------------------------------------------------------------------------
# The five tasks on hand examples


def test_cycle_letters_rotates():
    question = icl.transform("inevitably", "cycle_letters", random.Random(0))
    assert question != "inevitably" and sorted(question) == sorted("inevitably")
    assert question in {"inevitably"[s:] + "inevitably"[:s] for s in range(1, 10)}


def test_anagrams_keep_their_ends():
    rng = random.Random(1)
    a1 = icl.transform("corruption", "anagrams1", rng)
    assert a1[0] == "c" and a1[-1] == "n" and sorted(a1) == sorted("corruption") and a1 != "corruption"
    a2 = icl.transform("opponent", "anagrams2", rng)
    assert a2[:2] == "op" and a2[-2:] == "nt" and sorted(a2) == sorted("opponent") and a2 != "opponent"


def test_random_insertion_puts_one_symbol_between_letters():
    question = icl.transform("succession", "random_insertion", random.Random(2))
    assert len(question) == 2 * len("succession") - 1
    assert question[0::2] == "succession"
    assert all(c in INSERTIONS for c in question[1::2])
    assert "=" not in question


def test_reversed_words_by_hand():
    assert icl.transform("objects", "reversed_words", random.Random(0)) == "stcejbo"


@pytest.mark.parametrize(("word", "task", "usable"), [
    ("level", "reversed_words", False),      # a palindrome reverses to itself
    ("aaaaaa", "cycle_letters", False),      # every rotation is the word
    ("abbbc", "anagrams1", False),           # the middle has one letter only
    ("abcde", "anagrams2", False),           # a five-letter word has a one-letter middle
    ("abcdef", "anagrams2", True),
    ("four", "random_insertion", False),     # too short
    ("abcdefghijklmno", "reversed_words", False),  # 15 letters: too long
    ("Python", "reversed_words", False),     # not lower-case a-z
    ("objects", "random_insertion", True),
])
def test_usable_words_follow_the_rules(word, task, usable):
    assert icl.is_usable(word, task) is usable
    if not usable:
        with pytest.raises(ValueError, match="usable"):
            icl.transform(word, task, random.Random(0))


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match="task must be one of"):
        icl.is_usable("hello", "spelling")


# ------------------------------------------------------------------------------------------------
# Prompts


def test_prompt_format_with_and_without_description():
    demos = [("stcejbo", "objects"), ("elpmaxe", "example")]
    assert icl.build_prompt(demos, "drowyek") == "stcejbo = objects\nelpmaxe = example\ndrowyek = "
    assert icl.build_prompt([], "drowyek", description="Reverse:") == "Reverse:\ndrowyek = "


def test_task_prompts_follow_the_stated_rules():
    words = ["objects", "example", "level", "cat", "keyword", "strings", "numbers"]
    prompts, answers = icl.task_prompts("reversed_words", 3, words=words, n=20, seed=0)
    assert len(prompts) == 20  # 5 usable words, drawn with replacement
    assert set(answers) <= {"objects", "example", "keyword", "strings", "numbers"}
    for prompt, answer in zip(prompts, answers, strict=True):
        lines = prompt.split("\n")
        assert len(lines) == 4 and lines[-1] == answer[::-1] + " = "
        demo_answers = [line.split(" = ")[1] for line in lines[:-1]]
        assert answer not in demo_answers  # a demonstration word never equals its query word
    # the same queries at every k, so accuracy against k compares like with like
    assert icl.task_prompts("reversed_words", 0, words=words, n=20, seed=0)[1] == answers
    assert icl.task_prompts("reversed_words", 0, words=words, n=3, seed=0)[0][0].count("\n") == 0


def test_task_prompts_reject_too_few_words():
    with pytest.raises(ValueError, match="usable words"):
        icl.task_prompts("reversed_words", 1, words=["level", "objects"], n=5)
    with pytest.raises(ValueError, match="k must be"):
        icl.task_prompts("reversed_words", -1, words=["objects", "example"])


def test_ten_shot_prompt_of_any_usable_word_fits_512_bytes():
    assert icl.longest_prompt(10) <= 512
    rng = random.Random(0)
    longest = "abcdefghijklmn"
    for task in icl.TASKS:
        prompt, answer = icl.task_prompt(task, longest, [longest] * 10, rng, description=True)
        assert len((prompt + answer + "\n").encode()) <= icl.longest_prompt(10)


def test_byte_tokenizer_is_one_token_per_byte():
    tok = icl.byte_tokenizer()
    assert tok.vocab_size == 256
    assert tok.encode("ab = c\n") == list(b"ab = c\n")
    assert tok.decode(list("héllo".encode())) == "héllo"


def test_split_words_is_disjoint_and_stable():
    words = [f"word{c}{d}" for c in "abcdefgh" for d in "abcdefgh"]
    train, held = icl.split_words(words)
    assert not set(train) & set(held) and sorted(train + held) == sorted(words)
    assert icl.split_words(list(reversed(words)))[1] == list(reversed(held))


# ------------------------------------------------------------------------------------------------
# Answers: greedy decoding, exact match, shared-prefix scoring


class Reverser(torch.nn.Module):
    """A hand-built byte model that answers reversed_words perfectly: after ``question = `` it spells the
    question backwards, then a newline. It reads its whole input each time (no cache)."""

    def __init__(self):
        super().__init__()
        self.config = GPTConfig(vocab_size=256, block_size=512)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, ids):
        out = torch.full((*ids.shape, 256), -10.0)
        for b, row in enumerate(ids.tolist()):
            for t in range(len(row)):
                line = bytes(row[: t + 1]).decode(errors="replace").split("\n")[-1]
                if " = " in line:
                    question, written = line.split(" = ", 1)
                    target = question[::-1]
                    nxt = target[len(written)] if len(written) < len(target) else "\n"
                    out[b, t, ord(nxt)] = 10.0
        return out

    def decode_step(self, idx, cache=None):
        """Logits of the new tokens and a 'cache' that is simply every token so far."""
        full = idx if cache is None else torch.cat([cache.ids, idx], dim=1)
        return self(full)[:, -idx.shape[1]:], _Seen(full)


class _Seen:
    def __init__(self, ids):
        self.ids, self.length = ids, ids.shape[1]


def test_greedy_answer_and_exact_match_agree_on_a_hand_built_model():
    model, tok = Reverser(), icl.byte_tokenizer()
    prompt = icl.build_prompt([("stcejbo", "objects")], "drowyek")
    assert icl.greedy_answer(model, tok, prompt) == "keyword"
    assert icl.exact_match(model, tok, [prompt, prompt], ["keyword", "keywords"]) == [True, False]
    # "keywordz": 8 of 9 tokens right (all but the "z": the model wants the newline there, and after it)
    assert icl.answer_token_accuracy(model, tok, [prompt, prompt], ["keyword", "keywordz"]) == (8 + 8) / 17
    words = ["objects", "example", "keyword", "strings", "numbers", "letters"]
    assert icl.word_task_accuracy(model, tok, "reversed_words", 2, words=words, n=10) == 1.0
    assert icl.word_task_accuracy(model, tok, "cycle_letters", 2, words=words, n=10) < 1.0


def _tiny_gpt(position="learned"):
    return GPT(GPTConfig(vocab_size=256, block_size=64, n_layer=2, n_head=2, n_embd=32, position=position),
               seed=0).eval()


def test_exact_match_equals_greedy_decoding_on_a_random_gpt():
    model, tok = _tiny_gpt(), icl.byte_tokenizer()
    prompts = ["abc = ", "hello = ", "xy = z\nab = "]
    # whatever the model writes greedily is, by definition, an exact match; one letter more is not
    answers = [icl.greedy_answer(model, tok, p, max_new_tokens=5) for p in prompts]
    for prompt, answer in zip(prompts, answers, strict=True):
        ids = tok.encode(prompt + answer)
        if len(ids) + 1 < model.config.block_size and "\n" not in answer and len(answer) < 5:
            assert icl.exact_match(model, tok, [prompt], [answer]) == [True]
        assert icl.exact_match(model, tok, [prompt], [answer + "q"]) == [False]


@pytest.mark.parametrize("position", ["learned", "rotary"])  # the shipped byte models are rotary
def test_shared_prefix_scores_equal_full_prompts(position):
    model = _tiny_gpt(position)
    prefix = list(b"ab = ba\ncd = dc\n")
    continuations = [list(b"ef = fe\n"), list(b"x"), list(b"ghi = ihg\n")]
    shared = icl.score_continuations(model, prefix, continuations)
    full = icl.score_full_prompts(model, prefix, continuations, batch_size=2)
    torch.testing.assert_close(shared.logprobs, full.logprobs, atol=1e-4, rtol=1e-4)
    assert torch.equal(shared.greedy, full.greedy)
    assert shared.logprobs[1, 1:].eq(0).all() and shared.greedy[1, 1:].all()
    # by hand: the log-probability of the first continuation's first token after the prefix
    logits = model(torch.tensor([prefix + continuations[0]]))
    manual = torch.log_softmax(logits[0, len(prefix) - 1], -1)[continuations[0][0]]
    assert shared.logprobs[0, 0].item() == pytest.approx(manual.item(), abs=1e-5)


def test_choice_log_likelihoods_prefer_the_likelier_choice():
    model, tok = _tiny_gpt(), icl.byte_tokenizer()
    scores = icl.choice_log_likelihoods(model, tok, "q = ", ["a", "bb"])
    logits = model(torch.tensor([tok.encode("q = ")]))[0, -1].log_softmax(-1)
    assert scores[0] == pytest.approx(logits[ord("a")].item(), abs=1e-5)
    assert scores[1] < 0
    with pytest.raises(ValueError, match="choices"):
        icl.choice_log_likelihoods(model, tok, "q = ", [])


def test_shared_demo_accuracy_matches_per_prompt_exact_match():
    model, tok = _tiny_gpt(), icl.byte_tokenizer()
    assert icl.shared_demo_accuracy(model, tok, "reversed_words", ["objects"], ["keyword", "strings"]) == 0.0
