"""Benchmark for chapter 3 (byte-pair encoding): training speed and encoding throughput.

1. Character-level BPE to vocab_size 512 on all of Tiny Shakespeare (raw text, 447 merges):
   the incremental trainer (`CharBPETokenizer.train`) against the naive recount-everything
   trainer (`train_naive`), both measured in full; their merges must be identical.
2. The same incremental algorithm (`learn_merges`) against Hugging Face `tokenizers`
   (`models.BPE()` + `trainers.BpeTrainer(vocab_size=512)`, no normalizer). HF counts words, and
   the whole text as one word is pathological for it (about 555 s in a one-off run here), so both
   get the same words: (a) the lines of the text (``splitlines(keepends=True)``, no
   pre-tokenizer); (b) GPT-2 regex chunks (HF: ``pre_tokenizers.Split(GPT2 pattern,
   "isolated")``). Our timing includes splitting and counting the words, as HF's does. HF may use
   several threads; ours uses one.
3. GPT-2 encoding throughput on Tiny Shakespeare: `ByteBPETokenizer` (a fresh chunk cache, then a
   warm one) against tiktoken built from the same local `gpt2.tiktoken`; outputs must be equal.
4. Tokens per character on a held-out slice (last 10 %), tokenizers trained on the first 90 %.

Wall-clock times; every timing is the best of 3 runs except the naive trainer's (one run).
Prints readable lines, then one JSON line with the figures. Runs offline: data come from
``$LLMSCRATCH_DATA_MIRROR`` (default ``../shared/data`` next to the repository).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import regex  # noqa: E402

from llmscratch.bpe import CharBPETokenizer, learn_merges, train_naive  # noqa: E402
from llmscratch.byte_bpe import (  # noqa: E402
    GPT2_SPECIAL_TOKENS,
    GPT2_SPLIT_PATTERN,
    ByteBPETokenizer,
)

VOCAB_SIZE = 512


def data_path(name: str, filename: str) -> Path:
    """The mirror copy of a dataset, through llmscratch.data when it exists."""
    os.environ.setdefault("LLMSCRATCH_DATA_MIRROR", str(REPO.parent / "shared" / "data"))
    try:
        from llmscratch.data import fetch
    except ImportError:
        return Path(os.environ["LLMSCRATCH_DATA_MIRROR"]) / filename
    return fetch(name)


def timed(fn, repeat: int = 1):
    """(result of the last call, best wall time in seconds over `repeat` calls)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def ours_on_words(text: str, split, chars: list[str]) -> list[tuple[str, str]]:
    """learn_merges on the words `split(text)`, weighted by count; merges as string pairs."""
    counts = Counter(split(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    words = [[stoi[ch] for ch in word] for word in counts]
    merges = learn_merges(words, VOCAB_SIZE - len(chars), len(chars), list(counts.values()))
    vocab = dict(enumerate(chars))
    for new_id, (a, b) in enumerate(merges, len(chars)):
        vocab[new_id] = vocab[a] + vocab[b]
    return [(vocab[a], vocab[b]) for a, b in merges]


def hf_on_words(pieces: list[str], pre_tokenizer=None) -> list[tuple[str, str]]:
    from tokenizers import Tokenizer, models, trainers

    tok = Tokenizer(models.BPE())
    if pre_tokenizer is not None:
        tok.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, show_progress=False)
    tok.train_from_iterator(pieces, trainer=trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in merges]


def main() -> None:
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    from tokenizers import Regex, pre_tokenizers

    text = data_path("tinyshakespeare", "tinyshakespeare.txt").read_text(encoding="utf-8")
    gpt2_file = data_path("gpt2_tiktoken", "gpt2.tiktoken")
    chars = sorted(set(text))
    mb = len(text.encode("utf-8")) / 1e6
    print(f"Tiny Shakespeare: {len(text):,} characters, {len(chars)} distinct; "
          f"{os.cpu_count()} CPU cores")

    # 1. incremental vs naive, raw text
    fast, fast_s = timed(lambda: CharBPETokenizer.train(text, VOCAB_SIZE), repeat=3)
    print(f"fast trainer   (raw text, {len(fast.merges)} merges): {fast_s:8.2f} s")
    naive, naive_s = timed(lambda: train_naive(text, VOCAB_SIZE))
    identical = fast.merges == naive.merges
    print(f"naive trainer  (raw text, {len(naive.merges)} merges): {naive_s:8.2f} s")
    print(f"speedup {naive_s / fast_s:.1f}x, merges identical: {identical}")
    if not identical:
        raise SystemExit("the fast and the naive trainer disagree")

    # 2. incremental vs Hugging Face tokenizers, on the same words
    def lines(t):
        return t.splitlines(keepends=True)

    split = regex.compile(GPT2_SPLIT_PATTERN)
    gpt2_split = pre_tokenizers.Split(Regex(GPT2_SPLIT_PATTERN), behavior="isolated")
    ours_lines, ours_lines_s = timed(lambda: ours_on_words(text, lines, chars), repeat=3)
    hf_lines, hf_lines_s = timed(lambda: hf_on_words(lines(text)), repeat=3)
    ours_chunks, ours_chunks_s = timed(lambda: ours_on_words(text, split.findall, chars), repeat=3)
    hf_chunks, hf_chunks_s = timed(lambda: hf_on_words([text], gpt2_split), repeat=3)
    same_lines, same_chunks = ours_lines == hf_lines, ours_chunks == hf_chunks
    print(f"lines:        ours {ours_lines_s:6.2f} s, HF tokenizers {hf_lines_s:6.2f} s "
          f"(ours/HF {ours_lines_s / hf_lines_s:.2f}), merges identical: {same_lines}")
    print(f"GPT-2 chunks: ours {ours_chunks_s:6.2f} s, HF tokenizers {hf_chunks_s:6.2f} s "
          f"(ours/HF {ours_chunks_s / hf_chunks_s:.2f}), merges identical: {same_chunks}")

    # 3. GPT-2 encoding throughput
    ours_gpt2 = ByteBPETokenizer.from_tiktoken_file(gpt2_file)
    ours_ids, cold_s = timed(lambda: ours_gpt2.encode(text))
    _, warm_s = timed(lambda: ours_gpt2.encode(text), repeat=3)
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", "")  # read the local file, write no cache
    ranks = load_tiktoken_bpe(str(gpt2_file))
    enc = tiktoken.Encoding(name="gpt2_local", pat_str=GPT2_SPLIT_PATTERN, mergeable_ranks=ranks,
                            special_tokens=GPT2_SPECIAL_TOKENS)
    tik_ids, tik_s = timed(lambda: enc.encode(text), repeat=3)
    if ours_ids != tik_ids:
        raise SystemExit("our GPT-2 encoding differs from tiktoken's")
    print(f"GPT-2 encode ({len(ours_ids):,} tokens, equal to tiktoken): "
          f"ours {mb / cold_s:.1f} MB/s "
          f"(fresh cache), {mb / warm_s:.1f} MB/s (warm cache); tiktoken {mb / tik_s:.1f} MB/s")

    # 4. tokens per character on held-out text
    cut = len(text) * 9 // 10
    train_text, held_out = text[:cut], text[cut:]
    char_tpc = len(CharBPETokenizer.train(train_text, VOCAB_SIZE).encode(held_out)) / len(held_out)
    byte_tpc = len(ByteBPETokenizer.train(train_text, VOCAB_SIZE).encode(held_out)) / len(held_out)
    gpt2_tpc = len(ours_gpt2.encode(held_out)) / len(held_out)
    print(f"held-out tokens per character: char BPE 512 {char_tpc:.3f}, byte BPE 512 (GPT-2 split) "
          f"{byte_tpc:.3f}, GPT-2 50257 {gpt2_tpc:.3f}")

    print(json.dumps({
        "vocab_size": VOCAB_SIZE,
        "num_merges": len(fast.merges),
        "fast_train_seconds": round(fast_s, 3),
        "naive_train_seconds": round(naive_s, 3),
        "speedup_vs_naive": round(naive_s / fast_s, 1),
        "merges_identical": identical,
        "fast_lines_train_seconds": round(ours_lines_s, 3),
        "hf_train_seconds": round(hf_lines_s, 3),
        "fast_vs_hf_ratio": round(ours_lines_s / hf_lines_s, 2),
        "merges_identical_to_hf": same_lines,
        "fast_chunks_train_seconds": round(ours_chunks_s, 3),
        "hf_chunks_train_seconds": round(hf_chunks_s, 3),
        "fast_vs_hf_chunks_ratio": round(ours_chunks_s / hf_chunks_s, 2),
        "merges_identical_to_hf_chunks": same_chunks,
        "ours_encode_mb_per_s": round(mb / cold_s, 2),
        "ours_encode_warm_mb_per_s": round(mb / warm_s, 2),
        "tiktoken_encode_mb_per_s": round(mb / tik_s, 2),
        "gpt2_tokens": len(ours_ids),
        "heldout_tokens_per_char_char_bpe": round(char_tpc, 4),
        "heldout_tokens_per_char_byte_bpe": round(byte_tpc, 4),
        "heldout_tokens_per_char_gpt2": round(gpt2_tpc, 4),
    }))


if __name__ == "__main__":
    main()
