"""Tests for llmscratch.byte_bpe: GPT-2's byte-level BPE (chapter 3).

Oracle: tiktoken's GPT-2 encoding, built from the same local `gpt2.tiktoken` ranks (tiktoken
cannot download here), compared token for token on all of Tiny Shakespeare, a torture text and
hypothesis-generated unicode. The byte-level trainer is checked against a naive weighted trainer.
"""

from __future__ import annotations

from collections import Counter

import pytest
import regex
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st
from tiktoken.load import load_tiktoken_bpe

from llmscratch.bpe import get_stats, merge
from llmscratch.byte_bpe import (
    GPT2_SPECIAL_TOKENS,
    GPT2_SPLIT_PATTERN,
    ByteBPETokenizer,
    bpe_by_rank,
)

EOT = "<|endoftext|>"

TORTURE = (
    "Hello, world! HELLO WORLD's it'll I'M we'D they're you've 'S 'LL don't\n"
    "नमस्ते दुनिया, 你好，世界！ مرحبا بالعالم 안녕하세요 세계 Ünïcödé àéîõü ß Œuvre\n"
    "emoji 😀👍🏽 family 👨‍👩‍👧‍👦 flags 🇮🇳🇺🇸 keycap 1️⃣ ❤️‍🔥\n"
    "\ttabs\t\tand  two   three    spaces   \n"
    "trailing spaces   \n\n\n"
    "windows\r\nline\r\nendings\r\n"
    "non\u00a0breaking\u00a0\u00a0space \u2003em space\u200bzero width\n"
    "numbers 1234567890 3.14159 1,000,000 -42 +7 1e10 ٣٤٥ ⅷ\n"
    "code: def f(x): return x**2  # comment\n"
    "    indented\n"
    "ending with spaces and newline \n   "
)


@pytest.fixture(scope="module")
def gpt2_path(mirror_dir):
    return mirror_dir / "gpt2.tiktoken"


@pytest.fixture(scope="module")
def ours(gpt2_path) -> ByteBPETokenizer:
    return ByteBPETokenizer.from_tiktoken_file(gpt2_path)


@pytest.fixture(scope="module")
def tiktoken_gpt2(gpt2_path) -> tiktoken.Encoding:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIKTOKEN_CACHE_DIR", "")  # read the local file, write no cache
        ranks = load_tiktoken_bpe(str(gpt2_path))
    return tiktoken.Encoding(
        name="gpt2_local",
        pat_str=GPT2_SPLIT_PATTERN,
        mergeable_ranks=ranks,
        special_tokens=GPT2_SPECIAL_TOKENS,
    )


@pytest.fixture(scope="module")
def shakespeare(mirror_dir) -> str:
    return (mirror_dir / "tinyshakespeare.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def shakespeare_ids(ours, tiktoken_gpt2, shakespeare):
    """Both encoders on all of Tiny Shakespeare, computed once."""
    return ours.encode(shakespeare), tiktoken_gpt2.encode(shakespeare)


# --- agreement with tiktoken -------------------------------------------------------------------


def test_sanity_ids(ours):
    assert ours.encode("hello world") == [31373, 995]
    assert ours.encode("Hello, world!") == [15496, 11, 995, 0]
    assert ours.vocab_size == 50257
    assert ours.decode([31373, 995]) == "hello world"


def test_all_of_shakespeare_matches_tiktoken(shakespeare_ids, shakespeare, ours):
    mine, theirs = shakespeare_ids
    assert len(mine) == len(theirs) == 338_025
    assert mine == theirs
    assert ours.decode(mine) == shakespeare


def test_torture_text_matches_tiktoken(ours, tiktoken_gpt2):
    ids = ours.encode(TORTURE)
    assert ids == tiktoken_gpt2.encode(TORTURE)
    assert ours.decode(ids) == TORTURE


def test_pattern_matches_tiktokens_own_gpt2_pattern(ours, tiktoken_gpt2):
    # tiktoken rewrote GPT-2's pattern with possessive quantifiers; the split must not change
    from tiktoken_ext.openai_public import r50k_pat_str

    upstream = tiktoken.Encoding(
        name="gpt2_upstream_pattern",
        pat_str=r50k_pat_str,
        mergeable_ranks=tiktoken_gpt2._mergeable_ranks,
        special_tokens=GPT2_SPECIAL_TOKENS,
    )
    assert ours.encode(TORTURE) == upstream.encode(TORTURE)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_any_unicode_matches_tiktoken(ours, tiktoken_gpt2, text):
    ids = ours.encode(text, allowed_special="none")
    assert ids == tiktoken_gpt2.encode(text, disallowed_special=())
    assert ours.decode(ids) == text


SOUP = list(" \t\n\r\u00a0\u3000'sSlLdt1२é😀\u200d🏽.,!-")  # whitespace, contractions, ZWJ


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=SOUP, max_size=60))
def test_whitespace_and_contraction_soup_matches_tiktoken(ours, tiktoken_gpt2, text):
    assert ours.encode(text) == tiktoken_gpt2.encode(text)


def test_lone_surrogates_become_replacement_characters_like_tiktoken(ours, tiktoken_gpt2):
    text = "a\ud800b \udfff"
    assert ours.encode(text) == tiktoken_gpt2.encode(text)
    assert ours.decode(ours.encode(text)) == "a\ufffdb \ufffd"


def test_empty_string(ours, tiktoken_gpt2):
    assert ours.encode("") == tiktoken_gpt2.encode("") == []
    assert ours.decode([]) == ""


# --- special tokens ----------------------------------------------------------------------------


def test_special_tokens_follow_tiktoken(ours, tiktoken_gpt2):
    text = f"The end.{EOT}A new beginning{EOT}"
    allowed = ours.encode(text, allowed_special="all")
    assert allowed == tiktoken_gpt2.encode(text, allowed_special="all")
    assert allowed.count(50256) == 2
    only_eot = tiktoken_gpt2.encode(text, allowed_special={EOT})
    assert ours.encode(text, allowed_special={EOT}) == only_eot
    as_text = ours.encode(text, allowed_special="none")
    assert as_text == tiktoken_gpt2.encode(text, disallowed_special=())
    assert 50256 not in as_text
    assert ours.decode(allowed) == ours.decode(as_text) == text
    with pytest.raises(ValueError, match="special token"):
        ours.encode(text)  # the default raises, as tiktoken's does
    with pytest.raises(ValueError):
        tiktoken_gpt2.encode(text)


# --- decoding ----------------------------------------------------------------------------------


def test_decode_replaces_broken_utf8_like_tiktoken(ours, tiktoken_gpt2):
    ids = ours.encode("😀")  # one character, several byte-level tokens
    assert len(ids) > 1
    assert ours.decode_bytes(ids) == "😀".encode("utf-8")
    assert ours.decode(ids[:1]) == tiktoken_gpt2.decode(ids[:1])
    assert "\ufffd" in ours.decode(ids[:1])
    with pytest.raises(ValueError, match="token id 50257"):
        ours.decode([50257])


def test_bpe_by_rank_merges_lowest_rank_first():
    ranks = {bytes([i]): i for i in range(256)} | {b"ll": 256, b"he": 257, b"hell": 258}
    assert bpe_by_rank(b"hello", ranks) == [258, ord("o")]
    assert bpe_by_rank(b"", ranks) == []
    assert bpe_by_rank(b"lll", ranks) == [256, ord("l")]  # tie: leftmost pair first


# --- loading -----------------------------------------------------------------------------------


def test_bad_tiktoken_files_raise(tmp_path, gpt2_path):
    lines = gpt2_path.read_text(encoding="ascii").splitlines()
    bad = tmp_path / "bad.tiktoken"
    bad.write_text("\n".join(lines[:300] + ["not-a-rank-line"]), encoding="ascii")
    with pytest.raises(ValueError, match="line 301"):
        ByteBPETokenizer.from_tiktoken_file(bad)
    bad.write_text("\n".join(lines[1:300]), encoding="ascii")  # byte 0x21 '!' is missing
    with pytest.raises(ValueError, match="all 256 single bytes"):
        ByteBPETokenizer.from_tiktoken_file(bad)
    with pytest.raises(ValueError, match="already used"):
        ByteBPETokenizer.from_tiktoken_file(gpt2_path, special_tokens={EOT: 5})


# --- training ----------------------------------------------------------------------------------


def train_bytes_naive(text: str, num_merges: int) -> list[bytes]:
    """Recount-everything byte-level trainer over regex chunks weighted by their counts."""
    chunks = Counter(regex.findall(GPT2_SPLIT_PATTERN, text))
    words = [(list(chunk.encode("utf-8")), n) for chunk, n in chunks.items()]
    vocab = {i: bytes([i]) for i in range(256)}
    for new_id in range(256, 256 + num_merges):
        stats: Counter = Counter()
        for ids, n in words:
            for pair, k in get_stats(ids).items():
                stats[pair] += k * n
        if not stats:
            break
        pair = min(stats, key=lambda p: (-stats[p], p))
        words = [(merge(ids, pair, new_id), n) for ids, n in words]
        vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
    return [vocab[i] for i in range(256, len(vocab))]


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet="ab 'sé\n", max_size=120), num_merges=st.integers(0, 25))
def test_byte_trainer_matches_naive(text, num_merges):
    tok = ByteBPETokenizer.train(text, 256 + num_merges)
    learned = [tok.vocab[i] for i in range(256, tok.vocab_size)]
    assert learned == train_bytes_naive(text, num_merges)


@settings(max_examples=100, deadline=None)
@given(train_text=st.text(max_size=100), text=st.text(max_size=100))
def test_trained_tokenizer_round_trips_any_text(train_text, text):
    tok = ByteBPETokenizer.train(train_text, 300)
    assert tok.decode(tok.encode(text)) == text


def test_train_on_shakespeare(shakespeare):
    text = shakespeare[:100_000]
    tok = ByteBPETokenizer.train(text, 400, special_tokens=[EOT])
    assert tok.vocab_size == 400 and tok.special_tokens == {EOT: 399}
    assert tok.vocab[256] == b" t"  # most frequent pair in the chunks of Shakespeare
    ids = tok.encode(text[:5000] + EOT, allowed_special="all")
    assert ids[-1] == 399 and tok.decode(ids) == text[:5000] + EOT
    assert len(ids) < 0.6 * 5001  # 143 merges: 0.6 tokens per character instead of 1
    with pytest.raises(ValueError, match="vocab_size must be >= 257"):
        ByteBPETokenizer.train(text, 256, special_tokens=[EOT])
    assert ByteBPETokenizer.train("a", 1000).vocab_size == 256  # nothing to merge
