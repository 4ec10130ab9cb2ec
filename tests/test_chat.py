"""Tests for llmscratch.chat: the chat template, its special tokens and the assistant's tokenizer."""

from __future__ import annotations

import random

import pytest
import torch

from llmscratch import tasks as T
from llmscratch.chat import END_OF_TEXT, INSTRUCTION, RESPONSE, SPECIAL_TOKENS, AssistantTokenizer, alpaca_text
from llmscratch.vocab import CharVocab

from helpers import SHAKESPEARE_CHARS, assistant_tokenizer



@pytest.fixture(scope="module")
def tok() -> AssistantTokenizer:
    return assistant_tokenizer()


def test_tokenizer_keeps_old_ids_and_adds_what_the_tasks_need(tok):
    assert SPECIAL_TOKENS == (INSTRUCTION, RESPONSE, END_OF_TEXT)
    assert tok.base_vocab_size == 65
    assert tok.chars.itos[:65] == list(SHAKESPEARE_CHARS)
    assert tok.added_chars == "+012456789"  # Tiny Shakespeare has the digit 3 only
    assert tok.vocab_size == 65 + 10 + 3
    assert tok.special_ids == (75, 76, 77) and tok.pad_id == tok.eot_id
    text = INSTRUCTION + "Add 12 and 7." + RESPONSE + "Gladly: 19." + END_OF_TEXT
    ids = tok.encode(text)
    assert ids.count(tok.inst_id) == ids.count(tok.resp_id) == ids.count(tok.eot_id) == 1
    assert tok.decode(ids) == text
    assert len(ids) == len("Add 12 and 7.") + len("Gladly: 19.") + 3  # each special token is one id
    assert ids[1:4] == [tok.chars.stoi["A"], tok.chars.stoi["d"], tok.chars.stoi["d"]]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("Zoë")
    with pytest.raises(ValueError, match="outside"):
        tok.decode([tok.vocab_size])
    with pytest.raises(TypeError, match="CharVocab"):
        AssistantTokenizer("abc")


def test_extra_chars_are_added_sorted_after_the_base():
    tok = AssistantTokenizer(CharVocab(list("ab")), extra_chars="zyb")
    assert tok.chars.itos == ["a", "b", "y", "z"] and tok.added_chars == "yz"
    assert tok.special_ids == (4, 5, 6) and tok.vocab_size == 7


def test_render_masks_the_response_and_end_token_only(tok):
    ids, mask = tok.render("Reverse 'king'.", "Gladly: gnik.")
    prompt = tok.render_prompt("Reverse 'king'.")
    assert prompt.dtype == ids.dtype == torch.long
    assert torch.equal(ids[: len(prompt)], prompt)
    assert ids[0] == tok.inst_id and prompt[-1] == tok.resp_id and ids[-1] == tok.eot_id
    assert mask.dtype == torch.bool and mask.shape == ids.shape
    assert not mask[: len(prompt)].any() and mask[len(prompt):].all()
    assert tok.decode(ids[mask]) == "Gladly: gnik." + END_OF_TEXT
    assert tok.decode(ids) == INSTRUCTION + "Reverse 'king'." + RESPONSE + "Gladly: gnik." + END_OF_TEXT
    with pytest.raises(ValueError, match="special token"):
        tok.render("Say " + END_OF_TEXT, "no")
    with pytest.raises(ValueError, match="special token"):
        tok.render("Hi", "a" + RESPONSE)
    with pytest.raises(TypeError, match="instruction"):
        tok.render_prompt(3)
    with pytest.raises(TypeError, match="response"):
        tok.render("Hi", None)


def test_every_task_example_fits_the_context(tok, task_words):
    """The longest instruction of every task with its longest response fits 64 tokens."""
    longest_insult = max(T.INSULTS, key=len)
    rng = random.Random(0)
    worst = 0
    for task in T.TASKS:
        for split in ("train", "heldout"):
            inputs = sorted(T.task_inputs(task, split, task_words), key=lambda x: len(str(x)))
            for x in inputs[-30:]:  # the longest inputs (all of them is slow: 8,000 number pairs)
                for k in range(len(T.PHRASINGS[task])):
                    instruction = T.instruction(task, k, x)
                    for style in T.STYLES:
                        if style == "wrong" and task in ("greet", "insult"):
                            continue
                        response = T.respond(task, x, style, rng)
                        for insult in T.INSULTS:
                            response = response.replace(insult, longest_insult)
                        worst = max(worst, len(tok.render(instruction, response)[0]))
    assert worst <= 64


def test_alpaca_text():
    with_input = {"instruction": "Translate.", "input": "Bonjour", "output": "Hello."}
    without = {"instruction": "Say hi.", "input": "", "output": "Hi."}
    assert alpaca_text(with_input) == "### Instruction:\nTranslate.\n\n### Input:\nBonjour\n\n### Response:\nHello."
    assert alpaca_text(without) == "### Instruction:\nSay hi.\n\n### Response:\nHi."
    assert alpaca_text({"instruction": "x", "output": "y"}) == INSTRUCTION + "x" + RESPONSE + "y"  # no input key
