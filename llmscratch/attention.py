"""Scaled dot-product attention and causal multi-head self-attention.

Taught in chapter 4 (self-attention and the GPT transformer). The math is written out
by hand first, as two pure functions (`causal_mask`, `scaled_dot_product_attention`);
the module `CausalSelfAttention` then wraps them with the learned projections of a
GPT block. A flag switches the module to PyTorch's fused kernel
(`torch.nn.functional.scaled_dot_product_attention`) so the book can compare speed;
the tests check that both paths give the same numbers.

Notation used for tensor shapes:
    B   batch size
    T   sequence length (Tq queries, Tk keys/values when they differ)
    C   embedding width, ``n_embd``
    nh  number of heads, ``n_head``
    hs  head size, ``C // nh``

Sources: Vaswani et al. 2017, "Attention Is All You Need", eq. 1 (scaled dot-product
attention) and section 3.2.2 (multi-head attention); Radford et al. 2019, "Language
Models are Unsupervised Multitask Learners" (GPT-2: the fused ``c_attn`` / ``c_proj``
layout and names used here).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .kv_cache import LayerKV
from .validate import check_bool, check_float, check_float_tensor, check_positive_int


def causal_mask(T: int, *, device: torch.device | str | None = None) -> Tensor:
    """The ``(T, T)`` boolean causal mask: ``mask[i, j]`` is True when query i may attend to key j.

    Position i sees positions ``0..i`` (itself and the past), never the future.
    Same convention as ``torch.nn.functional.scaled_dot_product_attention``
    (True = may attend); note that ``torch.nn.MultiheadAttention`` uses the opposite one.

    Example: ``causal_mask(3)`` is
    ``[[True, False, False], [True, True, False], [True, True, True]]``.

    Raises:
        TypeError: if ``T`` is not an int.
        ValueError: if ``T`` < 1.
    """
    check_positive_int("T", T)
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def _check_sdpa_types(q, k, v, mask, causal, training, return_weights, generator) -> None:
    """The type checks of `scaled_dot_product_attention` (its shape checks are in the function)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_float_tensor(name, t)
        if t.ndim < 2:
            raise ValueError(f"{name} must have shape (..., T, head size), got {tuple(t.shape)}")
    if mask is not None and not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a tensor or None, got {type(mask).__name__}")
    check_bool("causal", causal)
    check_bool("training", training)
    check_bool("return_weights", return_weights)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    mask: Tensor | None = None,
    causal: bool = False,
    dropout_p: float = 0.0,
    training: bool = False,
    generator: torch.Generator | None = None,
    return_weights: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V, written out by hand.

    Vaswani et al. 2017, eq. 1. Steps: scores, mask, softmax over the keys,
    dropout on the weights, weighted sum of the values.

    Args:
        q: queries ``(B, nh, Tq, hs)``. Any leading dimensions work, e.g. ``(Tq, hs)``.
        k: keys ``(B, nh, Tk, hs)``.
        v: values ``(B, nh, Tk, hv)``.
        mask: optional, broadcastable to ``(B, nh, Tq, Tk)``. Boolean: True = may attend
            (False positions get score -inf before the softmax), as in torch's SDPA.
            Floating point: added to the scores (an additive bias such as ALiBi,
            with -inf for forbidden positions).
        causal: also apply `causal_mask` (requires ``Tq == Tk``). Combines with
            ``mask``.
        dropout_p: probability of zeroing an attention weight, in ``[0, 1)``; the kept
            weights are scaled by ``1 / (1 - dropout_p)``. Only used when ``training``.
        training: apply dropout (pass ``module.training``).
        generator: random generator for the dropout mask (reproducible dropout).
        return_weights: also return the attention weights.

    Returns:
        ``out`` of shape ``(B, nh, Tq, hv)``, or ``(out, weights)`` when
        ``return_weights``; ``weights`` is ``(B, nh, Tq, Tk)``, the softmax
        probabilities *before* dropout (each row sums to 1), ready to draw as a
        heatmap.
        A query whose keys are all masked gets NaN (0/0), as the formula says.

    Raises:
        ValueError: mismatched shapes, ``causal`` with ``Tq != Tk``, ``dropout_p`` out
            of range.
        TypeError: ``q``, ``k`` or ``v`` not a floating-point tensor, ``mask`` neither
            boolean nor floating point, ``dropout_p`` not a number, a flag not a bool.
    """
    _check_sdpa_types(q, k, v, mask, causal, training, return_weights, generator)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k need the same head size, got {q.shape[-1]} and {k.shape[-1]}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v need the same length Tk, got {k.shape[-2]} and {v.shape[-2]}"
        )
    check_float("dropout_p", dropout_p, minimum=0.0, maximum=1.0, max_inclusive=False)

    d_k = q.shape[-1]
    # (B, nh, Tq, hs) x (B, nh, hs, Tk) -> (B, nh, Tq, Tk)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)

    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        elif mask.is_floating_point():
            scores = scores + mask
        else:
            raise TypeError(
                f"mask must be boolean or floating point, got dtype {mask.dtype}"
            )
    if causal:
        Tq, Tk = scores.shape[-2], scores.shape[-1]
        if Tq != Tk:
            raise ValueError(
                f"causal=True needs Tq == Tk, got Tq={Tq}, Tk={Tk}; "
                "pass an explicit mask"
            )
        scores = scores.masked_fill(
            ~causal_mask(Tq, device=scores.device), float("-inf")
        )

    weights = torch.softmax(scores, dim=-1)  # (B, nh, Tq, Tk), each row sums to 1

    dropped = weights
    if training and dropout_p > 0.0:
        keep = (
            torch.rand(weights.shape, generator=generator, device=weights.device)
            >= dropout_p
        )
        dropped = weights * keep / (1.0 - dropout_p)

    out = dropped @ v  # (B, nh, Tq, Tk) x (B, nh, Tk, hv) -> (B, nh, Tq, hv)
    return (out, weights) if return_weights else out


class CausalSelfAttention(nn.Module):
    """Causal multi-head self-attention, as in a GPT-2 block.

    Vaswani et al. 2017, section 3.2.2: project the input to queries, keys and values,
    split them into ``n_head`` heads of size ``hs = n_embd // n_head``, attend in every
    head in parallel, concatenate the heads and project back. As in GPT-2 (Radford et al.
    2019) the three input projections are one fused ``Linear`` named ``c_attn`` whose
    output is ``[q | k | v]``, and the output projection is ``c_proj``; the weight layout
    matches ``torch.nn.MultiheadAttention`` (``in_proj_weight``, ``out_proj``).

    Args:
        n_embd: embedding width C.
        n_head: number of heads; must divide ``n_embd``.
        dropout: dropout probability on the attention weights and on the output.
        bias: whether ``c_attn`` and ``c_proj`` have biases.
        use_fused: compute attention with ``torch.nn.functional.scaled_dot_product_attention``
            instead of the from-scratch function (same result, faster).

    Raises:
        TypeError: for an argument of the wrong type.
        ValueError: if ``n_embd`` is not divisible by ``n_head`` or an argument is out of range.
    """

    def __init__(
        self, n_embd: int, n_head: int, *, dropout: float = 0.0, bias: bool = True, use_fused: bool = False
    ) -> None:
        super().__init__()
        check_positive_int("n_embd", n_embd)
        check_positive_int("n_head", n_head)
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}")
        check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
        check_bool("bias", bias)
        check_bool("use_fused", use_fused)
        self.n_embd = n_embd
        self.n_head = n_head
        self.dropout = dropout
        self.use_fused = use_fused
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)  # q, k, v for all heads at once
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)  # output projection
        self.resid_dropout = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, return_weights: bool = False, cache: LayerKV | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend over the sequence ``x`` of shape ``(B, T, C)``; returns ``y`` of
        shape ``(B, T, C)``.

        With a ``cache`` (:class:`~llmscratch.kv_cache.LayerKV`, inference only), ``x``
        holds only the new tokens, at positions ``cache.start ..``; their keys and
        values are stored, and each new query attends to every stored key up to its
        own position (``Tk = cache.start + T`` keys, weights ``(B, nh, T, Tk)``).

        With ``return_weights=True`` returns ``(y, weights)``, ``weights`` of shape
        ``(B, nh, T, T)``: the attention probabilities of every head (before dropout).
        Weights always come from the from-scratch path, since the fused kernel does not
        return them.

        Raises:
            TypeError: if ``x`` is not a floating-point tensor.
            ValueError: if ``x`` is not 3-D with last dimension ``n_embd``, or a cache is
                given in training mode or overflows.
        """
        check_float_tensor("x", x)
        if x.dim() != 3 or x.shape[-1] != self.n_embd:
            raise ValueError(
                f"x must have shape (B, T, {self.n_embd}), got {tuple(x.shape)}"
            )
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head

        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)

        dropout_p = self.dropout if self.training else 0.0
        weights = None
        if cache is not None:  # generating with a cache of keys and values (chapter 9)
            y, weights = self.attend_cached(q, k, v, cache, return_weights)
        elif self.use_fused and not return_weights:
            # (B, nh, T, hs)
            y = F.scaled_dot_product_attention(
                q, k, v, dropout_p=dropout_p, is_causal=True
            )
        else:
            y, weights = scaled_dot_product_attention(
                q, k, v, causal=True, dropout_p=dropout_p, training=self.training,
                return_weights=True,
            )  # (B, nh, T, hs), (B, nh, T, T)

        # (B, T, nh, hs) -> (B, T, C): heads side by side
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        y = self.resid_dropout(self.c_proj(y))  # (B, T, C)
        return (y, weights) if return_weights else y

    def attend_cached(
        self, q: Tensor, k: Tensor, v: Tensor, cache: LayerKV, return_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Attention of ``T`` new tokens over the stored ones and themselves (chapter 9).

        ``q``, ``k``, ``v``: the new tokens' heads ``(B, nh, T, hs)``, at positions
        ``cache.start .. cache.start + T - 1``. Their keys and values are stored in
        ``cache``; query i may attend to keys ``0 .. cache.start + i``.

        Returns:
            ``(y, weights)``: ``y`` ``(B, nh, T, hs)``; ``weights`` ``(B, nh, T, Tk)`` with
            ``Tk = cache.start + T`` if ``return_weights`` (or if the module does not use
            the fused kernel), else None.

        Raises:
            ValueError: in training mode (the cache is for inference), or when the new
                tokens overflow the cache.
        """
        if self.training:
            raise ValueError("the KV cache is for inference: call model.eval() first")
        T, start = q.shape[2], cache.start
        k, v = cache.update(k, v)  # (B, nh, start + T, hs): the stored tokens and the new
        # query i sits at position start + i and may attend to keys 0 .. start + i
        keys = torch.arange(start + T, device=q.device)
        mask = keys[None, :] <= start + torch.arange(T, device=q.device)[:, None]  # (T, start + T)
        if self.use_fused and not return_weights:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None
        return scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
