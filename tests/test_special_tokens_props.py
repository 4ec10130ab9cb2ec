"""Property tests: text cannot forge the assistant tokenizer's special tokens.

Two tokenizers: the book's (its vocabulary has no ``#``, ``<``, ``|``, ``>``, so a marker
cannot be spelled in characters) and one whose vocabulary also holds ``#<|>`` (``:`` and
newline are Shakespeare's), where a model can spell a marker out character by character.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscratch.chat import END_OF_TEXT, INSTRUCTION, RESPONSE, SPECIAL_TOKENS, AssistantTokenizer
from llmscratch.vocab import CharVocab

from helpers import SHAKESPEARE_CHARS, assistant_tokenizer

BOOK = assistant_tokenizer()
SPELLABLE = AssistantTokenizer(CharVocab(list(SHAKESPEARE_CHARS + "#<|>")))
assert all(set(s) <= set(SPELLABLE.chars.itos) for s in SPECIAL_TOKENS)
TOKENIZERS = pytest.mark.parametrize("tok", [BOOK, SPELLABLE], ids=["book", "spellable"])
EXAMPLES = settings(max_examples=150, deadline=None)

# Pieces that make marker strings likely: whole markers, their fragments, and near misses.
PIECES = [*SPECIAL_TOKENS, "###", " Instruction:", " Response:", "\n", "\n\n", "<|", "endoftext", "|>",
          "### Response:\n", "\n\n### Instruction:\n", "<|endoftext|", "é"]


def texts(tok: AssistantTokenizer):
    """Text of vocabulary characters, marker pieces and the odd character outside the vocabulary."""
    chunk = st.one_of(st.sampled_from(tok.chars.itos), st.sampled_from(PIECES), st.characters())
    return st.lists(chunk, max_size=12).map("".join)


def char_ids(tok: AssistantTokenizer):
    """Any "model output" without special ids, biased towards markers spelled in characters
    (where the vocabulary can spell them)."""
    n = tok.chars.vocab_size
    spelled = [tok.chars.encode(s) for s in PIECES if set(s) <= set(tok.chars.itos)]
    chunk = st.one_of(st.integers(0, n - 1).map(lambda i: [i]), st.sampled_from(spelled))
    return st.lists(chunk, max_size=12).map(lambda chunks: [i for c in chunks for i in c])


def any_ids(tok: AssistantTokenizer):
    """Any ids at all, special ones included."""
    return st.lists(st.one_of(st.integers(0, tok.vocab_size - 1), st.sampled_from(tok.special_ids)), max_size=30)


def _encode_or_none(tok, text, **kwargs):
    try:
        return tok.encode(text, **kwargs)
    except ValueError:
        return None


# (a) -------------------------------------------------------------------------------------------

@TOKENIZERS
@EXAMPLES
@given(data=st.data())
def test_encoded_text_holds_no_special_id(tok, data):
    text = data.draw(texts(tok))
    ids = _encode_or_none(tok, text)
    holds_marker = any(s in text for s in SPECIAL_TOKENS)
    in_vocab = set(text) <= set(tok.chars.itos)
    assert (ids is not None) == (in_vocab and not holds_marker)  # refused exactly when it must be
    if ids is not None:
        assert not set(ids) & set(tok.special_ids)
        assert len(ids) == len(text) and tok.decode(ids) == text
    as_chars = _encode_or_none(tok, text, allowed_special="none")
    assert (as_chars is not None) == in_vocab
    if as_chars is not None:
        assert not set(as_chars) & set(tok.special_ids) and tok.decode(as_chars) == text


# (b) -------------------------------------------------------------------------------------------

@TOKENIZERS
@EXAMPLES
@given(data=st.data())
def test_model_output_never_turns_into_a_marker(tok, data):
    """decode -> encode of special-free ids gives the same ids or raises, never a special id."""
    ids = data.draw(char_ids(tok))
    text = tok.decode(ids)
    again = _encode_or_none(tok, text)
    assert again is None or again == ids
    assert (again is None) == any(s in text for s in SPECIAL_TOKENS)  # only a spelled marker is refused


@TOKENIZERS
@EXAMPLES
@given(data=st.data())
def test_decoded_special_ids_are_refused_not_recreated(tok, data):
    ids = data.draw(any_ids(tok))
    allowed = data.draw(st.sets(st.sampled_from(SPECIAL_TOKENS)))
    text = tok.decode(ids)
    if set(ids) & set(tok.special_ids):
        with pytest.raises(ValueError, match="special token"):
            tok.encode(text)
    again = _encode_or_none(tok, text, allowed_special=allowed)
    if again is not None:  # only the allowed markers can come back as ids
        assert set(again) & set(tok.special_ids) <= {tok.special_ids[SPECIAL_TOKENS.index(s)] for s in allowed}


# (c) -------------------------------------------------------------------------------------------

@TOKENIZERS
@EXAMPLES
@given(data=st.data())
def test_rendered_prompt_and_example_have_one_marker_each(tok, data):
    instruction, response = data.draw(texts(tok)), data.draw(texts(tok))
    try:
        prompt = tok.render_prompt(instruction).tolist()
    except ValueError:
        assert _encode_or_none(tok, instruction) is None  # refused only what encode refuses
        return
    assert prompt[0] == tok.inst_id and prompt.count(tok.inst_id) == 1
    assert prompt[-1] == tok.resp_id and prompt.count(tok.resp_id) == 1
    assert tok.eot_id not in prompt
    assert prompt[1:-1] == tok.encode(instruction)
    try:
        ids, mask = tok.render(instruction, response)
    except ValueError:
        assert _encode_or_none(tok, response) is None
        return
    ids, mask = ids.tolist(), mask.tolist()
    assert ids[: len(prompt)] == prompt and ids[-1] == tok.eot_id
    assert [ids.count(i) for i in tok.special_ids] == [1, 1, 1]
    assert ids.index(tok.inst_id) < ids.index(tok.resp_id) < ids.index(tok.eot_id)
    resp_at = ids.index(tok.resp_id)
    assert mask == [i > resp_at for i in range(len(ids))]  # the response and the end token, nothing else
    assert ids[resp_at + 1: -1] == tok.encode(response)


# (d) -------------------------------------------------------------------------------------------

@EXAMPLES
@given(ids=any_ids(BOOK))
def test_allowing_all_specials_round_trips_any_ids(ids):
    """Where no marker can be spelled in characters, decode -> encode("all") is the identity."""
    assert BOOK.encode(BOOK.decode(ids), allowed_special="all") == ids


@EXAMPLES
@given(ids=any_ids(SPELLABLE) | char_ids(SPELLABLE))
def test_allowing_all_specials_round_trips_the_text(ids):
    """Where markers can be spelled, "all" keeps the text and every special id, and may turn a
    spelled marker into its id: the reason it must be asked for."""
    text = SPELLABLE.decode(ids)
    again = SPELLABLE.encode(text, allowed_special="all")
    assert SPELLABLE.decode(again) == text
    for special in SPELLABLE.special_ids:
        assert again.count(special) >= ids.count(special)


def test_spelled_marker_is_the_case_that_differs():
    spelled = SPELLABLE.chars.encode(RESPONSE)
    assert SPELLABLE.encode(SPELLABLE.decode(spelled), allowed_special="all") == [SPELLABLE.resp_id]
    assert set(INSTRUCTION + END_OF_TEXT) - set(BOOK.chars.itos)  # the book cannot spell them
