"""Tests for llmscratch.gpt: config validation, causality, loss, init, parameter counts."""

from __future__ import annotations

import json
import math

import pytest
import torch

from llmscratch.gpt import GPT, Block, GPTConfig
from llmscratch.train import param_groups


def tiny_config(**overrides) -> GPTConfig:
    fields = dict(vocab_size=48, block_size=16, n_layer=2, n_head=4, n_embd=32)
    fields.update(overrides)
    return GPTConfig(**fields)


def tiny_model(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(tiny_config(**overrides))


def random_ids(shape, vocab_size=48, seed=0) -> torch.Tensor:
    return torch.randint(0, vocab_size, shape, generator=torch.Generator().manual_seed(seed))


# -- GPTConfig ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        (dict(n_embd=30, n_head=4), ValueError, "n_embd=30 must be divisible by n_head=4"),
        (dict(vocab_size=0), ValueError, "vocab_size must be >= 1, got 0"),
        (dict(n_layer=-1), ValueError, "n_layer must be >= 1, got -1"),
        (dict(block_size=16.0), TypeError, "block_size must be an int"),
        (dict(n_head=True), TypeError, "n_head must be an int"),
        (dict(dropout=float("nan")), ValueError, "dropout must be a finite number"),
        (dict(dropout="0.1"), TypeError, "dropout must be a number"),
        (dict(tie_weights=1), TypeError, "tie_weights must be a bool"),
        (dict(dropout=1.0), ValueError, r"dropout must be in \[0, 1\)"),
        (dict(dropout=-0.1), ValueError, r"dropout must be in \[0, 1\)"),
        (dict(norm_position="middle"), ValueError, "norm_position must be one of"),
        (dict(pos_encoding="rope"), ValueError, "pos_encoding must be one of"),
        (dict(bias="yes"), TypeError, "bias must be a bool"),
    ],
)
def test_config_rejects_bad_values(overrides, error, match):
    with pytest.raises(error, match=match):
        tiny_config(**overrides)


def test_config_json_round_trip():
    config = tiny_config(dropout=0.1, norm_position="post", pos_encoding="sinusoidal", tie_weights=False)
    again = GPTConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    with pytest.raises(ValueError, match="unknown GPTConfig keys \\['n_embed'\\]"):
        GPTConfig.from_dict({**config.to_dict(), "n_embed": 32})


# -- forward and loss -----------------------------------------------------------------


def test_forward_shapes_and_loss_is_cross_entropy_with_ignore_index():
    model = tiny_model().eval()
    idx = random_ids((3, 10))
    logits, loss = model(idx)
    assert logits.shape == (3, 10, 48) and loss is None

    targets = random_ids((3, 10), seed=1)
    targets[0, :4] = -100  # e.g. the prompt in supervised fine-tuning
    _, loss = model(idx, targets)
    # Naive reference: mean of -log p(target) over the kept positions.
    logp = torch.log_softmax(logits, dim=-1)
    kept = targets != -100
    nll = -logp[kept].gather(1, targets[kept].unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(loss, nll.mean(), rtol=1e-6, atol=1e-6)
    assert loss.dim() == 0


def test_initial_loss_is_close_to_log_vocab_size():
    for vocab_size in (48, 500):
        model = tiny_model(vocab_size=vocab_size).eval()
        idx, targets = random_ids((8, 16), vocab_size), random_ids((8, 16), vocab_size, seed=1)
        _, loss = model(idx, targets)
        assert abs(loss.item() - math.log(vocab_size)) < 0.15


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(norm_position="post"),
        dict(pos_encoding="sinusoidal"),
        dict(norm_position="post", pos_encoding="sinusoidal"),
        dict(use_fused_attention=True),
        dict(bias=False, tie_weights=False),
    ],
)
def test_future_tokens_never_change_past_logits(overrides):
    model = tiny_model(**overrides).eval()
    idx = random_ids((2, 12))
    logits, _ = model(idx)
    for t in (0, 5, 11):
        changed = idx.clone()
        changed[:, t] = (changed[:, t] + 1) % 48
        new_logits, _ = model(changed)
        torch.testing.assert_close(new_logits[:, :t], logits[:, :t], rtol=0, atol=0)
        assert not torch.allclose(new_logits[:, t], logits[:, t])


def test_fused_attention_gives_same_logits():
    scratch = tiny_model().eval()
    fused = tiny_model(use_fused_attention=True).eval()
    idx = random_ids((2, 16))
    torch.testing.assert_close(fused(idx)[0], scratch(idx)[0], rtol=0, atol=1e-5)


def test_tiny_model_overfits_one_batch():
    model = tiny_model()
    idx, targets = random_ids((4, 16)), random_ids((4, 16), seed=1)
    optimizer = torch.optim.AdamW(param_groups(model, weight_decay=0.0), lr=1e-2)
    for _ in range(300):
        _, loss = model(idx, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.1:
            break
    assert loss.item() < 0.1


# -- determinism and dropout ------------------------------------------------------------


def test_same_seed_same_init_same_logits():
    idx = random_ids((2, 8))
    a, b, c = tiny_model(seed=1).eval(), tiny_model(seed=1).eval(), tiny_model(seed=2).eval()
    assert torch.equal(a(idx)[0], b(idx)[0])
    assert not torch.allclose(a(idx)[0], c(idx)[0])


def test_eval_is_deterministic_and_dropout_acts_only_in_training():
    model = tiny_model(dropout=0.2)
    idx = random_ids((2, 8))
    model.eval()
    assert torch.equal(model(idx)[0], model(idx)[0])
    model.train()
    assert not torch.allclose(model(idx)[0], model(idx)[0])


# -- bad input --------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"idx length T=17 must be in \[1, block_size=16\]"):
        model(random_ids((1, 17)))
    with pytest.raises(ValueError, match=r"idx length T=0"):
        model(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(TypeError, match="int64 token ids"):
        model(torch.zeros(1, 4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[1, 2, 3]])
    with pytest.raises(ValueError, match="idx must have 2 dimensions"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"idx must hold ids in \[0, 48\)"):
        model(torch.tensor([[1, 48]]))
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 4\)"):
        model(random_ids((2, 4)), random_ids((2, 5)))
    with pytest.raises(ValueError, match=r"targets must hold ids in \[0, 48\) or -100"):
        model(random_ids((1, 4)), torch.tensor([[0, 1, 2, 48]]))
    with pytest.raises(TypeError, match="GPTConfig"):
        GPT(tiny_config().to_dict())
    # the attention and residual-stream views check their input the same way
    with pytest.raises(TypeError, match="int64"):
        model.attention_maps(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="T=17"):
        model.residual_stream(random_ids((1, 17)))


# -- structure, init, inspection --------------------------------------------------------


def test_weight_tying_and_positions():
    tied = tiny_model()
    assert tied.lm_head.weight is tied.transformer.wte.weight
    untied = tiny_model(tie_weights=False)
    assert untied.lm_head.weight is not untied.transformer.wte.weight

    sinusoidal = tiny_model(pos_encoding="sinusoidal")
    assert "wpe" not in sinusoidal.transformer
    assert not any("pos_table" in key for key in sinusoidal.state_dict())  # non-persistent buffer
    assert sinusoidal.pos_table.shape == (16, 32)

    post = tiny_model(norm_position="post")
    assert isinstance(post.transformer.ln_f, torch.nn.Identity)


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_block_follows_the_norm_position_formula(norm_position):
    torch.manual_seed(0)
    block = Block(tiny_config(norm_position=norm_position)).eval()
    with torch.no_grad():  # non-trivial LayerNorm parameters, so misplaced norms show
        for ln in (block.ln_1, block.ln_2):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.normal_()
    x = torch.randn(2, 5, 32)
    if norm_position == "pre":  # Radford et al. 2019, Xiong et al. 2020 eq. for Pre-LN
        h = x + block.attn(block.ln_1(x))
        expected = h + block.mlp(block.ln_2(h))
    else:  # Vaswani et al. 2017: LayerNorm(x + Sublayer(x))
        h = block.ln_1(x + block.attn(x))
        expected = block.ln_2(h + block.mlp(h))
    torch.testing.assert_close(block(x), expected, rtol=0, atol=0)


def test_gpt2_initialisation_scales():
    model = tiny_model(n_layer=4, n_embd=64)
    residual_std = 0.02 / math.sqrt(2 * 4)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            assert p.std().item() == pytest.approx(residual_std, rel=0.1), name
        elif name.endswith("c_attn.weight") or name.endswith("c_fc.weight") or "wte" in name or "wpe" in name:
            assert p.std().item() == pytest.approx(0.02, rel=0.1), name
        elif name.endswith("bias"):
            assert torch.all(p == 0), name
        elif ".ln_" in name:
            assert torch.all(p == 1), name


def test_attention_maps_and_residual_stream():
    model = tiny_model().eval()
    idx = random_ids((2, 9))
    with torch.no_grad():
        maps = model.attention_maps(idx)
        stream = model.residual_stream(idx)
        logits, _ = model(idx)
    assert len(maps) == 2 and all(m.shape == (2, 4, 9, 9) for m in maps)
    for m in maps:
        torch.testing.assert_close(m.sum(-1), torch.ones(2, 4, 9))
        assert torch.all(m.triu(diagonal=1) == 0)
    assert len(stream) == 3 and all(s.shape == (2, 9, 32) for s in stream)
    torch.testing.assert_close(model.lm_head(model.transformer.ln_f(stream[-1])), logits, rtol=0, atol=1e-6)


# -- parameter counts and optimiser groups ----------------------------------------------


def test_gpt2_small_parameter_count():
    config = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    with torch.device("meta"):  # shapes only, no memory, no init cost
        model = GPT(config)
    assert model.num_parameters() == 124_439_808
    assert model.num_parameters(exclude_embeddings=True) == 85_056_000
    breakdown = model.parameter_breakdown()
    assert breakdown == {
        "token_embedding": 50257 * 768,
        "position_embedding": 1024 * 768,
        "attention": 12 * (768 * 3 * 768 + 3 * 768 + 768 * 768 + 768),
        "mlp": 12 * (768 * 4 * 768 + 4 * 768 + 4 * 768 * 768 + 768),
        "layernorm": (2 * 12 + 1) * 2 * 768,
        "lm_head": 0,
    }


@pytest.mark.parametrize(
    "overrides",
    [dict(), dict(tie_weights=False, bias=False), dict(norm_position="post", pos_encoding="sinusoidal")],
)
def test_breakdown_adds_up_to_unique_parameters(overrides):
    model = tiny_model(**overrides)
    unique = {id(p): p.numel() for p in model.parameters()}
    assert sum(model.parameter_breakdown().values()) == model.num_parameters() == sum(unique.values())
    if not model.config.tie_weights:
        assert model.parameter_breakdown()["lm_head"] == 48 * 32


def test_param_groups_cover_every_parameter_once():
    model = tiny_model()
    decay, no_decay = param_groups(model, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = [id(p) for group in (decay, no_decay) for p in group["params"]]
    assert len(ids) == len(set(ids)) == len({id(p) for p in model.parameters()})
    names = {id(p): name for name, p in model.named_parameters()}
    assert all(p.dim() >= 2 for p in decay["params"])
    for p in no_decay["params"]:
        assert names[id(p)].endswith("bias") or ".ln_" in names[id(p)]
    with pytest.raises(ValueError, match="weight_decay must be in"):
        param_groups(model, -0.1)
    with pytest.raises(TypeError, match="weight_decay must be a number"):
        param_groups(model, None)
