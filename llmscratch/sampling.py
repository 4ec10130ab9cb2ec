"""Autoregressive sampling: temperature, top-k and nucleus (top-p) filtering.

Taught in chapter 1 and used unchanged by every later model. One step of generation
is: crop the context to the model's window, run the model, take the logits of the
last position, reshape the distribution (temperature, top-k, top-p), sample, append.

References: temperature sampling (Ackley, Hinton & Sejnowski, 1985, the Boltzmann
distribution); top-k (Fan, Lewis & Dauphin, 2018); nucleus sampling (Holtzman et al.,
2020, section 3.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_filters(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature} (use greedy=True for argmax)")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be an int >= 1 or None, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] or None, got {top_p!r}")


def filter_logits(
    logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Reshape next-token logits before sampling.

    * temperature :math:`\\tau`: ``logits / tau``; :math:`\\tau < 1` sharpens the
      distribution, :math:`\\tau > 1` flattens it.
    * top-k: keep the ``top_k`` largest logits (ties at the threshold are kept).
    * top-p: keep the smallest set of most likely tokens whose probabilities sum to at
      least ``top_p`` (the nucleus); the most likely token is always kept.

    Removed tokens get logit ``-inf``, hence probability 0 after the softmax.

    Args:
        logits: ``(B, V)`` unnormalised log-probabilities.

    Returns:
        ``(B, V)`` filtered logits.

    Raises:
        ValueError: if ``temperature <= 0``, ``top_k < 1`` or ``top_p`` is outside (0, 1].
    """
    _check_filters(temperature, top_k, top_p)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # Drop a token when the tokens ranked above it already reach top_p.
        drop_sorted = (cum - sorted_logits.softmax(dim=-1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _context_window(idx: torch.Tensor, block_size: int, fixed: bool, pad_id: int | None):
    """The last ``block_size`` tokens; left-padded with ``pad_id`` for fixed-window models."""
    idx = idx[:, -block_size:]
    if fixed and idx.shape[1] < block_size:
        if pad_id is None:
            raise ValueError(
                f"this model reads exactly block_size={block_size} tokens; the prompt has "
                f"{idx.shape[1]}: pass pad_id to left-pad it"
            )
        pad = torch.full((idx.shape[0], block_size - idx.shape[1]), pad_id, dtype=idx.dtype)
        idx = torch.cat([pad, idx], dim=1)
    return idx


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    stop_id: int | None = None,
    pad_id: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Extend each row of ``idx`` by up to ``max_new_tokens`` sampled tokens.

    Works with any model of the book: ``model(idx)`` returns logits ``(B, V)`` (a
    fixed-window model such as the MLP, which reads exactly ``block_size`` tokens and
    says so with ``model.fixed_context = True``) or ``(B, T, V)`` (the transformer,
    which reads up to ``block_size``).

    Args:
        model: a language model with ``model.config.block_size``.
        idx: ``(B, T0)`` int64 prompt ids, ``T0 >= 1``.
        max_new_tokens: number of tokens to add, ``>= 0``.
        temperature, top_k, top_p: see :func:`filter_logits`.
        greedy: take the argmax instead of sampling (filters are then ignored).
        stop_id: once a row emits this token it is finished; later positions of that
            row are filled with ``stop_id``, and generation ends early when every row is
            finished.
        pad_id: left-padding token for fixed-window models given a prompt shorter than
            ``block_size``.
        generator: a seeded ``torch.Generator`` for reproducible samples.

    Returns:
        ``(B, T0 + n)`` int64 ids with ``n <= max_new_tokens``.

    Raises:
        ValueError: for bad filter arguments, an empty prompt or ``max_new_tokens < 0``.
    """
    if not greedy:
        _check_filters(temperature, top_k, top_p)
    if idx.ndim != 2 or idx.shape[1] < 1:
        raise ValueError(f"idx must have shape (B, T0) with T0 >= 1, got {tuple(idx.shape)}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    block_size = model.config.block_size
    fixed = getattr(model, "fixed_context", False)
    _context_window(idx, block_size, fixed, pad_id)  # fail early on a short prompt without pad_id
    was_training = model.training
    model.eval()
    finished = torch.zeros(idx.shape[0], dtype=torch.bool)
    try:
        for _ in range(max_new_tokens):
            logits, _ = model(_context_window(idx, block_size, fixed, pad_id))
            if logits.ndim == 3:
                logits = logits[:, -1, :]  # (B, V): the prediction after the last token
            if greedy:
                nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                probs = F.softmax(filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p), dim=-1)
                nxt = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
            if stop_id is not None:
                nxt = nxt.masked_fill(finished[:, None], stop_id)
                finished |= nxt[:, 0] == stop_id
            idx = torch.cat([idx, nxt], dim=1)
            if stop_id is not None and bool(finished.all()):
                break
    finally:
        model.train(was_training)
    return idx
