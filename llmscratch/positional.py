"""Position information for attention: sinusoidal tables, rotary embeddings (RoPE), ALiBi.

Taught in chapter 4 (self-attention and the GPT transformer). Attention by itself is
blind to order (permuting the keys permutes nothing in the result), so a transformer
must be told where each token sits. Four ways, from oldest to newest:

* learned absolute embeddings: an ``nn.Embedding(block_size, n_embd)`` added to the token
  embeddings (GPT-2; lives in `llmscratch.gpt.GPT` as ``wpe``);
* `sinusoidal_positions`: a fixed table added the same way (Vaswani et al. 2017);
* `apply_rope`: rotate queries and keys by an angle proportional to the position, so that
  ``q . k`` depends only on the offset between them (Su et al. 2021);
* `alibi_bias`: no embedding at all, a linear penalty on the attention scores that grows
  with the distance (Press et al. 2022).

Shapes: ``T`` positions, ``d_model`` (= ``n_embd``) width, ``(B, nh, T, hs)`` per-head tensors.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


from .validate import check_float, check_float_tensor, check_positive_int

_check_positive_int = check_positive_int


def _check_base(base: float) -> float:
    return check_float("base", base, minimum=0.0, min_inclusive=False)


def _check_dtype(dtype: object) -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")


def sinusoidal_positions(
    T: int, d_model: int, *, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """The fixed sinusoidal position table of shape ``(T, d_model)``.

    Vaswani et al. 2017, section 3.5:
    ``PE[pos, 2i] = sin(pos / base^(2i / d_model))`` and
    ``PE[pos, 2i+1] = cos(pos / base^(2i / d_model))`` with ``base = 10000``.
    Each pair of columns is a clock turning at its own speed, from one turn every
    ``2 pi`` positions (columns 0, 1) to one turn every ``2 pi * base`` positions.
    An odd ``d_model`` is allowed: the last column is then a sine.

    Computed in float64 and cast to ``dtype``.

    Raises:
        TypeError: if ``T`` or ``d_model`` is not an int, ``base`` not a number, or
            ``dtype`` not a floating-point dtype.
        ValueError: if ``T`` or ``d_model`` is < 1, or ``base`` is not finite and > 0.
    """
    _check_positive_int("T", T)
    _check_positive_int("d_model", d_model)
    _check_base(base)
    _check_dtype(dtype)
    pos = torch.arange(T, dtype=torch.float64).unsqueeze(1)  # (T, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(d/2),) = 0, 2, 4, ...
    angle = pos / base ** (two_i / d_model)  # (T, ceil(d/2))
    pe = torch.empty(T, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe.to(dtype)


def apply_rope(x: Tensor, *, base: float = 10000.0, positions: Tensor | None = None) -> Tensor:
    """Rotary position embedding (RoPE): rotate each pair of features by a position-dependent angle.

    Su et al. 2021, "RoFormer", eq. 34: the features of a head are grouped in pairs
    ``(x[2i], x[2i+1])`` and the pair at position ``m`` is rotated by the angle
    ``m * theta_i`` with ``theta_i = base^(-2i / hs)``, ``i = 0 .. hs/2 - 1``.
    Apply it to queries and keys (not values) before the scores: since rotations
    compose, ``rope(q, m) . rope(k, n) = q . R(n - m) k`` depends only on the offset
    ``n - m``. Rotations keep the norm, and position 0 is left unchanged.

    Args:
        x: ``(B, nh, T, hs)`` (any leading dimensions, e.g. ``(T, hs)``); ``hs`` must be even.
        base: the wavelength base, 10000 in the paper.
        positions: optional ``(T,)`` integer positions of the T rows (e.g. a shifted range
            when decoding with a cache); default ``0 .. T-1``.

    Returns:
        A tensor of the same shape and dtype as ``x``.

    Raises:
        TypeError: ``x`` not a floating-point tensor, ``base`` not a number, or
            ``positions`` not an integer tensor.
        ValueError: ``x`` with fewer than 2 dimensions, odd head size, ``positions`` not of
            shape ``(T,)``, or ``base`` not finite and > 0.
    """
    check_float_tensor("x", x)
    if x.ndim < 2:
        raise ValueError(f"x must have shape (..., T, hs), got {tuple(x.shape)}")
    T, hs = x.shape[-2], x.shape[-1]
    if hs % 2 != 0:
        raise ValueError(f"RoPE needs an even head size (last dimension of x), got {hs}")
    _check_base(base)
    if positions is None:
        positions = torch.arange(T, device=x.device)
    elif not isinstance(positions, torch.Tensor) or positions.dtype == torch.bool or positions.is_floating_point():
        raise TypeError(f"positions must be an integer tensor (T,), got {getattr(positions, 'dtype', type(positions))}")
    elif positions.shape != (T,):
        raise ValueError(f"positions must have shape ({T},), got {tuple(positions.shape)}")

    theta = base ** (-torch.arange(0, hs, 2, dtype=torch.float64, device=x.device) / hs)  # (hs/2,)
    angle = positions.to(torch.float64).unsqueeze(1) * theta  # (T, hs/2)
    cos, sin = torch.cos(angle).to(x.dtype), torch.sin(angle).to(x.dtype)  # (T, hs/2) each

    x1, x2 = x[..., 0::2], x[..., 1::2]  # (B, nh, T, hs/2) each: the two halves of every pair
    rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, nh, T, hs/2, 2)
    return rotated.flatten(-2)  # (B, nh, T, hs), pairs back in place


def alibi_slopes(n_head: int) -> Tensor:
    """The per-head ALiBi slopes, shape ``(n_head,)``, float32.

    Press et al. 2022, section 3: for ``n_head`` a power of two the slopes are the
    geometric sequence that starts at ``2^(-8/n_head)`` with that same ratio, e.g.
    ``1/2, 1/4, ..., 1/256`` for 8 heads. For other ``n_head`` the authors' code takes the
    ``2^floor(log2 n_head)`` slopes of the nearest smaller power of two and fills the rest
    with every other slope of the next power of two (for 12 heads: the 8 slopes above, then
    ``2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5``).

    Raises:
        TypeError: if ``n_head`` is not an int.
        ValueError: if ``n_head`` < 1.
    """
    _check_positive_int("n_head", n_head)

    def power_of_two_slopes(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (h + 1) for h in range(n)]

    closest = 2 ** math.floor(math.log2(n_head))
    slopes = power_of_two_slopes(closest)
    if closest != n_head:
        slopes += power_of_two_slopes(2 * closest)[0::2][: n_head - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(n_head: int, T: int) -> Tensor:
    """The ALiBi attention bias of shape ``(n_head, T, T)``, float32.

    Press et al. 2022: no position embedding; instead head h adds
    ``bias[h, i, j] = -slope_h * (i - j)`` to the score of query i for key j,
    a penalty growing linearly with the distance into the past (``j <= i``).
    Entries above the diagonal (the future) are 0: combine with a causal mask, e.g.
    ``scaled_dot_product_attention(q, k, v, mask=alibi_bias(nh, T), causal=True)``.

    Raises:
        TypeError: if ``n_head`` or ``T`` is not an int.
        ValueError: if ``n_head`` or ``T`` is < 1.
    """
    _check_positive_int("n_head", n_head)
    _check_positive_int("T", T)
    slopes = alibi_slopes(n_head)  # (nh,)
    pos = torch.arange(T)
    distance = (pos.unsqueeze(1) - pos.unsqueeze(0)).clamp(min=0)  # (T, T): i - j, 0 above the diagonal
    distance = distance.to(torch.float32)
    return -slopes.view(n_head, 1, 1) * distance  # (nh, T, T)
