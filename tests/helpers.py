"""Small builders shared by the test modules (import as ``from helpers import ...``)."""

from __future__ import annotations

import dataclasses

import torch

from llmscratch.chat import AssistantTokenizer
from llmscratch.gpt import GPT, GPTConfig
from llmscratch.vocab import CharVocab

# The 65 characters of Tiny Shakespeare, in CharVocab order: the chapter 4 vocabulary.
SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def assistant_tokenizer() -> AssistantTokenizer:
    """The book's assistant tokenizer over the chapter 4 characters, without reading the data."""
    return AssistantTokenizer(CharVocab(list(SHAKESPEARE_CHARS)))


def tiny_gpt(vocab_size: int, seed: int = 0, **changes) -> GPT:
    """A 1-layer, 16-wide untied GPT with a 64-token context, initialised with ``seed``;
    ``changes`` replace fields of its config."""
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16, tie_weights=False)
    return GPT(dataclasses.replace(config, **changes))
