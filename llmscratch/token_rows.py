"""Train only the rows of new tokens: a frozen embedding or output layer plus a trainable delta.

Taught in chapter 8. Fine-tuning a model for a chat format adds token ids the pretrained
model never saw (chapter 5's ``<|user|>``, ``<|assistant|>``, ``<|end|>`` and a few new
characters). With LoRA (:mod:`llmscratch.lora`) every pretrained weight stays frozen,
but the new ids' rows of the token embedding ``wte (V, C)`` and of the output layer
``lm_head (V, C)`` hold nothing learnt yet: they start at the mean of the old rows
(:func:`llmscratch.sft.extend_vocab`) and must be trained. Training the whole matrices
would make every old row trainable too (``2 V C`` numbers, and a way to forget); this
module trains only the new rows::

    W_used = W + S^T D,    W: (V, C) frozen,  D: (k, C) trainable, zero at the start,

where ``S (k, V)`` selects the ``k`` new rows (implemented with ``index_add``, never a
dense ``S``). Rows outside the selection get no gradient and keep their pretrained
values exactly. Hugging Face ``peft`` offers the same rows as ``trainable_token_indices``
(its ``TrainableTokensLayer``); it stores the new rows themselves, initialised to the old
values, where this module stores their change ``D``, so weight decay here pulls a row
back to its starting value rather than to zero. The tests check equal outputs.

:class:`TrainableRows` wraps one ``nn.Embedding`` or bias-free ``nn.Linear``;
:func:`train_new_token_rows` wraps a GPT's ``wte`` and ``lm_head`` for the ids from
``first_new_id`` on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .validate import check_int, check_module


class TrainableRows(nn.Module):
    """A frozen ``nn.Embedding`` / ``nn.Linear`` (weight ``(V, C)``) whose rows ``rows``
    get a trainable additive delta.

    As an embedding: ids ``(B, T)`` -> vectors ``(B, T, C)``. As an output layer:
    hidden states ``(..., C)`` -> logits ``(..., V)``. Either way the weight used is
    ``base.weight`` with ``delta[i]`` added to row ``rows[i]``.

    Args:
        base: the layer to wrap, used in place and frozen; an ``nn.Linear`` must have
            no bias (a GPT's ``lm_head``), an ``nn.Embedding`` no ``padding_idx``,
            ``max_norm`` or sparse gradients.
        rows: distinct row indices in ``[0, V)``, at least one.

    Attributes:
        delta: ``(len(rows), C)``, trainable, zero at the start (so the wrapped layer
            starts equal to ``base``).

    Raises:
        TypeError: if ``base`` is neither layer, or ``rows`` holds non-integers.
        ValueError: for an unsupported option of ``base``, no rows, repeated rows or a
            row outside ``[0, V)``.
    """

    def __init__(self, base: nn.Module, rows: Sequence[int]) -> None:
        super().__init__()
        if isinstance(base, nn.Linear):
            if base.bias is not None:
                raise ValueError("base must be an nn.Linear without bias (a GPT's lm_head)")
        elif isinstance(base, nn.Embedding):
            if base.padding_idx is not None or base.max_norm is not None or base.sparse:
                raise ValueError("base must be a plain nn.Embedding (no padding_idx, max_norm or sparse)")
        else:
            raise TypeError(f"base must be an nn.Embedding or nn.Linear, got {type(base).__name__}")
        n_rows = base.weight.shape[0]
        rows = [check_int("rows[i]", r, minimum=0, maximum=n_rows - 1) for r in rows]
        if not rows:
            raise ValueError("rows must name at least one row")
        if len(set(rows)) != len(rows):
            raise ValueError("rows must be distinct")
        self.base = base
        base.requires_grad_(False)
        self.register_buffer("rows", torch.tensor(rows, dtype=torch.long), persistent=False)
        self.delta = nn.Parameter(torch.zeros(len(rows), base.weight.shape[1], dtype=base.weight.dtype))

    def weight(self) -> Tensor:
        """The weight in use, ``(V, C)``: ``base.weight`` with ``delta`` added to ``rows``."""
        return self.base.weight.index_add(0, self.rows, self.delta)

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(self.base, nn.Embedding):
            return F.embedding(x, self.weight())
        return F.linear(x, self.weight())

    def extra_repr(self) -> str:
        return f"rows={len(self.rows)}"


def train_new_token_rows(model: nn.Module, first_new_id: int) -> list[str]:
    """Wrap ``model.transformer.wte`` and ``model.lm_head`` in :class:`TrainableRows`
    for the ids ``first_new_id .. V - 1``, in place; return the wrapped layers' names.

    Call it after :func:`llmscratch.lora.add_lora` (which freezes every parameter not
    named in its ``train_also``): the two deltas are then the only trainable
    parameters besides the LoRA factors.

    Raises:
        TypeError: if ``model`` is not a module with a GPT's ``transformer.wte`` and
            ``lm_head``.
        ValueError: if ``first_new_id`` is not in ``[1, V - 1]`` (no new ids), or the
            weights are tied (the two layers would then need one shared delta).
    """
    check_module("model", model)
    wte = getattr(getattr(model, "transformer", None), "wte", None)
    lm_head = getattr(model, "lm_head", None)
    if not isinstance(wte, nn.Embedding) or not isinstance(lm_head, nn.Linear):
        raise TypeError("model must have a GPT's transformer.wte (nn.Embedding) and lm_head (nn.Linear)")
    if wte.weight is lm_head.weight:
        raise ValueError("the model ties wte and lm_head; train_new_token_rows needs untied weights")
    vocab_size = wte.weight.shape[0]
    check_int("first_new_id", first_new_id, minimum=1, maximum=vocab_size - 1)
    rows = range(first_new_id, vocab_size)
    model.transformer.wte = TrainableRows(wte, rows)
    model.lm_head = TrainableRows(lm_head, rows)
    return ["transformer.wte", "lm_head"]


__all__ = ["TrainableRows", "train_new_token_rows"]
