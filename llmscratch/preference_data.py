"""Preference pairs as tensors: the dataset DPO trains on, and its log-probabilities.

Taught in chapter 6. :class:`PreferenceDataset` renders each
:class:`~llmscratch.task_records.PreferencePair` (prompt, chosen and rejected response) with
the assistant tokenizer and right-pads it, a dataset of the one training loop
(:mod:`llmscratch.train`); :func:`dataset_logprobs` scores every pair under a model with
:func:`~llmscratch.logprobs.sequence_logprob`. Both are re-exported by :mod:`llmscratch.dpo`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .chat import AssistantTokenizer
from .logprobs import sequence_logprob
from .tasks import PreferencePair
from .validate import check_module, check_positive_int


class PreferenceDataset:
    """Preference pairs rendered and right-padded: chosen and rejected ids with response masks.

    A dataset of the training loop (:mod:`llmscratch.train`): ``sample`` and ``batches``
    give :meth:`batch` blocks, which :class:`~llmscratch.dpo.DPOObjective` reads.

    Attributes:
        chosen_ids, rejected_ids: ``(N, L)`` int64, padded with ``tokenizer.pad_id``.
        chosen_mask, rejected_mask: ``(N, L)`` bool, True on response tokens and the end token.
        pairs: the :class:`~llmscratch.task_records.PreferencePair` objects; ``kinds`` their kinds.

    Raises:
        TypeError: if ``tokenizer`` is not an AssistantTokenizer, a pair is not a
            PreferencePair, or ``block_size`` is not an int.
        ValueError: for no pairs, ``block_size < 1``, or a pair longer than ``block_size`` tokens.
    """

    def __init__(self, tokenizer: AssistantTokenizer, pairs: Sequence[PreferencePair], *,
                 block_size: int | None = None) -> None:
        if not isinstance(tokenizer, AssistantTokenizer):
            raise TypeError(f"tokenizer must be an AssistantTokenizer, got {type(tokenizer).__name__}")
        if block_size is not None:
            check_positive_int("block_size", block_size)
        if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
            raise TypeError(f"pairs must be a sequence of PreferencePair, got {type(pairs).__name__}")
        if len(pairs) == 0:
            raise ValueError("pairs is empty")
        for i, p in enumerate(pairs):
            if not isinstance(p, PreferencePair):
                raise TypeError(f"pairs[{i}] must be a PreferencePair, got {type(p).__name__}")
        chosen = [tokenizer.render(p.instruction, p.chosen) for p in pairs]
        rejected = [tokenizer.render(p.instruction, p.rejected) for p in pairs]
        longest = max(len(ids) for ids, _ in chosen + rejected)
        if block_size is not None and longest > block_size:
            raise ValueError(f"a pair has {longest} tokens, more than block_size={block_size}")
        n = len(pairs)
        self.chosen_ids = torch.full((n, longest), tokenizer.pad_id, dtype=torch.long)
        self.rejected_ids = torch.full((n, longest), tokenizer.pad_id, dtype=torch.long)
        self.chosen_mask = torch.zeros((n, longest), dtype=torch.bool)
        self.rejected_mask = torch.zeros((n, longest), dtype=torch.bool)
        for i, ((c, cm), (r, rm)) in enumerate(zip(chosen, rejected)):
            self.chosen_ids[i, : len(c)], self.chosen_mask[i, : len(c)] = c, cm
            self.rejected_ids[i, : len(r)], self.rejected_mask[i, : len(r)] = r, rm
        self.pairs = list(pairs)
        self.kinds = [p.kind for p in pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def sample(self, batch_size: int, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` random pairs (with replacement), as :meth:`batch`."""
        check_positive_int("batch_size", batch_size)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        return self.batch(torch.randint(len(self), (batch_size,), generator=generator))

    def batches(self, batch_size: int):
        """Every pair once, in order, as :meth:`batch` blocks (``batch_size`` is checked at the call)."""
        check_positive_int("batch_size", batch_size)
        return (self.batch(torch.arange(start, min(start + batch_size, len(self))))
                for start in range(0, len(self), batch_size))

    @property
    def tensors(self) -> tuple[torch.Tensor, ...]:
        """What a cache key fingerprints."""
        return self.chosen_ids, self.chosen_mask, self.rejected_ids, self.rejected_mask

    def batch(self, ix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``ix`` as one block: ``ids (2B, T)`` and ``mask (2B, T)``, chosen first.

        Chosen and rejected go through the model together (one forward pass), cut after
        the last response token of the block.

        Raises:
            TypeError: if ``ix`` is not an integer tensor.
            ValueError: if ``ix`` is not 1-D, empty, or holds a row outside ``[0, len(self))``.
        """
        if not isinstance(ix, torch.Tensor) or ix.dtype != torch.long:
            raise TypeError(f"ix must be an int64 tensor of row indices, got {getattr(ix, 'dtype', type(ix).__name__)}")
        if ix.ndim != 1 or ix.numel() == 0:
            raise ValueError(f"ix must be a non-empty 1-D tensor, got shape {tuple(ix.shape)}")
        if int(ix.min()) < 0 or int(ix.max()) >= len(self):
            raise ValueError(f"ix must hold rows in [0, {len(self)}), got min {int(ix.min())}, max {int(ix.max())}")
        ids = torch.cat([self.chosen_ids[ix], self.rejected_ids[ix]])  # (2B, L)
        mask = torch.cat([self.chosen_mask[ix], self.rejected_mask[ix]])  # (2B, L)
        end = int(mask.any(dim=0).nonzero().max()) + 1
        return ids[:, :end].contiguous(), mask[:, :end].contiguous()


@torch.no_grad()
def dataset_logprobs(model: torch.nn.Module, dataset: PreferenceDataset, *, batch_size: int = 256
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence log-probabilities ``(chosen (N,), rejected (N,))`` of every pair, in eval mode."""
    check_module("model", model)
    _check_dataset(dataset)
    check_positive_int("batch_size", batch_size)
    was_training = model.training
    model.eval()
    chosen, rejected = [], []
    try:
        for ids, mask in dataset.batches(batch_size):
            logps = sequence_logprob(model, ids, mask)  # (2n,): chosen, then rejected
            n = len(logps) // 2
            chosen.append(logps[:n])
            rejected.append(logps[n:])
    finally:
        model.train(was_training)
    return torch.cat(chosen), torch.cat(rejected)


def _check_dataset(dataset: object) -> None:
    if not isinstance(dataset, PreferenceDataset):
        raise TypeError(f"dataset must be a PreferenceDataset, got {type(dataset).__name__}")
