"""Objectives for the training loop of :mod:`llmscratch.train`.

An objective is a function ``objective(model, batch) -> (loss, metrics)`` (see
:mod:`llmscratch.train`). This module holds the one every language model of chapters
1-5 trains with; chapter 6's DPO objective lives with its math in :mod:`llmscratch.dpo`.
"""

from __future__ import annotations

import torch

from .lm import IGNORE_INDEX


def _check_batch(batch: object) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` as ``(x, y)``; the model checks the tensors themselves."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"batch must be an (x, y) pair of tensors, got {type(batch).__name__}")
    x, y = batch
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"batch targets y must be a tensor, got {type(y).__name__}")
    return x, y


def next_token_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean next-token cross-entropy (nats per target) of a language model on
    ``(x, y)``.

    ``x`` is ``(B, T)`` token ids and ``y`` the targets the model's contract expects
    (``(B,)`` for a window model, ``(B, T)`` for a sequence model;
    :mod:`llmscratch.lm`). Targets equal to ``IGNORE_INDEX`` are not scored, which is
    all supervised fine-tuning needs: :class:`llmscratch.sft.SFTDataset` sets the
    prompt's targets to it, so the same objective computes the response-only loss of
    chapter 5.

    Returns:
        ``(loss, {"count": scored targets, "tokens": y.numel()})``.

    Raises:
        TypeError: if ``batch`` is not a pair of tensors (the model checks the rest).
    """
    x, y = _check_batch(batch)
    _, loss = model(x, y)
    return loss, {"count": int((y != IGNORE_INDEX).sum()), "tokens": y.numel()}
