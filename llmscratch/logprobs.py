"""Log-probabilities of given tokens under a language model: the quantity DPO compares.

Taught in chapter 6. :func:`token_logprobs` scores every next token of a batch in one
forward pass; :func:`sequence_logprob` sums those of the response tokens only (the prompt
is context, padding is never scored), giving ``log pi(y|x)`` of each row. DPO's loss
(:mod:`llmscratch.dpo`) is built from four of these; :mod:`llmscratch.dpo` re-exports both functions.
"""

from __future__ import annotations

import torch

from .validate import check_module, check_token_ids


def _check_ids(ids: torch.Tensor, model: torch.nn.Module | None = None) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long:
        raise TypeError(f"ids must be an int64 tensor (B, T), got {getattr(ids, 'dtype', type(ids).__name__)}")
    if ids.ndim != 2:
        raise ValueError(f"ids must have shape (B, T), got {tuple(ids.shape)}")
    if ids.shape[1] < 2:
        raise ValueError(f"ids need at least 2 positions, got T={ids.shape[1]}")
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab_size is not None:  # the last column is only a target: the model does not see it
        check_token_ids("ids", ids, vocab_size)


def _check_ids_mask(ids: torch.Tensor, response_mask: torch.Tensor) -> None:
    _check_ids(ids)
    if not isinstance(response_mask, torch.Tensor) or response_mask.dtype != torch.bool:
        raise TypeError(f"response_mask must be a bool tensor (B, T), got "
                        f"{getattr(response_mask, 'dtype', type(response_mask).__name__)}")
    if response_mask.shape != ids.shape:
        raise ValueError(f"response_mask shape {tuple(response_mask.shape)} != ids shape {tuple(ids.shape)}")
    if bool(response_mask[:, 0].any()):
        raise ValueError("response_mask[:, 0] must be False: the first token has no context to score it")


def token_logprobs(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """``log p(ids[:, t] | ids[:, :t])`` for ``t >= 1``: ``(B, T - 1)``, nats.

    Raises:
        TypeError: if ``model`` is not a torch module or ``ids`` not an int64 tensor.
        ValueError: if ``ids`` is not ``(B, T)`` with ``T >= 2``, or holds an id outside
            the model's vocabulary.
    """
    check_module("model", model)
    _check_ids(ids, model)
    logits, _ = model(ids[:, :-1])  # (B, T-1, V): position t-1 predicts token t
    # (B, T-1)
    return logits.log_softmax(dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)


def sequence_logprob(
    model: torch.nn.Module, ids: torch.Tensor, response_mask: torch.Tensor
) -> torch.Tensor:
    """Log-probability of each row's response under ``model``: ``(B,)``, nats.

    ``sum_t log p(ids[b, t] | ids[b, :t])`` over the positions ``t`` where
    ``response_mask[b, t]`` is True: the response tokens and the end token. The prompt
    is context only, and padding after the end token is neither scored nor (the model
    being causal) seen by a scored position, so padding cannot change the result.

    Args:
        model: a language model, ``model(idx) -> (logits (B, T, V), _)``.
        ids: ``(B, T)`` int64, prompt + response + end token, right-padded.
        response_mask: ``(B, T)`` bool, e.g. the ``loss_mask`` of
            :meth:`llmscratch.sft.AssistantTokenizer.render` (False on padding).

    Raises:
        TypeError: for a wrong dtype or rank.
        ValueError: for mismatched shapes, ``T < 2``, or a True mask at position 0.
    """
    check_module("model", model)
    _check_ids_mask(ids, response_mask)
    logp = token_logprobs(model, ids)  # (B, T-1)
    # (B,)
    return torch.where(response_mask[:, 1:], logp, torch.zeros_like(logp)).sum(dim=-1)
