"""The KV cache (llmscratch.kv_cache, GPT.forward(cache=), generate(use_cache=True)).

Oracles: the uncached forward over the whole sequence (logits to float rounding, greedy
and seeded sampled tokens equal) and transformers' GPT2LMHeadModel.generate, which uses
its own cache.
"""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from llmscratch.gpt import GPT, GPTConfig
from llmscratch.hf_gpt2 import config_from_hf, load_hf_state_dict
from llmscratch.kv_cache import KVCache
from llmscratch.lora import add_lora
from llmscratch.mlp import MLPConfig, MLPLanguageModel
from llmscratch.sampling import generate

VARIANTS = {
    "gpt2": {},
    "sinusoidal": {"pos_encoding": "sinusoidal"},
    "post-norm": {"norm_position": "post"},
    "fused": {"use_fused_attention": True},
    "tied-nobias": {"tie_weights": True, "bias": False},
}


def model_of(variant: str, seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    kw = dict(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
    kw.update(VARIANTS[variant], **overrides)
    model = GPT(GPTConfig(**kw))
    with torch.no_grad():  # larger weights than GPT-2's init, so that a wrong position or mask shows
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model.eval()


def ids(B: int, T: int, seed: int = 1, vocab: int = 40) -> torch.Tensor:
    return torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("chunks", [(16,), (1,) * 16, (5, 1, 1, 9), (3, 7, 6)])
def test_chunked_logits_equal_full_forward(variant, chunks):
    model = model_of(variant)
    x = ids(3, 16)
    with torch.no_grad():
        full, _ = model(x)
        cache = model.new_kv_cache(3)
        parts, start = [], 0
        for n in chunks:
            parts.append(model(x[:, start:start + n], cache=cache)[0])
            start += n
            assert cache.length == start
    torch.testing.assert_close(torch.cat(parts, dim=1), full)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("T0,n", [(4, 6), (4, 30), (16, 3), (1, 15), (20, 4)])
def test_generation_equals_uncached(variant, T0, n):
    """Greedy and seeded sampling give the same tokens, also once the sequence outgrows
    block_size (16) and the sampler falls back to reading the window afresh."""
    model = model_of(variant)
    prompt = ids(3, T0, seed=2)
    assert torch.equal(generate(model, prompt, n, greedy=True),
                       generate(model, prompt, n, greedy=True, use_cache=True))
    sample = dict(temperature=0.9, top_k=10, top_p=0.95)
    assert torch.equal(generate(model, prompt, n, generator=torch.Generator().manual_seed(3), **sample),
                       generate(model, prompt, n, generator=torch.Generator().manual_seed(3), use_cache=True,
                                **sample))


def test_stop_id_and_lora_model():
    model = model_of("gpt2")
    add_lora(model, ["attn.c_attn", "mlp.c_fc"], r=2, alpha=4.0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.3)
    prompt = ids(4, 3, seed=4)
    for stop in (0, 7):
        a = generate(model, prompt, 12, greedy=True, stop_id=stop)
        b = generate(model, prompt, 12, greedy=True, stop_id=stop, use_cache=True)
        assert torch.equal(a, b)


def test_generate_keeps_training_mode():
    model = model_of("gpt2").train()
    generate(model, ids(1, 3), 4, use_cache=True, generator=torch.Generator().manual_seed(0))
    assert model.training


def test_cache_shapes_and_memory():
    model = model_of("gpt2", n_layer=3)
    cache = model.new_kv_cache(2, max_len=10)
    assert isinstance(cache, KVCache) and len(cache.layers) == 3 and cache.length == 0
    assert cache.layers[0].k.shape == (2, 2, 10, 8)
    assert cache.num_bytes() == 2 * 3 * 2 * 10 * 16 * 4  # k and v, layers, B, max_len, C, float32
    assert model.new_kv_cache(1).max_len == 16


def test_equal_to_transformers_generate_with_its_cache():
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=60, n_positions=24, n_layer=2, n_head=4, n_embd=32, attn_pdrop=0.0,
                        resid_pdrop=0.0, embd_pdrop=0.0, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    hf = GPT2LMHeadModel(config)
    with torch.no_grad():
        for p in hf.parameters():
            p.normal_(0.0, 0.3)
    hf.eval()
    ours = load_hf_state_dict(GPT(config_from_hf(hf.config)), hf.state_dict()).eval()
    prompt = ids(2, 5, seed=5, vocab=60)
    with torch.no_grad():
        theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, use_cache=True,
                             max_new_tokens=12, min_new_tokens=12, pad_token_id=0)
    assert torch.equal(generate(ours, prompt, 12, greedy=True, use_cache=True), theirs)


def test_errors():
    model = model_of("gpt2")
    cache = model.new_kv_cache(2)
    with pytest.raises(TypeError, match="KVCache"):
        model(ids(2, 3), cache="cache")
    with pytest.raises(ValueError, match="2 sequences"):
        model(ids(3, 3), cache=cache)
    model(ids(2, 10), cache=cache)
    with pytest.raises(ValueError, match="10 tokens; 7 more"):
        model(ids(2, 7), cache=cache)
    assert cache.length == 10  # a refused call stores nothing
    with pytest.raises(ValueError, match="max_len=17 exceeds block_size=16"):
        model.new_kv_cache(1, max_len=17)
    with pytest.raises(ValueError, match="batch_size"):
        model.new_kv_cache(0)
    with pytest.raises(ValueError, match="model.eval"):
        model.train()(ids(2, 1), cache=model.new_kv_cache(2))
    with pytest.raises(ValueError, match="max_len"):
        cache.advance(7)
    with pytest.raises(ValueError, match="shape"):
        cache.layers[0].update(torch.zeros(2, 2, 1, 4), torch.zeros(2, 2, 1, 4))
    with pytest.raises(TypeError, match="floating-point"):
        cache.layers[0].update(torch.zeros(2, 2, 1, 8, dtype=torch.long), torch.zeros(2, 2, 1, 8))


def test_use_cache_needs_a_cache_model():
    mlp = MLPLanguageModel(MLPConfig(vocab_size=10, block_size=3, n_embd=4, n_hidden=8))
    with pytest.raises(TypeError, match="new_kv_cache"):
        generate(mlp, ids(1, 3, vocab=10), 2, use_cache=True)
    with pytest.raises(TypeError, match="use_cache"):
        generate(model_of("gpt2"), ids(1, 3), 2, use_cache=1)
