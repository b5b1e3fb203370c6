"""Our pure-Python byte-level BPE against Hugging Face `tokenizers`, on the default corpus.

Run: python benchmarks/bpe.py

Targets (ratios measured in this run): training at vocab 4096 within 1.5x HF's time, and `encode_batch` of
the whole corpus on a freshly loaded tokenizer (no warm cache, best of three loads) within 1.5x HF's. The
ids must be identical, which is asserted before any time is reported.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import record
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from companion.bpe import BPETokenizer
from companion.data import default_texts

VOCAB_SIZE = 4096
TARGET = 1.5
REPEATS = 3


def hf_train(texts: list[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def report(name: str, ours: float, theirs: float) -> bool:
    ratio = ours / theirs
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"{name:<34} ours {ours:7.3f} s   HF {theirs:7.3f} s   ratio {ratio:5.2f}  (target <= {TARGET})  {verdict}")
    return ratio <= TARGET


def main() -> None:
    # Pin HF's thread pool (read when it first runs) to the 2 cores of the course's reference machine.
    os.environ.setdefault("RAYON_NUM_THREADS", "2")
    texts = default_texts("all")
    print(f"corpus: {len(texts)} texts, {sum(map(len, texts)) / 1e6:.2f} M characters; best of {REPEATS} runs each")

    # Training: alternate the two so that a busy machine slows both alike.
    ours_train, hf_train_times = [], []
    for _ in range(REPEATS):
        seconds, hf = timed(hf_train, texts, VOCAB_SIZE)
        hf_train_times.append(seconds)
        seconds, ours = timed(BPETokenizer.train, texts, VOCAB_SIZE, show_progress=False)
        ours_train.append(seconds)
    hf_model = json.loads(hf.to_str())["model"]
    assert ours.merges == [tuple(m) for m in hf_model["merges"]], "merges differ from HF"
    assert ours.vocab == hf_model["vocab"], "vocabulary differs from HF"

    # Encoding: a fresh tokenizer from the same tokenizer.json for every run, so no cache is warm.
    ours_encode, hf_encode = [], []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tokenizer.json"
        ours.save(path)
        for _ in range(REPEATS):
            fresh_hf = Tokenizer.from_file(str(path))
            seconds, encodings = timed(fresh_hf.encode_batch, texts)
            hf_encode.append(seconds)
            fresh_ours = BPETokenizer.load(path)
            seconds, our_ids = timed(fresh_ours.encode_batch, texts)
            ours_encode.append(seconds)
            assert our_ids == [e.ids for e in encodings], "encoded ids differ from HF"
    n_tokens = sum(map(len, our_ids))
    print(f"identical to HF: {len(ours.merges)} merges, {ours.vocab_size} tokens, {n_tokens} ids on the corpus")

    ok = report(f"train (vocab {VOCAB_SIZE})", min(ours_train), min(hf_train_times))
    ok &= report("encode_batch (fresh tokenizer)", min(ours_encode), min(hf_encode))
    print("ALL PASS" if ok else "SOME FAIL")


if __name__ == "__main__":
    record.run("bpe", main)
