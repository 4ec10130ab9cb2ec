"""Tests for llmscratch.positional: sinusoidal tables, RoPE and ALiBi against naive references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llmscratch.attention import scaled_dot_product_attention
from llmscratch.positional import alibi_bias, alibi_slopes, apply_rope, sinusoidal_positions

# -- sinusoidal_positions ------------------------------------------------------------


def _sinusoidal_reference(T: int, d: int) -> np.ndarray:
    """Vaswani et al. 2017, section 3.5, one entry at a time."""
    pe = np.zeros((T, d))
    for pos in range(T):
        for col in range(d):
            i = col // 2
            angle = pos / 10000 ** (2 * i / d)
            pe[pos, col] = math.sin(angle) if col % 2 == 0 else math.cos(angle)
    return pe


@pytest.mark.parametrize("T, d", [(1, 2), (7, 4), (50, 16), (128, 33)])
def test_sinusoidal_matches_double_loop(T, d):
    pe = sinusoidal_positions(T, d)
    assert pe.shape == (T, d) and pe.dtype == torch.float32
    np.testing.assert_allclose(pe.numpy(), _sinusoidal_reference(T, d), rtol=0, atol=1e-6)


def test_sinusoidal_first_row_and_float64():
    pe = sinusoidal_positions(4, 6, dtype=torch.float64)
    assert pe.dtype == torch.float64
    assert torch.equal(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("T, d, error", [(0, 4, ValueError), (4, 0, ValueError), (-1, 4, ValueError),
                                         (3.0, 4, TypeError)])
def test_sinusoidal_rejects_bad_sizes(T, d, error):
    with pytest.raises(error, match=r"(T|d_model) must be"):
        sinusoidal_positions(T, d)


# -- apply_rope -----------------------------------------------------------------------


def _rope_reference(x: torch.Tensor, positions: list[int], base: float = 10000.0) -> torch.Tensor:
    """Apply a 2x2 rotation matrix to every pair (2i, 2i+1), one row at a time (float64)."""
    T, hs = x.shape
    out = torch.empty_like(x)
    for t in range(T):
        for i in range(hs // 2):
            a = positions[t] * base ** (-2 * i / hs)
            rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=x.dtype)
            out[t, 2 * i : 2 * i + 2] = rot @ x[t, 2 * i : 2 * i + 2]
    return out


def test_rope_matches_rotation_matrix_reference():
    x = torch.randn(9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(apply_rope(x), _rope_reference(x, list(range(9))), rtol=0, atol=1e-12)
    pos = torch.tensor([3, 100, 7, 0, 2, 2, 5000, 1, 9])
    expected = _rope_reference(x, pos.tolist())
    torch.testing.assert_close(apply_rope(x, positions=pos), expected, rtol=0, atol=1e-12)


def test_rope_shape_norm_and_position_zero():
    x = torch.randn(2, 3, 10, 16, generator=torch.Generator().manual_seed(1))
    y = apply_rope(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1), rtol=1e-6, atol=1e-6)
    assert torch.equal(y[:, :, 0], x[:, :, 0])
    assert not torch.allclose(y[:, :, 1:], x[:, :, 1:])


@pytest.mark.parametrize("m, n, s", [(0, 0, 5), (3, 1, 7), (2, 9, 100), (50, 10, 1000)])
def test_rope_dot_product_depends_only_on_offset(m, n, s):
    # Su et al. 2021: <rope(q, m), rope(k, n)> is a function of m - n only.
    g = torch.Generator().manual_seed(m + n + s)
    q = torch.randn(4, 32, dtype=torch.float64, generator=g)  # 4 query vectors, hs = 32
    k = torch.randn(4, 32, dtype=torch.float64, generator=g)

    def score(pq: int, pk: int) -> torch.Tensor:
        rq = apply_rope(q, positions=torch.full((4,), pq))
        rk = apply_rope(k, positions=torch.full((4,), pk))
        return (rq * rk).sum(-1)

    torch.testing.assert_close(score(m + s, n + s), score(m, n), rtol=0, atol=1e-10)
    if m != n:  # a different offset gives a different score: the test can fail
        assert not torch.allclose(score(m, n), score(m + 1, n))


def test_rope_bad_inputs():
    with pytest.raises(ValueError, match="even head size"):
        apply_rope(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match="positions must have shape"):
        apply_rope(torch.randn(5, 8), positions=torch.arange(4))


# -- ALiBi ------------------------------------------------------------------------------


def test_alibi_slopes_for_eight_heads():
    expected = torch.tensor([2.0**-h for h in range(1, 9)])  # 1/2, 1/4, ..., 1/256
    torch.testing.assert_close(alibi_slopes(8), expected, rtol=0, atol=0)


def test_alibi_slopes_non_power_of_two_rule():
    # 12 heads: the 8-head slopes, then every other slope of 16 heads (2^-0.5, 2^-1.5, ...).
    expected = [2.0**-h for h in range(1, 9)] + [2.0**-0.5, 2.0**-1.5, 2.0**-2.5, 2.0**-3.5]
    torch.testing.assert_close(alibi_slopes(12), torch.tensor(expected), rtol=1e-6, atol=0)
    torch.testing.assert_close(alibi_slopes(1), torch.tensor([2.0**-8]))


def test_alibi_bias_values():
    n_head, T = 8, 6
    bias = alibi_bias(n_head, T)
    assert bias.shape == (n_head, T, T)
    slopes = alibi_slopes(n_head)
    for h in range(n_head):
        for i in range(T):
            for j in range(T):
                expected = -slopes[h].item() * (i - j) if j <= i else 0.0
                assert bias[h, i, j].item() == pytest.approx(expected, abs=1e-7)


def test_alibi_with_causal_attention_matches_torch():
    n_head, T = 4, 7
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, n_head, T, 8, dtype=torch.float64, generator=g) for _ in range(3))
    bias = alibi_bias(n_head, T).double()
    ours = scaled_dot_product_attention(q, k, v, mask=bias, causal=True)
    full_mask = bias.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=full_mask)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_head, T, error", [(0, 4, ValueError), (4, 0, ValueError), (2.0, 4, TypeError)])
def test_alibi_rejects_bad_sizes(n_head, T, error):
    with pytest.raises(error, match=r"(n_head|T) must be"):
        alibi_bias(n_head, T)
