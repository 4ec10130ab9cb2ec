"""Autoregressive sampling: temperature, top-k and nucleus (top-p) filtering.

Taught in chapter 1 and used by every later model (chapter 9 adds ``use_cache``, a cache
of keys and values for the GPT: :mod:`llmscratch.kv_cache`). One step of generation
is: crop the context to the model's window, run the model, take the logits of the
last position, reshape the distribution (temperature, top-k, top-p), sample, append.

References: temperature sampling (Ackley, Hinton & Sejnowski, 1985, the Boltzmann
distribution); top-k (Fan, Lewis & Dauphin, 2018); nucleus sampling (Holtzman et al.,
2020, section 3.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .lm import LanguageModel
from .validate import check_bool, check_float, check_float_tensor, check_int, check_token_ids


def _check_filters(temperature: float, top_k: int | None, top_p: float | None) -> None:
    check_float("temperature", temperature, minimum=0.0, min_inclusive=False)
    if top_k is not None:
        check_int("top_k", top_k, minimum=1)
    if top_p is not None:
        check_float("top_p", top_p, minimum=0.0, maximum=1.0, min_inclusive=False)


def filter_logits(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
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
        TypeError: if ``logits`` is not a floating-point tensor or a filter argument has
            the wrong type.
        ValueError: if ``logits`` is not 2-D, ``temperature <= 0`` (or not finite),
            ``top_k < 1`` or ``top_p`` is outside (0, 1].
    """
    check_float_tensor("logits", logits, ndim=2)
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


def _check_logits(logits: torch.Tensor, step: int) -> None:
    """Raise FloatingPointError unless every row of ``logits`` ``(B, V)`` has a finite maximum.

    One reduction: the row maximum is NaN if the row holds a NaN, +inf if it holds
    +inf, and -inf if every logit is -inf; -inf logits elsewhere (a bigram count of
    zero with ``alpha=0``) are legitimate and pass.
    """
    if not bool(torch.isfinite(logits.amax(dim=-1)).all()):
        raise FloatingPointError(
            f"the model's logits are not finite at generation step {step} (NaN, +inf, or every "
            "logit -inf): no token can be sampled; check the model's weights (a diverged run?)")


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
    use_cache: bool = False,
) -> torch.Tensor:
    """Extend each row of ``idx`` by up to ``max_new_tokens`` sampled tokens.

    Works with any model that follows the contract of :mod:`llmscratch.lm`: each step
    asks it for :meth:`~llmscratch.lm.LanguageModel.next_token_logits` (the context it
    reads, cropped or left-padded, and the logits after its last token).

    Args:
        model: a :class:`~llmscratch.lm.LanguageModel`.
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
        use_cache: keep the keys and values of the tokens read so far
            (:mod:`llmscratch.kv_cache`, chapter 9) and run the model only on the new
            token at each step; the model must offer ``new_kv_cache`` (the GPT does).
            The cache is used while the whole sequence fits in ``block_size``; after that
            the window slides, every position changes, and each step reads the last
            ``block_size`` tokens afresh, as without the cache. Same tokens as
            ``use_cache=False`` up to float rounding of the logits.

    Returns:
        ``(B, T0 + n)`` int64 ids with ``n <= max_new_tokens``.

    Raises:
        TypeError: for a model that is not a LanguageModel, ids that are not int64, a
            non-int ``max_new_tokens``, ``stop_id`` or ``pad_id``, a non-bool ``greedy``
            or a ``generator`` that is not a torch.Generator.
        ValueError: for bad filter arguments, an empty prompt, ids outside the
            vocabulary, ``max_new_tokens < 0``, ``stop_id`` or ``pad_id`` outside the
            vocabulary, or a short prompt without ``pad_id`` for a window model.
        TypeError: also for ``use_cache`` with a model without ``new_kv_cache``.
        FloatingPointError: if the model's logits at a step are not usable: NaN, +inf,
            or every logit of a row -inf (no token has any probability).
    """
    if not isinstance(model, LanguageModel):
        raise TypeError(f"model must be a llmscratch.lm.LanguageModel, got {type(model).__name__}")
    check_bool("greedy", greedy)
    if not greedy:
        _check_filters(temperature, top_k, top_p)
    V = model.config.vocab_size
    check_token_ids("idx", idx, V, ndim=2)
    if idx.shape[1] < 1:
        raise ValueError(f"idx must have shape (B, T0) with T0 >= 1, got {tuple(idx.shape)}")
    check_int("max_new_tokens", max_new_tokens, minimum=0)
    if stop_id is not None:
        check_int("stop_id", stop_id, minimum=0, maximum=V - 1)
    if pad_id is not None:
        check_int("pad_id", pad_id, minimum=0, maximum=V - 1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    model.context(idx, pad_id)  # fail early on a short prompt without pad_id
    check_bool("use_cache", use_cache)
    if use_cache and not callable(getattr(model, "new_kv_cache", None)):
        raise TypeError(f"use_cache=True needs a model with new_kv_cache (a GPT); "
                        f"{type(model).__name__} has none")
    block_size = model.config.block_size
    cache = (model.new_kv_cache(idx.shape[0], min(block_size, idx.shape[1] + max(max_new_tokens - 1, 0)))
             if use_cache and idx.shape[1] <= block_size else None)
    was_training = model.training
    model.eval()
    finished = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
    try:
        for step in range(max_new_tokens):
            if cache is not None and idx.shape[1] <= cache.max_len:
                # the tokens not yet in the cache: the prompt at step 0, then the last one
                logits = model(idx[:, cache.length:], cache=cache)[0][:, -1]  # (B, V)
            else:
                logits = model.next_token_logits(idx, pad_id=pad_id)  # (B, V)
            _check_logits(logits, step)
            if greedy:
                nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                filtered = filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p)
                if not bool(torch.isfinite(filtered.amax(dim=-1)).all()):  # logits / tau overflowed
                    raise FloatingPointError(f"logits / temperature overflow at generation step {step} "
                                             f"(temperature={temperature:g} is too small); raise it or use greedy=True")
                probs = F.softmax(filtered, dim=-1)
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
