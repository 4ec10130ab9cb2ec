"""Bits per character: a held-out loss that does not depend on the tokenizer.

Taught in chapter 9 (does subword tokenization pay off for a transformer?); chapter 3
makes the same conversion for its MLP on the page. A model's loss in nats per token
depends on what a token is: a BPE token spells several characters, so it is harder to
predict than one character but there are fewer of them. The total information of the
held-out text, in nats, divided by its characters and by ``ln 2``, is comparable across
tokenizers: that is bits per character (the same quantity as bits per byte for ASCII
text).
"""

from __future__ import annotations

import math

import torch

from .objectives import next_token_loss
from .train import evaluate
from .validate import check_positive_int
from .windows import TokenStream


def bits_per_character(model: torch.nn.Module, ids: torch.Tensor, n_chars: int, *,
                       block_size: int | None = None, batch_size: int = 8) -> float:
    """Held-out cross-entropy in bits per character of text.

    The text's ``ids`` are scored in windows laid end to end (``TokenStream(...,
    targets="all")`` and :func:`llmscratch.train.evaluate`, as every chapter's held-out
    loss), giving nats per token; the total over every predicted token, divided by the
    characters those tokens spell and by ``ln 2``, is bits per character. The same text
    gives comparable numbers for any tokenizer: a model with longer tokens predicts fewer
    of them, each carrying more of the text.

    Args:
        model: a language model (contract of :mod:`llmscratch.lm`).
        ids: ``(N,)`` int64 token ids of the text.
        n_chars: characters spelled by ``ids[1:]`` (the first token is context only).
        block_size: window length in tokens (default ``model.config.block_size``).
        batch_size: windows per forward pass.

    Raises:
        TypeError, ValueError: as `TokenStream` and `evaluate`; ``n_chars`` not a
            positive int.
    """
    check_positive_int("n_chars", n_chars)
    T = block_size if block_size is not None else model.config.block_size
    result = evaluate(model, TokenStream(ids, T, targets="all"), next_token_loss, batch_size=batch_size)
    return result["loss"] * result["count"] / n_chars / math.log(2)
