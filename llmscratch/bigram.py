"""The count-based bigram model: the baseline every later model must beat.

Taught in chapter 1. The maximum-likelihood estimate of :math:`P(c_t \\mid c_{t-1})`
is a table of counts, one row per previous character, normalised row by row; adding
``alpha`` to every count (Laplace smoothing) keeps unseen pairs from getting
probability zero, which would give held-out text an infinite loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .lm import LanguageModel
from .validate import check_float, check_int, check_positive_int, check_token_ids


@dataclass(frozen=True)
class BigramConfig:
    """Settings of :class:`BigramLM`.

    Attributes:
        vocab_size: number of tokens :math:`V`.
        alpha: pseudo-count added to every cell (``alpha >= 0``); 0 is the raw
            maximum-likelihood estimate.
        block_size: a bigram model reads one token of context, so this is 1.

    Raises:
        TypeError: for a non-int ``vocab_size`` or a non-number ``alpha``.
        ValueError: if ``vocab_size < 1``, ``alpha`` is negative or not finite, or
            ``block_size != 1``.
    """

    vocab_size: int
    alpha: float = 1.0
    block_size: int = 1

    def __post_init__(self) -> None:
        check_positive_int("vocab_size", self.vocab_size)
        check_float("alpha", self.alpha, minimum=0.0)
        check_int("block_size", self.block_size, minimum=1, maximum=1)

    def to_dict(self) -> dict:
        return asdict(self)


class BigramLM(LanguageModel):
    """A bigram language model whose logits are the log of smoothed counts.

    It follows the contract of :mod:`llmscratch.lm` (a window model reading one token),
    so the same evaluation and sampler work on it. It has no trainable parameters:
    :meth:`fit` counts.

    Args:
        config: a :class:`BigramConfig`.

    Raises:
        TypeError: if ``config`` is not a BigramConfig.
    """

    fixed_context = True

    def __init__(self, config: BigramConfig) -> None:
        super().__init__()
        if not isinstance(config, BigramConfig):
            raise TypeError(f"config must be a BigramConfig, got {type(config).__name__}")
        self.config = config
        self.register_buffer("counts", torch.zeros(config.vocab_size, config.vocab_size))

    def fit(self, prev: torch.Tensor, nxt: torch.Tensor) -> "BigramLM":
        """Count every (previous, next) token pair; ``prev`` and ``nxt`` are ``(N,)`` int64 ids.

        Raises:
            TypeError: for a non-tensor or a non-int64 tensor.
            ValueError: for ids outside ``[0, vocab_size)`` or tensors of different shapes.
        """
        V = self.config.vocab_size
        check_token_ids("prev", prev, V, ndim=1)
        check_token_ids("nxt", nxt, V, ndim=1)
        if prev.shape != nxt.shape:
            raise ValueError(f"prev and nxt must have one shape, got {tuple(prev.shape)} and {tuple(nxt.shape)}")
        counts = torch.zeros(V, V)
        counts.index_put_((prev, nxt), torch.ones(len(prev)), accumulate=True)
        self.counts.copy_(counts)
        return self

    @property
    def probs(self) -> torch.Tensor:
        """``(V, V)`` matrix whose row ``i`` is :math:`P(\\cdot \\mid i)`; each row sums to 1.

        With ``alpha = 0`` a token never seen as a context has no counts to normalise
        (0 / 0); its row is uniform, the maximum-entropy guess, rather than NaN.
        """
        smoothed = self.counts + self.config.alpha
        totals = smoothed.sum(dim=1, keepdim=True)
        uniform = torch.full_like(smoothed, 1.0 / self.config.vocab_size)
        return torch.where(totals > 0, smoothed / totals.clamp_min(1e-30), uniform)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Next-token logits from the previous token.

        Args:
            idx: ``(B, 1)`` int64 token ids.
            targets: ``(B,)`` next-token ids, or None.

        Returns:
            ``logits`` ``(B, V)`` (log-probabilities) and the mean cross-entropy in nats
            (None without targets).

        Raises:
            TypeError, ValueError: as :meth:`~llmscratch.lm.LanguageModel.check_inputs`.
        """
        self.check_inputs(idx, targets)
        logits = self.probs.log()[idx[:, -1]]  # (B, V)
        return logits, self.loss_from_logits(logits, targets)
