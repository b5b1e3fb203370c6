"""Tests for the repetition penalties of companion.sampling and the decoders that use them.

Oracles: ``transformers``' ``RepetitionPenaltyLogitsProcessor`` and ``NoRepeatNGramLogitsProcessor``
on random logits and token histories, and ``generate`` with ``repetition_penalty`` and
``no_repeat_ngram_size`` on a small randomly initialised ``GPT2LMHeadModel``.
(The temperature, top-k and top-p filters are tested in tests/test_decoding.py.)
"""

from __future__ import annotations

import pytest
import torch
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
)

from companion import metrics
from companion.decoding import beam_search, generated_tokens, greedy_search, sample
from companion.hf_adapter import HFCausalLM
from companion.sampling import min_p_filter, no_repeat_ngram_filter, penalize_repetition

VOCAB = 48


@pytest.fixture(scope="module")
def hf_model():
    torch.manual_seed(1)
    # peaked distributions (initializer_range 0.2) make a random model repeat itself, so the penalties bite
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                     initializer_range=0.2, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config).eval()


def prompts(batch: int, length: int, seed: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


# --- the filters against the transformers processors ---------------------------------------------

@settings(derandomize=True, deadline=None, max_examples=150)
@given(seed=st.integers(0, 10**6), vocab=st.integers(2, 10), time=st.integers(1, 14), n=st.integers(1, 4),
       penalty=st.floats(0.3, 3.0))
def test_penalties_equal_transformers_processors(seed, vocab, time, n, penalty):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, vocab, generator=g) * 3  # positive and negative logits
    previous = torch.randint(0, min(vocab, 4), (3, time), generator=g)  # few distinct ids: n-grams recur
    expected = RepetitionPenaltyLogitsProcessor(float(penalty))(previous, logits.clone())
    assert torch.equal(penalize_repetition(logits, previous, penalty), expected)
    expected = NoRepeatNGramLogitsProcessor(n)(previous, logits.clone())
    assert torch.equal(no_repeat_ngram_filter(logits, previous, n), expected)


def test_penalties_on_a_hand_computed_case():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    previous = torch.tensor([[0, 1, 0]])
    # seen tokens 0 and 1: 2.0 / 2 and -1.0 * 2; unseen ones unchanged
    assert penalize_repetition(logits, previous, 2.0).tolist() == [[1.0, -2.0, 0.5, 3.0]]
    # history 0 1 0 with n = 2: the prefix is "0", which was followed by 1, so 1 is banned
    assert torch.isinf(no_repeat_ngram_filter(logits, previous, 2)).tolist() == [[False, True, False, False]]
    # n = 3: the prefix "1 0" never occurred before, nothing is banned
    assert torch.equal(no_repeat_ngram_filter(logits, previous, 3), logits)
    # n = 1 bans every token seen
    assert torch.isinf(no_repeat_ngram_filter(logits, previous, 1)).tolist() == [[True, True, False, False]]


@settings(derandomize=True, deadline=None, max_examples=150)
@given(seed=st.integers(0, 10**6), vocab=st.integers(1, 12), levels=st.sampled_from([3, 1000]),
       min_p=st.floats(0.0, 1.0), keep=st.integers(1, 4))
def test_min_p_equals_transformers_warper(seed, vocab, levels, min_p, keep):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randint(0, levels, (3, vocab), generator=g).float() / levels * 6 - 3  # levels=3: many ties
    expected = MinPLogitsWarper(min_p, min_tokens_to_keep=keep)(None, logits.clone())
    assert torch.equal(min_p_filter(logits, min_p, keep), expected)


def test_min_p_on_a_hand_computed_case():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    # min_p = 0.3: the cut is 0.3 * 0.5 = 0.15, so 0.15 stays (not below) and 0.05 goes
    assert torch.isinf(min_p_filter(logits, 0.3)).tolist() == [[False, False, False, True]]
    assert torch.isinf(min_p_filter(logits, 0.7)).tolist() == [[False, True, True, True]]
    with pytest.raises(ValueError, match=r"min_p must be in \[0, 1\], got 1.5"):
        min_p_filter(logits, 1.5)


# --- the decoders with penalties against generate ------------------------------------------------

def hf_generate(model, ids: torch.Tensor, **kwargs):
    return model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=0,
                          eos_token_id=None, return_dict_in_generate=True, **kwargs)


@pytest.mark.parametrize("penalty, ngram", [(1.0, 0), (1.3, 0), (1.0, 2), (1.2, 3), (0.8, 0)])
def test_greedy_with_penalties_matches_generate(hf_model, penalty, ngram):
    ids = prompts(4, 5, seed=11)
    expected = hf_generate(hf_model, ids, max_new_tokens=30, repetition_penalty=penalty,
                           no_repeat_ngram_size=ngram)
    sequences, _ = greedy_search(HFCausalLM(hf_model), ids, 30, repetition_penalty=penalty,
                                 no_repeat_ngram_size=ngram)
    assert torch.equal(sequences, expected.sequences)
    # top_k=1 sampling takes the same path through the penalties
    sampled, _ = sample(HFCausalLM(hf_model), ids, 30, top_k=1, repetition_penalty=penalty,
                        no_repeat_ngram_size=ngram, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sampled, sequences)
    if ngram:  # no n-gram occurs twice in prompt + continuation
        for row in sequences.tolist():
            grams = [tuple(row[i:i + ngram]) for i in range(len(row) - ngram + 1)]
            assert len(grams) == len(set(grams))


@pytest.mark.parametrize("num_beams, penalty, ngram", [(3, 1.0, 2), (2, 1.5, 0), (4, 1.2, 3)])
def test_beam_search_with_penalties_matches_generate(hf_model, num_beams, penalty, ngram):
    ids = prompts(3, 4, seed=5)
    expected = hf_generate(hf_model, ids, num_beams=num_beams, max_new_tokens=20, repetition_penalty=penalty,
                           no_repeat_ngram_size=ngram, output_scores=True)
    sequences, scores = beam_search(HFCausalLM(hf_model), ids, num_beams, 20, repetition_penalty=penalty,
                                    no_repeat_ngram_size=ngram)
    assert torch.equal(sequences, expected.sequences)
    torch.testing.assert_close(scores, expected.sequences_scores, rtol=1e-6, atol=1e-6)


def test_the_penalties_make_this_model_repeat_less(hf_model):
    # This random model says the same tokens again and again; each penalty cuts that down.
    ids = prompts(16, 5, seed=3)
    plain, _ = greedy_search(HFCausalLM(hf_model), ids, 40)
    penalized, _ = greedy_search(HFCausalLM(hf_model), ids, 40, repetition_penalty=2.0)
    banned, _ = greedy_search(HFCausalLM(hf_model), ids, 40, no_repeat_ngram_size=2)
    distinct = {name: [sum(metrics.distinct_n([row], n) for row in generated_tokens(seqs, 5)) / 16 for n in (1, 2)]
                for name, seqs in [("plain", plain), ("penalized", penalized), ("banned", banned)]}  # per row
    assert distinct["plain"][1] < 0.8 and distinct["banned"][1] == 1.0  # no bigram twice in a row's text
    assert distinct["penalized"][0] > distinct["plain"][0] + 0.3  # far fewer repeated tokens


def test_bad_penalty_parameters_raise_naming_the_parameter(hf_model):
    ids = prompts(1, 3, seed=0)
    with pytest.raises(ValueError, match=r"repetition_penalty must be a number > 0 \(1.0: no penalty\), got 0"):
        greedy_search(HFCausalLM(hf_model), ids, 3, repetition_penalty=0)
    with pytest.raises(ValueError, match=r"no_repeat_ngram_size must be an int >= 0 \(0: off\), got -1"):
        beam_search(HFCausalLM(hf_model), ids, 2, 3, no_repeat_ngram_size=-1)
    with pytest.raises(ValueError, match=r"n must be an int >= 1, got 0"):
        no_repeat_ngram_filter(torch.zeros(1, 3), ids, 0)
    with pytest.raises(ValueError, match=r"logits must be \(batch, vocab\)"):
        penalize_repetition(torch.zeros(2, 3), ids, 1.2)
