"""The count-based bigram model: the baseline every later model must beat.

Taught in chapter 1. The maximum-likelihood estimate of :math:`P(c_t \\mid c_{t-1})`
is a table of counts, one row per previous character, normalised row by row; adding
``alpha`` to every count (Laplace smoothing) keeps unseen pairs from getting
probability zero, which would give held-out text an infinite loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BigramConfig:
    """A bigram model reads one token of context, so ``block_size`` is 1."""

    vocab_size: int
    alpha: float = 1.0
    block_size: int = 1


class BigramLM(nn.Module):
    """A bigram language model whose logits are the log of smoothed counts.

    It has the same interface as every model in the book, ``forward(idx, targets)
    -> (logits, loss)``, so the same evaluation and sampler work on it. It has no
    trainable parameters: :meth:`fit` counts.

    Args:
        vocab_size: number of tokens :math:`V`.
        alpha: pseudo-count added to every cell (``alpha >= 0``); 0 is the raw
            maximum-likelihood estimate.

    Raises:
        ValueError: if ``vocab_size < 1`` or ``alpha < 0``.
    """

    def __init__(self, vocab_size: int, alpha: float = 1.0) -> None:
        super().__init__()
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.config = BigramConfig(vocab_size, alpha)
        self.vocab_size, self.alpha = vocab_size, alpha
        self.register_buffer("counts", torch.zeros(vocab_size, vocab_size))

    def fit(self, prev: torch.Tensor, nxt: torch.Tensor) -> "BigramLM":
        """Count every (previous, next) token pair; ``prev`` and ``nxt`` are ``(N,)`` ids."""
        counts = torch.zeros(self.vocab_size, self.vocab_size)
        counts.index_put_((prev.long(), nxt.long()), torch.ones(len(prev)), accumulate=True)
        self.counts.copy_(counts)
        return self

    @property
    def probs(self) -> torch.Tensor:
        """``(V, V)`` matrix whose row ``i`` is :math:`P(\\cdot \\mid i)`; each row sums to 1."""
        smoothed = self.counts + self.alpha
        return smoothed / smoothed.sum(dim=1, keepdim=True)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Next-token logits from the last token of each context.

        Args:
            idx: ``(B, T)`` token ids; only ``idx[:, -1]`` is used.
            targets: ``(B,)`` next-token ids, or None.

        Returns:
            ``logits`` ``(B, V)`` (log-probabilities) and the mean cross-entropy in nats
            (None without targets).
        """
        logits = self.probs.log()[idx[:, -1]]  # (B, V)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss
