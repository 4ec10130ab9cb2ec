"""Tests for llmscratch.vocab: the character <-> id map of chapters 1-2."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscratch.vocab import CharVocab

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
NAMES_VOCAB = CharVocab.from_text(ALPHABET, boundary=".")


def test_docstring_example():
    v = CharVocab.from_text("hello", boundary=".")
    assert v.itos == [".", "e", "h", "l", "o"]
    assert v.stoi == {".": 0, "e": 1, "h": 2, "l": 3, "o": 4}
    assert v.encode("hole") == [2, 4, 3, 1]
    assert v.decode([2, 4, 3, 1]) == "hole"
    assert v.vocab_size == len(v) == 5


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="." + ALPHABET, max_size=40))
def test_round_trip_names_alphabet(text):
    ids = NAMES_VOCAB.encode(text)
    assert len(ids) == len(text)
    assert all(0 <= i < NAMES_VOCAB.vocab_size for i in ids)
    assert NAMES_VOCAB.decode(ids) == text


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=30), st.data())
def test_round_trip_any_alphabet(corpus, data):
    """For any text (unicode included), strings over its own alphabet survive encode/decode."""
    v = CharVocab.from_text(corpus)
    assert v.itos == sorted(set(corpus))
    text = data.draw(st.text(alphabet=sorted(set(corpus)), max_size=30))
    assert v.decode(v.encode(text)) == text
    # decode also accepts a tensor of ids
    assert v.decode(torch.tensor(v.encode(text), dtype=torch.long)) == text


def test_from_text_boundary_is_id_zero_and_rest_sorted():
    v = CharVocab.from_text(["emma", "olivia", "ava"], boundary=".")
    assert v.stoi["."] == 0 and v.itos[0] == "."
    assert v.itos[1:] == sorted(set("emmaoliviaava"))
    assert v.vocab_size == 1 + len(set("emmaoliviaava"))
    without = CharVocab.from_text("emma")
    assert without.itos == ["a", "e", "m"]


def test_from_text_rejects_boundary_inside_text():
    with pytest.raises(ValueError, match=r"boundary token '\.' occurs in the text"):
        CharVocab.from_text("a.b", boundary=".")


def test_from_text_rejects_empty_text():
    with pytest.raises(ValueError, match="empty"):
        CharVocab.from_text("")
    with pytest.raises(ValueError, match="empty"):
        CharVocab.from_text([], boundary=".")


def test_encode_unknown_character_names_it():
    with pytest.raises(ValueError, match=r"character 'Z' is not in the vocabulary"):
        NAMES_VOCAB.encode("abZc")
    with pytest.raises(ValueError, match=r"character ' ' is not in the vocabulary"):
        NAMES_VOCAB.encode("ab c")


@pytest.mark.parametrize("bad", [[27], [-1], [0, 1, 100]])
def test_decode_rejects_ids_out_of_range(bad):
    with pytest.raises(ValueError, match=r"outside \[0, 27\)"):
        NAMES_VOCAB.decode(bad)


@pytest.mark.parametrize("chars", [[], ["a", "a"], ["ab"], [""]])
def test_constructor_rejects_bad_chars(chars):
    with pytest.raises(ValueError, match="chars"):
        CharVocab(chars)


@pytest.mark.parametrize("chars", [["a", 1], 3, b"ab"])
def test_constructor_rejects_chars_of_the_wrong_type(chars):
    with pytest.raises(TypeError, match="chars"):
        CharVocab(chars)


def test_repr_names_size():
    assert repr(CharVocab("ab")) == "CharVocab(vocab_size=2, chars='ab')"
