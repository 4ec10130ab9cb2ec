"""The language-model contract of llmscratch.lm, checked on all three models at once.

The bigram table, the MLP and the GPT must take the same inputs, give logits of shape
``targets.shape + (V,)``, the same loss, and raise the same error types for the same
mistakes; ``num_parameters`` must count each tensor once.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmscratch.bigram import BigramConfig, BigramLM
from llmscratch.gpt import GPT, GPTConfig
from llmscratch.lm import IGNORE_INDEX, LanguageModel
from llmscratch.mlp import MLPConfig, MLPLanguageModel

V = 7


def _bigram() -> BigramLM:
    g = torch.Generator().manual_seed(0)
    return BigramLM(BigramConfig(V, alpha=0.5)).fit(torch.randint(V, (50,), generator=g),
                                                    torch.randint(V, (50,), generator=g))


def _mlp() -> MLPLanguageModel:
    torch.manual_seed(0)
    return MLPLanguageModel(MLPConfig(vocab_size=V, block_size=3, n_embd=4, n_hidden=8))


def _gpt(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8, **kw))


MODELS = {"bigram": _bigram, "mlp": _mlp, "gpt": _gpt}


@pytest.fixture(params=sorted(MODELS))
def model(request) -> LanguageModel:
    return MODELS[request.param]().eval()


def _inputs(model: LanguageModel, B: int = 4, seed: int = 0):
    """Valid ``(idx, targets)`` of the model's contract."""
    g = torch.Generator().manual_seed(seed)
    T = model.config.block_size
    idx = torch.randint(V, (B, T), generator=g)
    targets = torch.randint(V, (B,) if model.fixed_context else (B, T), generator=g)
    return idx, targets


def test_models_follow_the_contract_classes():
    assert BigramLM.fixed_context and MLPLanguageModel.fixed_context and not GPT.fixed_context
    assert all(issubclass(cls, LanguageModel) for cls in (BigramLM, MLPLanguageModel, GPT))


def test_logits_shape_and_loss_is_mean_cross_entropy(model):
    idx, targets = _inputs(model)
    targets.view(-1)[:2] = IGNORE_INDEX  # ignored targets are not scored
    logits, loss = model(idx, targets)
    assert logits.shape == targets.shape + (V,)
    kept = targets != IGNORE_INDEX
    logp = logits.log_softmax(-1)[kept]  # (n, V)
    manual = -logp.gather(1, targets[kept][:, None]).mean()
    torch.testing.assert_close(loss, manual, rtol=1e-5, atol=1e-6)
    assert loss.shape == ()
    no_targets_logits, no_loss = model(idx)
    assert no_loss is None
    torch.testing.assert_close(no_targets_logits, logits)


def test_every_target_ignored_gives_nan(model):
    idx, targets = _inputs(model)
    _, loss = model(idx, torch.full_like(targets, IGNORE_INDEX))
    assert torch.isnan(loss)


def test_next_token_logits_is_the_row_after_the_last_token(model):
    idx, _ = _inputs(model, B=3)
    logits, _ = model(idx)
    expected = logits if model.fixed_context else logits[:, -1]
    torch.testing.assert_close(model.next_token_logits(idx), expected)
    # A longer prompt is cropped to the last block_size tokens.
    longer = torch.cat([torch.randint(V, (3, 5)), idx], dim=1)
    torch.testing.assert_close(model.next_token_logits(longer), expected)


def test_context_pads_short_prompts_of_window_models_only():
    mlp, gpt = _mlp(), _gpt()
    short = torch.tensor([[4], [5]])
    assert mlp.context(short, pad_id=0).tolist() == [[0, 0, 4], [0, 0, 5]]
    with pytest.raises(ValueError, match="pad_id"):
        mlp.context(short)
    assert torch.equal(gpt.context(short), short)  # a sequence model reads 1..block_size tokens
    long = torch.arange(10)[None] % V
    assert gpt.context(long).tolist() == [(torch.arange(2, 10) % V).tolist()]
    assert mlp.context(long).tolist() == [[0, 1, 2]]  # the last 3 of 7, 8, 9 mod 7


def _bad_input_cases(model: LanguageModel):
    """``(case, idx, targets, error)`` with the same mistakes for every model."""
    idx, targets = _inputs(model, B=2)
    T = model.config.block_size
    too_long = torch.zeros(2, T + 1, dtype=torch.long)
    out_of_range = idx.clone()
    out_of_range[0, -1] = V
    negative = idx.clone()
    negative[1, 0] = -1
    bad_target = targets.clone()
    bad_target.view(-1)[0] = V
    return [
        ("float ids", idx.float(), None, TypeError),
        ("int32 ids", idx.int(), None, TypeError),
        ("list ids", idx.tolist(), None, TypeError),
        ("1-D ids", idx[0], None, ValueError),
        ("3-D ids", idx[None], None, ValueError),
        ("id == V", out_of_range, None, ValueError),
        ("negative id", negative, None, ValueError),
        ("too long", too_long, None, ValueError),
        ("float targets", idx, targets.float(), TypeError),
        ("list targets", idx, targets.tolist(), TypeError),
        ("targets of another batch size", idx, targets[:1], ValueError),
        ("targets with an extra dimension", idx, targets[..., None], ValueError),
        ("target == V", idx, bad_target, ValueError),
    ]


@pytest.mark.parametrize("case", [c[0] for c in _bad_input_cases(_mlp())])
def test_same_mistake_same_error_for_every_model(case):
    errors = {}
    for name, make in MODELS.items():
        m = make()
        (_, idx, targets, error), = [c for c in _bad_input_cases(m) if c[0] == case]
        with pytest.raises(error) as info:
            m(idx, targets)
        errors[name] = type(info.value)
        with pytest.raises(error):  # check_inputs alone says the same
            if targets is None:
                m.check_inputs(idx)
            else:
                m.check_inputs(idx, targets)
    assert len(set(errors.values())) == 1, errors


def test_wrong_targets_shape_between_window_and_sequence_models():
    """A window model wants (B,) targets, a sequence model (B, T): each refuses the other's."""
    mlp, gpt = _mlp(), _gpt()
    with pytest.raises(ValueError, match="targets must have shape"):
        mlp(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="targets must have shape"):
        gpt(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long))


def test_window_models_need_exactly_block_size_tokens():
    with pytest.raises(ValueError, match="block_size=3"):
        _mlp()(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="block_size=1"):
        _bigram()(torch.zeros(2, 2, dtype=torch.long))
    assert _gpt()(torch.zeros(2, 2, dtype=torch.long))[0].shape == (2, 2, V)  # any 1 <= T <= block_size


# -- num_parameters -------------------------------------------------------------------------


def _unique_numel(model: torch.nn.Module, skip_embeddings: bool = False) -> int:
    """Sum of numel over distinct storages, from every name a tensor is registered under."""
    skip = set()
    if skip_embeddings:
        skip = {m.weight.data_ptr() for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    seen = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        seen[p.data_ptr()] = p.numel()
    return sum(n for ptr, n in seen.items() if ptr not in skip)


@pytest.mark.parametrize(
    "make, total, without_embeddings",
    [
        (_bigram, 0, 0),  # a table of counts: a buffer, no parameter
        # wte 7*4, hidden (3*4)*8 + 8, lm_head 8*7 + 7
        (_mlp, 28 + 104 + 63, 104 + 63),
        # wte 7*8 (tied with lm_head), wpe 8*8, block: 2 LayerNorms 2*16, c_attn 8*24+24,
        # attn c_proj 8*8+8, c_fc 8*32+32, mlp c_proj 32*8+8; ln_f 16
        (_gpt, 56 + 64 + 32 + 216 + 72 + 288 + 264 + 16, 32 + 216 + 72 + 288 + 264 + 16),
        (lambda: _gpt(tie_weights=False), 1008 + 56, 888 + 56),
    ],
)
def test_num_parameters_counts_by_hand_and_unique_tensors(make, total, without_embeddings):
    model = make()
    assert model.num_parameters() == total == _unique_numel(model)
    assert model.num_parameters(exclude_embeddings=True) == without_embeddings == _unique_numel(model, True)


def test_tied_matrix_is_registered_twice_but_counted_once():
    model = _gpt()
    names = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    assert "lm_head.weight" in names and "transformer.wte.weight" in names
    assert model.num_parameters() == sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False)) - V * 8


def test_loss_from_logits():
    logits = torch.randn(2, 3, V, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[1, 2, IGNORE_INDEX], [0, IGNORE_INDEX, 6]])
    assert LanguageModel.loss_from_logits(logits, None) is None
    kept = targets != IGNORE_INDEX
    torch.testing.assert_close(LanguageModel.loss_from_logits(logits, targets),
                               F.cross_entropy(logits[kept], targets[kept]))


def test_bigram_alpha_zero_unseen_context_is_uniform_not_nan():
    from llmscratch.bigram import BigramConfig, BigramLM
    m = BigramLM(BigramConfig(vocab_size=4, alpha=0.0)).fit(torch.tensor([0, 1]), torch.tensor([1, 2]))
    p = m.probs
    assert torch.isfinite(p).all() and torch.allclose(p.sum(1), torch.ones(4))
    assert torch.equal(p[3], torch.full((4,), 0.25))  # token 3 was never a context
    assert torch.equal(p[0], torch.tensor([0.0, 1.0, 0.0, 0.0]))  # the raw maximum-likelihood row
