"""Tests for llmscratch.bpe: character-level BPE (chapter 3).

Oracles: the naive trainer `train_naive` (recount everything, as the series does), a naive
encoder written here (minbpe's loop), the Wikipedia example, and exact round trips.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscratch.bpe import (
    FORMAT_VERSION,
    CharBPETokenizer,
    apply_merges,
    get_stats,
    learn_merges,
    merge,
    split_on_special,
    train_naive,
)

EOT = "<|endoftext|>"


def encode_naive(tok: CharBPETokenizer, text: str) -> list[int]:
    """minbpe's encode loop: merge the lowest-ranked pair present until none has a rank."""
    ids = [tok.chars.index(ch) for ch in text]
    while len(ids) >= 2:
        stats = get_stats(ids)
        pair = min(stats, key=lambda p: tok.merges.get(p, float("inf")))
        if pair not in tok.merges:
            break
        ids = merge(ids, pair, tok.merges[pair])
    return ids


@pytest.fixture(scope="module")
def shakespeare(mirror_dir) -> str:
    return (mirror_dir / "tinyshakespeare.txt").read_text(encoding="utf-8")


# --- helpers -----------------------------------------------------------------------------------


def test_get_stats_and_merge_docstring_examples():
    assert get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert get_stats([]) == {} and get_stats([5]) == {}


def test_merge_overlapping_pairs_left_to_right():
    assert get_stats([0, 0, 0]) == {(0, 0): 2}  # counted with overlap
    assert merge([0, 0, 0], (0, 0), 1) == [1, 0]
    assert merge([0, 0, 0, 0], (0, 0), 1) == [1, 1]


# --- training ----------------------------------------------------------------------------------


@pytest.mark.parametrize("trainer", [train_naive, CharBPETokenizer.train])
def test_wikipedia_example(trainer):
    # a=0, b=1, c=2, d=3; "aa"->Z(4), then "ab"->Y(5) (ties with "Za"; smallest ids win), "ZY"->X(6)
    tok = trainer("aaabdaaabac", 7)
    assert list(tok.merges.items()) == [((0, 0), 4), ((0, 1), 5), ((4, 5), 6)]
    assert [tok.vocab[i] for i in (4, 5, 6)] == ["aa", "ab", "aaab"]
    assert tok.encode("aaabdaaabac") == [6, 3, 6, 0, 2]  # "XdXac"
    assert tok.decode([6, 3, 6, 0, 2]) == "aaabdaaabac"


@pytest.mark.parametrize("trainer", [train_naive, CharBPETokenizer.train])
def test_overlapping_runs(trainer):
    tok = trainer("aaaa", 3)
    assert list(tok.merges) == [(0, 0), (1, 1)]  # "aaaa" -> ZZ -> one token
    assert tok.encode("aaaaa") == [2, 0]
    assert tok.encode("aaa") == [1, 0]


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="aab c\n", max_size=80), extra=st.integers(0, 40))
def test_fast_trainer_matches_naive(text, extra):
    vocab_size = len(set(text)) + extra
    fast, naive = CharBPETokenizer.train(text, vocab_size), train_naive(text, vocab_size)
    assert fast.merges == naive.merges
    assert fast.vocab == naive.vocab


@settings(max_examples=100, deadline=None)
@given(
    words=st.lists(st.lists(st.integers(0, 2), max_size=12), max_size=6),
    weights=st.lists(st.integers(1, 4), min_size=6, max_size=6),
)
def test_learn_merges_with_weights_matches_repeated_words(words, weights):
    # a word of weight w counts like w copies of the word
    weights = weights[: len(words)]
    repeated = [w for w, n in zip(words, weights) for _ in range(n)]
    assert learn_merges(words, 20, 3, weights) == learn_merges(repeated, 20, 3)


def test_fast_matches_naive_on_shakespeare_slice(shakespeare):
    text = shakespeare[:10_000]
    fast, naive = CharBPETokenizer.train(text, 160), train_naive(text, 160)
    assert len(fast.merges) == 160 - len(set(text))
    assert fast.merges == naive.merges


def test_learn_merges_matches_hf_tokenizers(shakespeare):
    # HF's BpeTrainer also counts overlapping pairs per word (weighted by the word's count),
    # breaks ties by the smallest pair of ids and numbers the alphabet by code point.
    tokenizers = pytest.importorskip("tokenizers")
    lines = shakespeare[:100_000].splitlines(keepends=True)
    chars = sorted(set("".join(lines)))
    counts = Counter(lines)
    words = [[chars.index(ch) for ch in line] for line in counts]
    merges = learn_merges(words, 300 - len(chars), len(chars), list(counts.values()))
    vocab = dict(enumerate(chars))
    for new_id, (a, b) in enumerate(merges, len(chars)):
        vocab[new_id] = vocab[a] + vocab[b]
    hf = tokenizers.Tokenizer(tokenizers.models.BPE())
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=300, show_progress=False)
    hf.train_from_iterator(lines, trainer)
    hf_merges = json.loads(hf.to_str())["model"]["merges"]
    assert [[vocab[a], vocab[b]] for a, b in merges] == [list(m) for m in hf_merges]


def test_training_stops_when_no_pair_is_left():
    tok = CharBPETokenizer.train("ab", 100)
    assert list(tok.merges) == [(0, 1)] and tok.vocab_size == 3
    assert train_naive("ab", 100).merges == tok.merges
    assert CharBPETokenizer.train("a", 10).merges == {}
    empty = CharBPETokenizer.train("", 10)
    assert empty.vocab_size == 0 and empty.encode("") == []


def test_bad_training_arguments():
    with pytest.raises(ValueError, match="vocab_size must be >= 3"):
        CharBPETokenizer.train("abcabc", 2)
    with pytest.raises(ValueError, match="vocab_size must be >= 3"):
        train_naive("abcabc", 2)
    with pytest.raises(ValueError, match="vocab_size must be >= 4"):
        CharBPETokenizer.train("abc", 3, special_tokens=[EOT])
    with pytest.raises(TypeError, match="vocab_size"):
        CharBPETokenizer.train("abc", 10.0)
    with pytest.raises(TypeError, match="text"):
        CharBPETokenizer.train(b"abc", 10)
    with pytest.raises(ValueError, match="weights"):
        learn_merges([[0, 1]], 5, 2, weights=[1, 2])


# --- encoding and decoding ---------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(train_text=st.text(alphabet="ab c\n", min_size=1, max_size=200), extra=st.integers(0, 30),
       text=st.text(alphabet="ab c\n", max_size=100))
def test_encode_matches_naive_encoder(train_text, extra, text):
    tok = CharBPETokenizer.train(train_text + "ab c\n", 5 + extra)
    assert tok.encode(text) == encode_naive(tok, text)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=100), extra=st.integers(0, 50))
def test_round_trip_on_any_unicode(text, extra):
    tok = CharBPETokenizer.train(text, len(set(text)) + extra)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert all(0 <= i < tok.vocab_size for i in ids)


def test_encoding_the_training_text_reproduces_training(shakespeare):
    text = shakespeare[:50_000]
    tok = CharBPETokenizer.train(text, 300)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert len(ids) < len(text) / 2  # 235 merges at least halve Shakespeare
    # the tokens of training are the result of every merge applied in order
    expected = [tok.chars.index(ch) for ch in text]
    for pair, new_id in tok.merges.items():
        expected = merge(expected, pair, new_id)
    assert ids == expected


def test_unknown_character_and_id_raise():
    tok = CharBPETokenizer.train("hello world", 12)
    with pytest.raises(ValueError, match=r"'Z' \(U\+005A\)"):
        tok.encode("hello Zorro")
    with pytest.raises(ValueError, match="token id 12"):
        tok.decode([0, 12])
    assert apply_merges([], tok.merges) == []


def test_special_tokens():
    text = f"ab ab{EOT}ab ab{EOT}"
    tok = CharBPETokenizer.train(text, 12, special_tokens=[EOT])
    eot = tok.special_tokens[EOT]
    assert eot == tok.vocab_size - 1 and tok.vocab[eot] == EOT
    assert all("<" not in tok.vocab[i] for i in range(eot))  # no merge reaches into the special
    ids = tok.encode(text, allowed_special="all")
    assert ids.count(eot) == 2 and tok.decode(ids) == text
    assert tok.encode(text, allowed_special={EOT}) == ids
    with pytest.raises(ValueError, match="special token"):
        tok.encode(text)  # default "none_raise", like tiktoken
    with pytest.raises(ValueError, match="not in the tokenizer's vocabulary"):
        tok.encode(text, allowed_special="none")  # as text: '<' was never seen
    with pytest.raises(ValueError, match="allowed_special"):
        tok.encode(text, allowed_special="sometimes")


def test_split_on_special():
    specials = {EOT: 9, "<|pad|>": 8}
    assert split_on_special(f"a{EOT}b<|pad|>", specials, "all") == ["a", 9, "b", 8]
    assert split_on_special(f"a{EOT}b", specials, "none") == [f"a{EOT}b"]
    assert split_on_special(f"a{EOT}b", specials, {EOT}) == ["a", 9, "b"]
    with pytest.raises(ValueError, match="pad"):
        split_on_special(f"a{EOT}<|pad|>", specials, {EOT})
    with pytest.raises(ValueError, match="unknown special"):
        split_on_special("a", specials, {"<|x|>"})
    assert split_on_special("", specials, "all") == []


# --- save and load -----------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path, shakespeare):
    text = shakespeare[:20_000].replace("\n\n", f"\n{EOT}")
    tok = CharBPETokenizer.train(text, 300, special_tokens=[EOT, "<|pad|>"])
    path = tmp_path / "shakespeare.bpe"
    tok.save(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0] == FORMAT_VERSION
    assert lines[3] == f"merges {len(tok.merges)}"
    assert any(line.endswith('# "th"') for line in lines)  # merges are readable
    loaded = CharBPETokenizer.load(path)
    assert loaded.chars == tok.chars and loaded.merges == tok.merges
    assert loaded.vocab == tok.vocab and loaded.special_tokens == tok.special_tokens
    sample = shakespeare[20_000:22_000] + EOT
    assert loaded.encode(sample, allowed_special="all") == tok.encode(sample, allowed_special="all")


def test_load_rejects_wrong_version_and_bad_files(tmp_path):
    tok = CharBPETokenizer.train("aaabdaaabac", 7)
    path = tmp_path / "tok.bpe"
    tok.save(path)
    good = path.read_text(encoding="utf-8")
    path.write_text(good.replace(FORMAT_VERSION, "llmscratch-bpe v2"), encoding="utf-8")
    with pytest.raises(ValueError, match="first line must be 'llmscratch-bpe v1'"):
        CharBPETokenizer.load(path)
    path.write_text(good.replace("merges 3", "merges 5"), encoding="utf-8")
    with pytest.raises(ValueError, match="malformed|expected 5 merges"):
        CharBPETokenizer.load(path)
    path.write_text(good.replace("4 5\t", "4 9\t"), encoding="utf-8")
    with pytest.raises(ValueError, match="not defined"):
        CharBPETokenizer.load(path)
