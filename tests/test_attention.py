"""Tests for llmscratch.attention: the from-scratch attention against torch's own."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmscratch.attention import CausalSelfAttention, causal_mask, scaled_dot_product_attention


def _qkv(B=2, nh=3, Tq=5, Tk=5, hs=4, hv=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, nh, Tq, hs, generator=g, dtype=dtype)
    k = torch.randn(B, nh, Tk, hs, generator=g, dtype=dtype)
    v = torch.randn(B, nh, Tk, hv, generator=g, dtype=dtype)
    return q, k, v


# -- causal_mask ---------------------------------------------------------------------


def test_causal_mask_small_example():
    expected = torch.tensor([[True, False, False], [True, True, False], [True, True, True]])
    assert torch.equal(causal_mask(3), expected)
    assert causal_mask(1).dtype == torch.bool


@pytest.mark.parametrize("T, error", [(0, ValueError), (-2, ValueError), (2.5, TypeError), (True, TypeError)])
def test_causal_mask_rejects_bad_T(T, error):
    with pytest.raises(error, match="T must be"):
        causal_mask(T)


# -- scaled_dot_product_attention against torch.nn.functional ---------------------------


def test_sdpa_causal_matches_torch():
    q, k, v = _qkv(Tq=7, Tk=7)
    ours = scaled_dot_product_attention(q, k, v, causal=True)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


def test_sdpa_non_causal_matches_torch_with_different_lengths():
    q, k, v = _qkv(Tq=3, Tk=6, hs=8, hv=5)
    ours = scaled_dot_product_attention(q, k, v)
    ref = F.scaled_dot_product_attention(q, k, v)
    assert ours.shape == (2, 3, 3, 5)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


def test_sdpa_boolean_mask_matches_torch():
    q, k, v = _qkv(Tq=6, Tk=6)
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(2, 1, 6, 6, generator=g) > 0.5  # broadcast over heads
    mask |= torch.eye(6, dtype=torch.bool)  # every query keeps at least one key
    ours = scaled_dot_product_attention(q, k, v, mask=mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


def test_sdpa_additive_float_mask_matches_torch():
    q, k, v = _qkv(Tq=5, Tk=5)
    bias = torch.randn(3, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ours = scaled_dot_product_attention(q, k, v, mask=bias)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


def test_sdpa_float32_matches_torch_at_1e_6():
    q, k, v = _qkv(B=4, nh=4, Tq=16, Tk=16, hs=16, hv=16, dtype=torch.float32)
    ours = scaled_dot_product_attention(q, k, v, causal=True)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)


def test_sdpa_weights_are_causal_probabilities():
    q, k, v = _qkv(Tq=6, Tk=6)
    out, w = scaled_dot_product_attention(q, k, v, causal=True, return_weights=True)
    assert w.shape == (2, 3, 6, 6)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 6, dtype=torch.float64))
    assert torch.all(w.triu(diagonal=1) == 0)
    torch.testing.assert_close(out, w @ v)
    assert torch.all(w[..., 0, 0] == 1)  # the first token can only look at itself


def test_sdpa_dropout_only_in_training_and_reproducible():
    q, k, v = _qkv()
    plain = scaled_dot_product_attention(q, k, v, causal=True)
    off = scaled_dot_product_attention(q, k, v, causal=True, dropout_p=0.5, training=False)
    assert torch.equal(plain, off)
    a = scaled_dot_product_attention(
        q, k, v, causal=True, dropout_p=0.5, training=True, generator=torch.Generator().manual_seed(3)
    )
    b = scaled_dot_product_attention(
        q, k, v, causal=True, dropout_p=0.5, training=True, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(a, b)
    assert not torch.allclose(a, plain)


def test_sdpa_dropout_is_unbiased():
    # Inverted dropout keeps the expectation: averaging many dropped outputs gives the plain one.
    q, k, v = _qkv(B=1, nh=1, Tq=4, Tk=4, hs=4, hv=4)
    n = 20000
    reps = [t.expand(n, -1, -1, -1) for t in (q, k, v)]
    dropped = scaled_dot_product_attention(
        *reps, causal=True, dropout_p=0.3, training=True, generator=torch.Generator().manual_seed(4)
    )
    plain = scaled_dot_product_attention(q, k, v, causal=True)
    torch.testing.assert_close(dropped.mean(0, keepdim=True), plain, rtol=0, atol=0.05)


def test_sdpa_bad_inputs():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="head size"):
        scaled_dot_product_attention(q, k[..., :3], v)
    with pytest.raises(ValueError, match="same length"):
        scaled_dot_product_attention(q, k, v[..., :4, :])
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    q2, k2, v2 = _qkv(Tq=2, Tk=5)
    with pytest.raises(ValueError, match="Tq=2, Tk=5"):
        scaled_dot_product_attention(q2, k2, v2, causal=True)
    with pytest.raises(TypeError, match="mask"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(5, 5, dtype=torch.int64))


# -- CausalSelfAttention against torch.nn.MultiheadAttention ----------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_module_matches_torch_multihead_attention(bias):
    torch.manual_seed(0)
    C, nh, B, T = 16, 4, 3, 7
    ours = CausalSelfAttention(C, nh, bias=bias).double().eval()
    ref = torch.nn.MultiheadAttention(C, nh, bias=bias, batch_first=True).double().eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.c_attn.weight)  # (3C, C): [W_q; W_k; W_v] in both
        ref.out_proj.weight.copy_(ours.c_proj.weight)
        if bias:
            ours.c_attn.bias.normal_()  # non-zero biases, so the test can see them
            ours.c_proj.bias.normal_()
            ref.in_proj_bias.copy_(ours.c_attn.bias)
            ref.out_proj.bias.copy_(ours.c_proj.bias)
    x = torch.randn(B, T, C, dtype=torch.float64)
    y, w = ours(x, return_weights=True)
    # nn.MultiheadAttention's boolean mask means "may NOT attend": the complement of ours.
    y_ref, w_ref = ref(x, x, x, attn_mask=~causal_mask(T), need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(w, w_ref, rtol=0, atol=1e-12)
    assert w.shape == (B, nh, T, T)


def test_fused_flag_gives_same_output():
    torch.manual_seed(0)
    scratch = CausalSelfAttention(32, 4).eval()
    fused = CausalSelfAttention(32, 4, use_fused=True).eval()
    fused.load_state_dict(scratch.state_dict())
    x = torch.randn(2, 10, 32)
    torch.testing.assert_close(fused(x), scratch(x), rtol=0, atol=1e-6)
    # Weights are still available with the fused flag (computed the from-scratch way).
    _, w_fused = fused(x, return_weights=True)
    _, w_scratch = scratch(x, return_weights=True)
    assert torch.equal(w_fused, w_scratch)


@pytest.mark.parametrize("use_fused", [False, True])
def test_module_is_causal(use_fused):
    torch.manual_seed(0)
    attn = CausalSelfAttention(16, 2, use_fused=use_fused).eval()
    x = torch.randn(1, 8, 16)
    t = 5
    x2 = x.clone()
    x2[:, t] = torch.randn(16)
    y, y2 = attn(x), attn(x2)
    torch.testing.assert_close(y[:, :t], y2[:, :t], rtol=0, atol=0)
    assert not torch.allclose(y[:, t:], y2[:, t:])


def test_module_dropout_changes_training_output_only():
    torch.manual_seed(0)
    attn = CausalSelfAttention(16, 2, dropout=0.5)
    x = torch.randn(2, 6, 16)
    attn.eval()
    assert torch.equal(attn(x), attn(x))
    attn.train()
    assert not torch.allclose(attn(x), attn(x))


def test_module_bad_arguments():
    with pytest.raises(ValueError, match="n_embd=10 must be divisible by n_head=3"):
        CausalSelfAttention(10, 3)
    with pytest.raises(ValueError, match="dropout"):
        CausalSelfAttention(8, 2, dropout=1.5)
    attn = CausalSelfAttention(8, 2)
    with pytest.raises(ValueError, match=r"\(B, T, 8\)"):
        attn(torch.randn(2, 3, 6))
