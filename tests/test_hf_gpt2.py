"""Hugging Face transformers' GPT-2 as an oracle for llmscratch.gpt.GPT (via llmscratch.hf_gpt2).

Every model is built from a tiny random config: nothing is downloaded.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest
import torch
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel

from llmscratch.gpt import GPT
from llmscratch.hf_gpt2 import (
    CONV1D,
    config_from_hf,
    gpt_key,
    gpt_state_dict_from_hf,
    load_hf_state_dict,
)
from llmscratch.sampling import generate

CONFIGS = [  # (vocab, n_positions, n_layer, n_head, n_embd, tied)
    (50, 16, 1, 1, 8, True),
    (64, 24, 2, 2, 16, False),
    (100, 32, 3, 4, 32, True),
    (77, 20, 2, 4, 24, False),
]


def hf_model(vocab, n_positions, n_layer, n_head, n_embd, tied, seed=0) -> GPT2LMHeadModel:
    """A random HF GPT-2 in eval mode; every parameter redrawn with std 0.3 (biases and
    LayerNorms too) so that a wrongly mapped tensor shows in the logits."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab, n_positions=n_positions, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
        tie_word_embeddings=tied, attn_pdrop=0.0, resid_pdrop=0.0, embd_pdrop=0.0,
        bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )  # fmt: skip
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model.eval()


def ours_from(hf: GPT2LMHeadModel, state=None) -> GPT:
    model = GPT(config_from_hf(hf.config))
    return load_hf_state_dict(model, hf.state_dict() if state is None else state).eval()


def random_ids(vocab, B, T, seed=1) -> torch.Tensor:
    return torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(params=CONFIGS, ids=lambda c: "v{}-p{}-l{}-h{}-c{}-{}".format(*c[:5], "tied" if c[5] else "untied"))
def pair(request):
    hf = hf_model(*request.param)
    return hf, ours_from(hf)


def test_config_from_hf(pair):
    hf, ours = pair
    c = ours.config
    assert (c.vocab_size, c.block_size, c.n_layer, c.n_head, c.n_embd) == (
        hf.config.vocab_size, hf.config.n_positions, hf.config.n_layer, hf.config.n_head, hf.config.n_embd,
    )  # fmt: skip
    assert c.tie_weights == hf.config.tie_word_embeddings
    assert (c.dropout, c.bias, c.use_fused_attention) == (0.0, True, False)
    assert config_from_hf(hf.config.to_dict()) == c  # a plain dict (config.json) works too


def test_logits_equal(pair):
    hf, ours = pair
    idx = random_ids(ours.config.vocab_size, 3, ours.config.block_size)
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], hf(idx).logits)
        torch.testing.assert_close(ours(idx[:, :5])[0], hf(idx[:, :5]).logits)


def test_tying_follows_config(pair):
    hf, ours = pair
    tied = ours.lm_head.weight is ours.transformer.wte.weight
    assert tied == hf.config.tie_word_embeddings
    torch.testing.assert_close(ours.lm_head.weight, hf.lm_head.weight, rtol=0, atol=0)


def test_loss_equal(pair):
    hf, ours = pair
    idx = random_ids(ours.config.vocab_size, 2, ours.config.block_size, seed=2)
    with torch.no_grad():
        _, loss = ours(idx[:, :-1], idx[:, 1:])  # HF shifts its labels internally
        torch.testing.assert_close(loss, hf(idx, labels=idx).loss)


def test_greedy_generation_equal(pair):
    hf, ours = pair
    prompt = random_ids(ours.config.vocab_size, 2, 4, seed=3)
    mine = generate(ours, prompt, 10, greedy=True)
    with torch.no_grad():
        theirs = hf.generate(
            prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
            max_new_tokens=10, min_new_tokens=10, pad_token_id=0,
        )  # fmt: skip
    assert mine.shape == (2, 14)
    assert torch.equal(mine, theirs)


def test_via_safetensors_file(tmp_path):
    hf = hf_model(*CONFIGS[2])  # tied: the file holds no lm_head.weight
    hf.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    assert "lm_head.weight" not in state
    ours = ours_from(hf, state)
    idx = random_ids(100, 2, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], hf(idx).logits)


def test_keys_without_prefix_and_old_buffers():
    """As in openai-community/gpt2's files: ``h.0.attn.c_attn.weight``, mask buffers, no head."""
    hf = hf_model(*CONFIGS[1])
    state = {k.removeprefix("transformer."): v for k, v in hf.state_dict().items()}
    assert "h.0.attn.c_attn.weight" in state
    for i in range(hf.config.n_layer):
        state[f"h.{i}.attn.bias"] = torch.ones(1, 1, 24, 24).tril()
        state[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    ours = ours_from(hf, state)
    idx = random_ids(64, 2, 24)
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], hf(idx).logits)


def test_mapping_renames_and_transposes():
    hf = hf_model(*CONFIGS[1])
    hf_state = hf.state_dict()
    mapped = gpt_state_dict_from_hf(hf_state, config_from_hf(hf.config))
    assert set(mapped) == set(GPT(config_from_hf(hf.config)).state_dict())
    for key, tensor in hf_state.items():
        want = tensor.t() if key.endswith(CONV1D) else tensor
        assert torch.equal(mapped[gpt_key(key)], want), key
    assert gpt_key("wte.weight") == "transformer.wte.weight"
    assert gpt_key("lm_head.weight") == "lm_head.weight"
    assert gpt_key("h.3.attn.bias") is None and gpt_key("transformer.h.0.attn.masked_bias") is None
    assert gpt_key("h.3.attn.c_attn.bias") == "transformer.h.3.attn.c_attn.bias"


# -- errors -----------------------------------------------------------------------------


@pytest.fixture
def small():
    hf = hf_model(*CONFIGS[1])  # untied, 2 layers
    return dict(hf.state_dict()), config_from_hf(hf.config)


def test_missing_key(small):
    state, config = small
    del state["transformer.ln_f.bias"]
    with pytest.raises(ValueError, match=r"missing keys: \['transformer.ln_f.bias'\]"):
        gpt_state_dict_from_hf(state, config)


def test_missing_untied_head(small):
    state, config = small
    del state["lm_head.weight"]
    with pytest.raises(ValueError, match="missing keys: .*lm_head.weight"):
        gpt_state_dict_from_hf(state, config)


@pytest.mark.parametrize("key", ["transformer.h.2.ln_1.weight", "transformer.score.weight"])
def test_unexpected_key(small, key):
    state, config = small
    state[key] = torch.zeros(16)
    with pytest.raises(ValueError, match=rf"unexpected keys .*{key}"):
        gpt_state_dict_from_hf(state, config)


def test_wrong_shape(small):
    state, config = small
    state["transformer.h.1.attn.c_attn.weight"] = torch.zeros(48, 16)  # nn.Linear's layout, not Conv1D's
    match = r"shape mismatch for 'transformer.h.1.attn.c_attn.weight': expected \(16, 48\), got \(48, 16\)"
    with pytest.raises(ValueError, match=match):
        gpt_state_dict_from_hf(state, config)


def test_tied_head_must_match_wte(small):
    state, config = small
    config.tie_weights = True
    with pytest.raises(ValueError, match="lm_head.weight differs from wte.weight"):
        gpt_state_dict_from_hf(state, config)


@pytest.mark.parametrize(
    "field, value",
    [
        ("activation_function", "relu"),
        ("activation_function", "gelu"),  # exact erf GELU, not the tanh one
        ("layer_norm_epsilon", 1e-6),
        ("n_inner", 20),
        ("scale_attn_by_inverse_layer_idx", True),
        ("add_cross_attention", True),
    ],
)
def test_unsupported_config(field, value):
    d = GPT2Config(vocab_size=50, n_positions=16, n_layer=1, n_head=2, n_embd=8).to_dict()
    d[field] = value
    with pytest.raises(ValueError, match=field):
        config_from_hf(d)


def test_config_missing_field():
    with pytest.raises(ValueError, match="n_embd"):
        config_from_hf(dict(vocab_size=50, n_positions=16, n_layer=1, n_head=2))
