"""Tests for companion.decoding and companion.sampling.

Oracles: ``transformers``' ``generate`` (beam search and greedy search) on a small randomly
initialised ``GPT2LMHeadModel``, its logits warpers for the filters, and exact probabilities
with a chi-square bound for sampling.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
import transformers  # noqa: E402  (the oracle must be there: a skip would hide that it never ran)
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.generation.logits_process import (  # noqa: E402
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from companion.decoding import (
    beam_search,
    generated_tokens,
    greedy_search,
    sample,
    temperature_scale,
    token_log_probs,
    top_k_filter,
    top_p_filter,
)
from companion.gpt import GPT, GPTConfig
from companion.hf_adapter import HFCausalLM

VOCAB = 64
EOS = 0  # this random model emits token 0 often, so beams do end early


@pytest.fixture(scope="module")
def hf_model():
    torch.manual_seed(0)
    # initializer_range 0.2 (GPT-2 uses 0.02) makes the next-token distributions peaked, as in a trained model
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                     initializer_range=0.2, bos_token_id=EOS, eos_token_id=EOS)
    return transformers.GPT2LMHeadModel(config).eval()


def prompts(batch: int, length: int, seed: int) -> torch.Tensor:
    return torch.randint(1, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def hf_generate(model, ids: torch.Tensor, **kwargs):
    return model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, eos_token_id=EOS,
                          pad_token_id=EOS, return_dict_in_generate=True, **kwargs)


# --- beam search and greedy search against generate ----------------------------------------------

BEAM_GRID = [  # (batch, num_beams, length_penalty, early_stopping, num_return_sequences, max_new_tokens)
    (b, nb, lp, es, nrs, new)
    for (b, nb, lp, es), nrs, new in itertools.product(
        [(3, 2, 1.0, False), (2, 3, 0.0, True), (3, 4, -0.5, "never"), (1, 4, 2.0, False), (2, 2, 2.0, "never"),
         (3, 3, 1.0, True), (2, 4, 0.0, "never"), (3, 2, -0.5, False), (2, 3, 1.0, "never"), (2, 4, 2.0, True)],
        [1, 2], [5, 14])
]


def test_beam_search_matches_generate_over_a_grid(hf_model):
    ended_early = 0
    for i, (batch, num_beams, lp, es, nrs, new) in enumerate(BEAM_GRID):
        ids = prompts(batch, 4, seed=i)
        expected = hf_generate(hf_model, ids, num_beams=num_beams, length_penalty=lp, early_stopping=es,
                               num_return_sequences=nrs, max_new_tokens=new, output_scores=True)
        sequences, scores = beam_search(HFCausalLM(hf_model), ids, num_beams, new, eos_token_id=EOS,
                                        length_penalty=lp, early_stopping=es, num_return_sequences=nrs)
        setting = f"batch={batch} num_beams={num_beams} lp={lp} early_stopping={es} nrs={nrs} new={new}"
        assert torch.equal(sequences, expected.sequences), setting
        torch.testing.assert_close(scores, expected.sequences_scores, rtol=1e-6, atol=1e-6, msg=setting)
        ended_early += int((sequences[:, 4:-1] == EOS).any(dim=1).sum())
    assert ended_early >= 15  # the grid really exercises hypotheses that end with eos


@pytest.mark.parametrize("seed, batch, num_beams, lp", [(5, 3, 2, 1.0), (26, 3, 4, 1.0), (15, 2, 2, 2.0)])
def test_early_stopping_false_and_never_differ_as_in_generate(hf_model, seed, batch, num_beams, lp):
    # prompts where stopping on the current-length guess (False) loses a hypothesis that "never" finds
    ids = prompts(batch, 4, seed=seed)
    results = {}
    for es in (False, "never"):
        expected = hf_generate(hf_model, ids, num_beams=num_beams, length_penalty=lp, early_stopping=es,
                               max_new_tokens=14, output_scores=True)
        sequences, scores = beam_search(HFCausalLM(hf_model), ids, num_beams, 14, eos_token_id=EOS,
                                        length_penalty=lp, early_stopping=es)
        assert torch.equal(sequences, expected.sequences), es
        torch.testing.assert_close(scores, expected.sequences_scores, rtol=1e-6, atol=1e-6)
        results[es] = scores
    assert torch.all(results["never"] >= results[False]) and torch.any(results["never"] > results[False])


def test_beam_search_recomputing_the_prefix_matches_generate(hf_model):
    # Without a cache the logits differ from generate's in the last bits only.
    for i, (batch, num_beams, lp, es, nrs, new) in enumerate(BEAM_GRID[::4]):
        ids = prompts(batch, 4, seed=100 + i)
        expected = hf_generate(hf_model, ids, num_beams=num_beams, length_penalty=lp, early_stopping=es,
                               num_return_sequences=nrs, max_new_tokens=new, output_scores=True)
        sequences, scores = beam_search(HFCausalLM(hf_model, use_cache=False), ids, num_beams, new,
                                        eos_token_id=EOS, length_penalty=lp, early_stopping=es,
                                        num_return_sequences=nrs)
        assert torch.equal(sequences, expected.sequences)
        torch.testing.assert_close(scores, expected.sequences_scores, rtol=1e-5, atol=1e-5)


def test_greedy_matches_generate_and_scores_are_summed_log_probs(hf_model):
    ids = prompts(6, 5, seed=7)
    expected = hf_generate(hf_model, ids, max_new_tokens=20, output_logits=True)
    for use_cache in (True, False):
        sequences, scores = greedy_search(HFCausalLM(hf_model, use_cache=use_cache), ids, 20, eos_token_id=EOS)
        assert torch.equal(sequences, expected.sequences)
    new = sequences[:, 5:]
    assert (new == EOS).any(dim=1).sum() >= 2  # some rows end early and are padded
    log_probs = torch.stack([F.log_softmax(step, dim=-1) for step in expected.logits], dim=1)
    chosen = log_probs.gather(-1, new[..., None]).squeeze(-1)
    before_eos = torch.cumsum((new == EOS).long(), dim=1) - (new == EOS).long() == 0  # up to the first eos
    torch.testing.assert_close(scores, (chosen * before_eos).sum(1), rtol=1e-5, atol=1e-5)


def test_one_beam_with_early_stopping_is_greedy(hf_model):
    ids = prompts(4, 3, seed=3)
    model = HFCausalLM(hf_model)
    greedy, _ = greedy_search(model, ids, 12, eos_token_id=EOS)
    beam, scores = beam_search(model, ids, 1, 12, eos_token_id=EOS, early_stopping=True, length_penalty=0.0)
    assert torch.equal(beam, greedy)
    _, greedy_scores = greedy_search(model, ids, 12, eos_token_id=EOS)
    torch.testing.assert_close(scores, greedy_scores)  # length_penalty 0: the plain log-probability


def test_padding_after_eos_and_batch_major_order(hf_model):
    ids = prompts(3, 4, seed=11)
    sequences, scores = beam_search(HFCausalLM(hf_model), ids, 4, 14, eos_token_id=EOS, num_return_sequences=3)
    assert sequences.shape[0] == 9 and sequences.dtype == torch.long
    assert torch.equal(sequences[:, :4], ids.repeat_interleave(3, dim=0))  # prompt kept, batch-major
    for row in sequences[:, 4:].tolist():
        if EOS in row:
            assert all(t == EOS for t in row[row.index(EOS):])
    assert torch.all(scores.view(3, 3)[:, :-1] >= scores.view(3, 3)[:, 1:])  # best first


# --- our GPT: the cached path equals recomputing the prefix --------------------------------------

@pytest.fixture(scope="module")
def gpt():
    model = GPT(GPTConfig(vocab_size=50, block_size=40, n_layer=2, n_head=2, n_embd=32), seed=0).eval()
    with torch.no_grad():  # larger weights than the 0.02 init, so that distributions are peaked
        for p in model.parameters():
            p.mul_(8.0 if p.dim() > 1 else 1.0)
    return model


def test_cache_and_recompute_agree_on_our_gpt(gpt):
    recompute = lambda idx: gpt(idx)  # noqa: E731 (a plain callable: no decode_step)
    ids = torch.randint(0, 50, (3, 6), generator=torch.Generator().manual_seed(0))
    for decode in (
        lambda m: greedy_search(m, ids, 30, eos_token_id=18),
        lambda m: beam_search(m, ids, 3, 30, eos_token_id=18, num_return_sequences=2),
        lambda m: beam_search(m, ids, 4, 30, eos_token_id=None, length_penalty=0.5, early_stopping="never"),
        lambda m: sample(m, ids, 30, top_p=0.9, temperature=0.8, eos_token_id=18,
                         generator=torch.Generator().manual_seed(5)),
    ):
        cached_seqs, cached_scores = decode(gpt)
        plain_seqs, plain_scores = decode(recompute)
        assert torch.equal(cached_seqs, plain_seqs)
        torch.testing.assert_close(cached_scores, plain_scores, rtol=1e-5, atol=1e-5)
    # with eos 18 (frequent for this model) some rows end early, so padding is exercised too
    assert (greedy_search(gpt, ids, 30, eos_token_id=18)[0][:, 6:-1] == 18).any()


def test_sample_reproduces_with_a_fixed_generator_and_top_k_1_is_greedy(gpt):
    ids = torch.randint(0, 50, (4, 5), generator=torch.Generator().manual_seed(1))
    first, s1 = sample(gpt, ids, 20, generator=torch.Generator().manual_seed(42))
    again, s2 = sample(gpt, ids, 20, generator=torch.Generator().manual_seed(42))
    other, _ = sample(gpt, ids, 20, generator=torch.Generator().manual_seed(43))
    assert torch.equal(first, again) and torch.equal(s1, s2)
    assert not torch.equal(first, other)
    assert torch.equal(sample(gpt, ids, 20, top_k=1)[0], greedy_search(gpt, ids, 20)[0])


def test_token_log_probs_and_generated_tokens(gpt):
    ids = torch.randint(0, 50, (2, 4), generator=torch.Generator().manual_seed(2))
    sequences, scores = greedy_search(gpt, ids, 10)
    torch.testing.assert_close(token_log_probs(gpt, sequences)[:, 3:].sum(1), scores, rtol=1e-5, atol=1e-5)
    padded = torch.tensor([[9, 9, 5, 7, 0, 0], [9, 9, 1, 2, 3, 4]])
    assert generated_tokens(padded, 2, eos_token_id=0) == [[5, 7], [1, 2, 3, 4]]
    assert generated_tokens(padded, 2) == [[5, 7, 0, 0], [1, 2, 3, 4]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_decoders_on_cuda_match_cpu(gpt):
    ids = torch.randint(0, 50, (2, 5), generator=torch.Generator().manual_seed(0))
    on_gpu = GPT(gpt.config).cuda().eval()
    on_gpu.load_state_dict(gpt.state_dict())
    for decode in (lambda m, x: beam_search(m, x, 3, 15, eos_token_id=3),
                   lambda m, x: sample(m, x, 15, top_p=0.9, generator=torch.Generator().manual_seed(0))):
        cpu_seqs, _ = decode(gpt, ids)
        gpu_seqs, _ = decode(on_gpu, ids.cuda())
        assert gpu_seqs.device.type == "cuda" and torch.equal(gpu_seqs.cpu(), cpu_seqs)


# --- the filters against the transformers warpers -------------------------------------------------

@settings(derandomize=True, deadline=None, max_examples=200)
@given(seed=st.integers(0, 10**6), vocab=st.integers(1, 12), levels=st.sampled_from([3, 1000]),
       k=st.integers(1, 14), p=st.floats(0.01, 1.0), keep=st.integers(1, 4), temperature=st.floats(0.1, 3.0))
def test_filters_equal_transformers_warpers(seed, vocab, levels, k, p, keep, temperature):
    # levels=3 draws logits from three values only, so ties are everywhere
    g = torch.Generator().manual_seed(seed)
    logits = torch.randint(0, levels, (3, vocab), generator=g).float() / levels * 6 - 3
    assert torch.equal(top_k_filter(logits, k, keep), TopKLogitsWarper(k, min_tokens_to_keep=keep)(None, logits))
    assert torch.equal(top_p_filter(logits, p, keep), TopPLogitsWarper(p, min_tokens_to_keep=keep)(None, logits))
    assert torch.equal(temperature_scale(logits, temperature), TemperatureLogitsWarper(temperature)(None, logits))


def test_filters_on_a_hand_computed_case():
    logits = torch.log(torch.tensor([[0.5, 0.2, 0.2, 0.1]]))
    assert torch.isinf(top_k_filter(logits, 2)).tolist() == [[False, False, False, True]]  # the tie keeps 3
    assert torch.isinf(top_p_filter(logits, 0.6)).tolist() == [[False, False, True, True]] or \
        torch.isinf(top_p_filter(logits, 0.6)).tolist() == [[False, True, False, True]]  # one of the tied 0.2s
    assert torch.isinf(top_p_filter(logits, 0.5)).tolist() == [[False, True, True, True]]
    assert torch.isinf(top_p_filter(logits, 0.5, min_tokens_to_keep=3)).sum() == 1


# --- sampling draws from the filtered distribution ----------------------------------------------

def chi2_quantile_999(df: int) -> float:
    """Wilson-Hilferty approximation of the 0.999 quantile of chi-square with ``df`` degrees of freedom."""
    z = 3.0902
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def test_sample_frequencies_match_the_filtered_distribution():
    base = torch.tensor([2.0, 1.5, 1.5, 1.0, 0.5, 0.2, 0.0, -0.5, -1.0, -2.0])
    model = lambda idx: base.expand(idx.size(0), idx.size(1), -1)  # noqa: E731 (same logits everywhere)
    n = 40_000
    ids = torch.zeros((n, 1), dtype=torch.long)
    settings_ = [dict(temperature=0.7, top_k=6, top_p=0.9), dict(temperature=1.5), dict(top_k=4), dict(top_p=0.6)]
    for kwargs in settings_:
        logits = base / kwargs.get("temperature", 1.0)
        if "top_k" in kwargs:
            logits = TopKLogitsWarper(kwargs["top_k"])(None, logits[None])[0]
        if "top_p" in kwargs:
            logits = TopPLogitsWarper(kwargs["top_p"])(None, logits[None])[0]
        probs = logits.softmax(-1).double()
        sequences, _ = sample(model, ids, 1, generator=torch.Generator().manual_seed(0), **kwargs)
        counts = torch.bincount(sequences[:, 1], minlength=10).double()
        allowed = probs > 0
        assert counts[~allowed].sum() == 0, kwargs  # filtered tokens are never drawn
        expected = n * probs[allowed]
        chi2 = float(((counts[allowed] - expected) ** 2 / expected).sum())
        assert chi2 < chi2_quantile_999(int(allowed.sum()) - 1), (kwargs, chi2)


# --- validation ------------------------------------------------------------------------------------

def test_bad_parameters_raise_naming_the_parameter(gpt):
    ids = torch.zeros((1, 2), dtype=torch.long)
    with pytest.raises(ValueError, match=r"num_beams must be an int >= 1, got 0"):
        beam_search(gpt, ids, 0, 5)
    with pytest.raises(ValueError, match=r"num_return_sequences must be in \[1, num_beams=2\], got 3"):
        beam_search(gpt, ids, 2, 5, num_return_sequences=3)
    with pytest.raises(ValueError, match=r"early_stopping must be True, False or 'never', got 'always'"):
        beam_search(gpt, ids, 2, 5, early_stopping="always")
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\] \(or None\), got 1.5"):
        sample(gpt, ids, 5, top_p=1.5)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\] \(or None\), got 0"):
        top_p_filter(torch.zeros(1, 3), 0)
    with pytest.raises(ValueError, match=r"top_k must be an int >= 1, got 0"):
        sample(gpt, ids, 5, top_k=0)
    with pytest.raises(ValueError, match=r"temperature must be > 0, got 0"):
        sample(gpt, ids, 5, temperature=0)
    with pytest.raises(ValueError, match=r"temperature must be > 0, got -1"):
        temperature_scale(torch.zeros(3), -1)
    with pytest.raises(ValueError, match=r"min_tokens_to_keep must be an int >= 1, got 0"):
        top_p_filter(torch.zeros(1, 3), 0.5, min_tokens_to_keep=0)
    with pytest.raises(ValueError, match=r"max_new_tokens must be an int >= 1, got 0"):
        greedy_search(gpt, ids, 0)
    with pytest.raises(TypeError, match=r"input_ids must be a LongTensor"):
        greedy_search(gpt, ids.float(), 3)
