"""The contract every language model of the book follows.

Taught in chapter 1 (the bigram table and the MLP), kept by the GPT of chapter 4 and
everything built on it. A model that follows it plugs into the one training loop
(:mod:`llmscratch.train`), the sampler (:mod:`llmscratch.sampling`) and every
evaluation without a special case:

* ``model.config``: a validated dataclass with at least ``vocab_size`` (``V``) and
  ``block_size`` (the context length ``T`` it reads).
* ``model(idx, targets=None) -> (logits, loss)``. ``idx`` is ``(B, T)`` int64 token ids.
  The logits are unnormalised log-probabilities with one row of ``V`` per target:
  ``logits.shape == targets.shape + (V,)``. A *window* model (the bigram table, the
  MLP) predicts the one token after its window: targets ``(B,)``, logits ``(B, V)``.
  A *sequence* model (the GPT) predicts the next token at every position: targets
  ``(B, T)``, logits ``(B, T, V)``. Either way the last row of
  ``logits.reshape(B, -1, V)`` predicts the token after ``idx[:, -1]``, which is all the
  sampler needs (:meth:`LanguageModel.next_token_logits`).
* ``loss`` is the mean cross-entropy over the targets, in nats per token, ignoring
  targets equal to ``IGNORE_INDEX`` (-100); None without targets.
* The same input checks for every model (:meth:`LanguageModel.check_inputs`): the same
  error types for the same mistakes.
* ``num_parameters()`` counts parameters (a tied matrix once).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .validate import check_bool, check_int, check_token_ids

IGNORE_INDEX = -100  # a target equal to this is not scored (padding, prompts in SFT)


class LanguageModel(nn.Module):
    """Base class of :class:`~llmscratch.bigram.BigramLM`, :class:`~llmscratch.mlp.MLPLanguageModel`
    and :class:`~llmscratch.gpt.GPT` (see the module docstring for the contract).

    Class attribute ``fixed_context``: True for a window model, which reads exactly
    ``block_size`` tokens (the sampler left-pads shorter prompts); False for a sequence
    model, which reads 1 to ``block_size`` tokens.
    """

    fixed_context: bool = False

    def check_inputs(self, idx: Tensor, targets: Tensor | None = None) -> None:
        """Check ``idx`` ``(B, T)`` and ``targets`` against the contract.

        Raises:
            TypeError: ``idx`` or ``targets`` is not an int64 tensor.
            ValueError: ``idx`` is not 2-D, its length is not allowed (``T == block_size``
                for a window model, ``1 <= T <= block_size`` for a sequence model), an id is
                outside ``[0, vocab_size)``, or ``targets`` has the wrong shape or holds an
                id that is neither in ``[0, vocab_size)`` nor ``IGNORE_INDEX``.
        """
        V, block_size = self.config.vocab_size, self.config.block_size
        check_token_ids("idx", idx, V, ndim=2)
        T = idx.shape[1]
        if self.fixed_context and T != block_size:
            raise ValueError(f"idx must have shape (B, block_size={block_size}), got {tuple(idx.shape)}")
        if not 1 <= T <= block_size:
            raise ValueError(f"idx length T={T} must be in [1, block_size={block_size}]")
        if targets is None:
            return
        if not isinstance(targets, Tensor) or targets.dtype != torch.long:
            raise TypeError(f"targets must be an int64 tensor, got {getattr(targets, 'dtype', type(targets))}")
        want = idx.shape[:1] if self.fixed_context else idx.shape
        if targets.shape != want:
            raise ValueError(f"targets must have shape {tuple(want)}, got {tuple(targets.shape)}")
        bad = (targets != IGNORE_INDEX) & ((targets < 0) | (targets >= V))
        if bool(bad.any()):
            raise ValueError(f"targets must hold ids in [0, {V}) or {IGNORE_INDEX}, got {int(targets[bad][0])}")

    @staticmethod
    def loss_from_logits(logits: Tensor, targets: Tensor | None) -> Tensor | None:
        """Mean cross-entropy in nats over the targets that are not ``IGNORE_INDEX``.

        ``logits`` ``(..., V)`` and ``targets`` of shape ``logits.shape[:-1]``; NaN if
        every target is ignored; None without targets.
        """
        if targets is None:
            return None
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                               ignore_index=IGNORE_INDEX)

    def context(self, idx: Tensor, pad_id: int | None = None) -> Tensor:
        """The part of ``idx`` ``(B, T0)`` the model reads: the last ``block_size`` tokens.

        A window model given fewer than ``block_size`` tokens gets them left-padded
        with ``pad_id``.

        Raises:
            TypeError: ``idx`` not an int64 tensor, or ``pad_id`` not an int.
            ValueError: ``idx`` not 2-D, ``pad_id`` outside the vocabulary, or, for a window
                model, a short prompt and no ``pad_id``.
        """
        check_token_ids("idx", idx, self.config.vocab_size, ndim=2)
        if pad_id is not None:
            check_int("pad_id", pad_id, minimum=0, maximum=self.config.vocab_size - 1)
        block_size = self.config.block_size
        idx = idx[:, -block_size:]
        if self.fixed_context and idx.shape[1] < block_size:
            if pad_id is None:
                raise ValueError(
                    f"this model reads exactly block_size={block_size} tokens; the prompt has "
                    f"{idx.shape[1]}: pass pad_id to left-pad it"
                )
            pad = torch.full((idx.shape[0], block_size - idx.shape[1]), pad_id, dtype=idx.dtype, device=idx.device)
            idx = torch.cat([pad, idx], dim=1)
        return idx

    def next_token_logits(self, idx: Tensor, *, pad_id: int | None = None) -> Tensor:
        """Logits ``(B, V)`` of the token after ``idx[:, -1]``, reading :meth:`context`."""
        logits, _ = self(self.context(idx, pad_id))
        return logits.reshape(idx.shape[0], -1, logits.shape[-1])[:, -1]  # (B, V)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Number of parameters, a tied matrix counted once.

        With ``exclude_embeddings=True`` the ``nn.Embedding`` tables are left out, as
        Kaplan et al. 2020 count for scaling laws (a head tied to the token embedding
        is then left out too, being the same matrix).
        """
        check_bool("exclude_embeddings", exclude_embeddings)
        params = {id(p): p.numel() for p in self.parameters()}
        if exclude_embeddings:
            for module in self.modules():
                if isinstance(module, nn.Embedding):
                    params.pop(id(module.weight), None)
        return sum(params.values())
