"""Tests for llmscratch.sampling: logit filters and the generation loop.

The generation tests use tiny mock models (uniform logits, or a model that always
predicts "last token + 1"), as nanochat's tests do, so that seeding, greedy decoding,
stopping and padding can be checked exactly.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llmscratch.bigram import BigramConfig, BigramLM
from llmscratch.gpt import GPT, GPTConfig
from llmscratch.lm import LanguageModel
from llmscratch.mlp import MLPConfig, MLPLanguageModel
from llmscratch.sampling import filter_logits, generate

# -- filter_logits --------------------------------------------------------------------


def _random_logits(B=4, V=50, seed=0):
    return torch.randn(B, V, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0, 2.0, 10.0])
def test_temperature_scales_logits(temperature):
    logits = _random_logits()
    out = filter_logits(logits, temperature=temperature)
    torch.testing.assert_close(F.softmax(out, dim=-1), F.softmax(logits / temperature, dim=-1))
    assert torch.isfinite(out).all()


def test_temperature_sharpens_and_flattens():
    logits = _random_logits(B=1)
    entropy = lambda lg: float(-(F.softmax(lg, -1) * F.log_softmax(lg, -1)).sum())  # noqa: E731
    assert entropy(filter_logits(logits, temperature=0.5)) < entropy(logits) < entropy(
        filter_logits(logits, temperature=2.0)
    )


@pytest.mark.parametrize("k", [1, 2, 7, 49, 50, 80])
def test_top_k_keeps_exactly_k(k):
    logits = _random_logits()  # continuous random values: no ties
    out = filter_logits(logits, top_k=k)
    kept = torch.isfinite(out)
    assert (kept.sum(dim=-1) == min(k, 50)).all()
    # the kept ones are the k largest, unchanged; the rest are -inf
    top = torch.topk(logits, min(k, 50), dim=-1).indices
    expected = torch.zeros_like(kept).scatter(-1, top, True)
    assert torch.equal(kept, expected)
    assert torch.equal(out[kept], logits[kept])
    assert (out[~kept] == float("-inf")).all()


def test_top_k_keeps_ties_at_threshold():
    logits = torch.tensor([[3.0, 2.0, 2.0, 1.0]])
    assert torch.isfinite(filter_logits(logits, top_k=2)).tolist() == [[True, True, True, False]]


def _kept(probs, top_p):
    logits = torch.tensor([probs]).log()
    return torch.isfinite(filter_logits(logits, top_p=top_p))[0].tolist()


@pytest.mark.parametrize(
    "top_p, expected",
    [
        (0.3, [True, False, False, False]),
        (0.5, [True, False, False, False]),
        (0.51, [True, True, False, False]),
        (0.79, [True, True, False, False]),
        (0.8, [True, True, False, False]),
        (0.81, [True, True, True, False]),
        (0.96, [True, True, True, True]),
        (1.0, [True, True, True, True]),
    ],
)
def test_top_p_keeps_smallest_nucleus(top_p, expected):
    assert _kept([0.5, 0.3, 0.15, 0.05], top_p) == expected


def test_top_p_works_in_vocabulary_order():
    """The same distribution shuffled: the nucleus follows the tokens, not the positions."""
    assert _kept([0.05, 0.3, 0.15, 0.5], 0.8) == [False, True, False, True]
    assert _kept([0.15, 0.05, 0.5, 0.3], 0.81) == [True, False, True, True]


@pytest.mark.parametrize("top_p", [0.01, 0.2, 0.5, 0.9, 0.99])
def test_top_p_nucleus_against_naive_reference(top_p):
    logits = _random_logits(B=6, V=30, seed=1) * 2
    kept = torch.isfinite(filter_logits(logits, top_p=top_p))
    probs = F.softmax(logits.double(), dim=-1)
    for row in range(logits.shape[0]):
        order = sorted(range(30), key=lambda i: -probs[row, i].item())
        nucleus, total = set(), 0.0
        for i in order:  # add tokens, most likely first, until the mass reaches top_p
            nucleus.add(i)
            total += probs[row, i].item()
            if total >= top_p:
                break
        assert {i for i in range(30) if kept[row, i]} == nucleus


@pytest.mark.parametrize("kwargs", [{"top_k": 1}, {"top_p": 1e-6}, {"top_k": 3, "top_p": 0.01}, {"temperature": 0.01}])
def test_argmax_is_always_kept(kwargs):
    logits = _random_logits(B=8, V=40, seed=2)
    out = filter_logits(logits, **kwargs)
    rows = torch.arange(8)
    assert torch.isfinite(out[rows, logits.argmax(-1)]).all()
    assert torch.equal(out.argmax(-1), logits.argmax(-1))


def test_filters_compose():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]])
    out = filter_logits(logits, temperature=2.0, top_k=3, top_p=0.999)
    assert torch.isfinite(out).tolist() == [[True, True, True, False, False]]
    torch.testing.assert_close(out[0, :3], logits[0, :3] / 2.0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_p": -0.2}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": -3}, "top_k"),
        ({"top_p": float("nan")}, "top_p"),
        ({"temperature": float("inf")}, "temperature"),
    ],
)
def test_filter_rejects_bad_values(kwargs, name):
    with pytest.raises(ValueError, match=name):
        filter_logits(_random_logits(), **kwargs)
    with pytest.raises(ValueError, match=name):
        generate(UniformModel(), torch.zeros(1, 1, dtype=torch.long), 3, **kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"top_k": 2.5}, "top_k"), ({"top_k": True}, "top_k"), ({"top_p": "0.9"}, "top_p"),
     ({"temperature": None}, "temperature")],
)
def test_filter_rejects_bad_types(kwargs, name):
    with pytest.raises(TypeError, match=name):
        filter_logits(_random_logits(), **kwargs)
    with pytest.raises(TypeError, match=name):
        generate(UniformModel(), torch.zeros(1, 1, dtype=torch.long), 3, **kwargs)


# -- generate -------------------------------------------------------------------------


class UniformModel(LanguageModel):
    """Uniform logits over ``vocab_size`` tokens; a sequence model's ``(B, T, V)`` output."""

    def __init__(self, vocab_size: int = 10, block_size: int = 8) -> None:
        super().__init__()
        self.config = SimpleNamespace(vocab_size=vocab_size, block_size=block_size)
        self.calls: list[tuple[torch.Tensor, bool]] = []  # (input, training flag) per call

    def forward(self, idx, targets=None):
        self.calls.append((idx.clone(), self.training))
        return torch.zeros(idx.shape[0], idx.shape[1], self.config.vocab_size), None


class CountingModel(LanguageModel):
    """A fixed-window model whose argmax is ``(last token + 1) mod vocab_size``."""

    fixed_context = True

    def __init__(self, vocab_size: int = 10, block_size: int = 3) -> None:
        super().__init__()
        self.config = SimpleNamespace(vocab_size=vocab_size, block_size=block_size)
        self.calls: list[torch.Tensor] = []

    def forward(self, idx, targets=None):
        assert idx.shape[1] == self.config.block_size
        self.calls.append(idx.clone())
        nxt = (idx[:, -1] + 1) % self.config.vocab_size
        return F.one_hot(nxt, self.config.vocab_size).float() * 5.0, None  # (B, V)


def test_generate_output_shape_and_prompt_kept():
    prompt = torch.randint(10, (3, 4), generator=torch.Generator().manual_seed(0))
    out = generate(UniformModel(), prompt, 6, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 10) and out.dtype == torch.int64
    assert torch.equal(out[:, :4], prompt)
    assert ((out >= 0) & (out < 10)).all()
    assert generate(UniformModel(), prompt, 0).shape == (3, 4)


def test_generate_seeding():
    prompt = torch.zeros(4, 1, dtype=torch.long)
    a = generate(UniformModel(), prompt, 30, generator=torch.Generator().manual_seed(123))
    b = generate(UniformModel(), prompt, 30, generator=torch.Generator().manual_seed(123))
    c = generate(UniformModel(), prompt, 30, generator=torch.Generator().manual_seed(124))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # with uniform logits every token is drawn (120 draws over 10 tokens)
    assert set(a[:, 1:].flatten().tolist()) == set(range(10))


def test_generate_greedy_picks_argmax():
    prompt = torch.tensor([[0, 0, 1], [0, 0, 7]])
    out = generate(CountingModel(), prompt, 5, greedy=True)
    assert out.tolist() == [[0, 0, 1, 2, 3, 4, 5, 6], [0, 0, 7, 8, 9, 0, 1, 2]]
    # greedy ignores the sampling filters (even a temperature that would be rejected)
    assert torch.equal(generate(CountingModel(), prompt, 5, greedy=True, temperature=0.0), out)


def test_generate_low_temperature_and_top_k1_match_greedy():
    prompt = torch.tensor([[0, 0, 4]])
    greedy = generate(CountingModel(), prompt, 6, greedy=True)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(generate(CountingModel(), prompt, 6, top_k=1, generator=g), greedy)
    assert torch.equal(generate(CountingModel(), prompt, 6, top_p=0.5, generator=g), greedy)


def test_generate_stop_id_stops_rows_and_fills():
    prompt = torch.tensor([[0, 0, 1], [0, 0, 4]])
    out = generate(CountingModel(), prompt, 10, greedy=True, stop_id=6)
    # row 1 reaches 6 after 2 steps and is then filled with 6; row 0 after 5 steps,
    # when every row is finished, so generation ends early
    assert out.tolist() == [[0, 0, 1, 2, 3, 4, 5, 6], [0, 0, 4, 5, 6, 6, 6, 6]]


def test_generate_stop_id_never_emitted_runs_to_max():
    out = generate(CountingModel(), torch.tensor([[0, 0, 1]]), 4, greedy=True, stop_id=9)
    assert out.tolist() == [[0, 0, 1, 2, 3, 4, 5]]


def test_generate_crops_context_for_transformer_style_models():
    model = UniformModel(block_size=4)
    generate(model, torch.arange(6)[None], 3, generator=torch.Generator().manual_seed(0))
    assert [tuple(x.shape) for x, _ in model.calls] == [(1, 4)] * 3
    assert model.calls[0][0].tolist() == [[2, 3, 4, 5]]
    # a short prompt is passed as is (no padding)
    model = UniformModel(block_size=4)
    generate(model, torch.tensor([[1]]), 1)
    assert model.calls[0][0].tolist() == [[1]]


def test_generate_left_pads_fixed_window_models():
    model = CountingModel(block_size=3)
    out = generate(model, torch.tensor([[4]]), 3, greedy=True, pad_id=0)
    assert out.tolist() == [[4, 5, 6, 7]]  # the padding is not part of the output
    assert [c.tolist() for c in model.calls] == [[[0, 0, 4]], [[0, 4, 5]], [[4, 5, 6]]]


def test_generate_mlp_short_prompt_needs_pad_id():
    torch.manual_seed(0)
    mlp = MLPLanguageModel(MLPConfig(vocab_size=27, block_size=3))
    prompt = torch.tensor([[0]])
    with pytest.raises(ValueError, match="pad_id"):
        generate(mlp, prompt, 5)
    seen = []
    mlp.register_forward_hook(lambda module, args, output: seen.append(args[0].clone()))
    out = generate(mlp, prompt, 5, pad_id=0, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 6)
    assert seen[0].tolist() == [[0, 0, 0]]
    assert seen[1].tolist() == [[0, 0, out[0, 1].item()]]
    # same seed, same names
    again = generate(mlp, prompt, 5, pad_id=0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


@pytest.mark.parametrize("training", [True, False])
def test_generate_restores_training_flag(training):
    model = UniformModel()
    model.train(training)
    generate(model, torch.zeros(2, 1, dtype=torch.long), 3, generator=torch.Generator().manual_seed(0))
    assert model.training is training
    assert all(flag is False for _, flag in model.calls)  # sampling runs in eval mode


def test_generate_restores_training_flag_after_an_error():
    class Broken(UniformModel):
        def forward(self, idx, targets=None):
            raise RuntimeError("boom")

    model = Broken()
    model.train()
    with pytest.raises(RuntimeError, match="boom"):
        generate(model, torch.zeros(1, 1, dtype=torch.long), 3)
    assert model.training


def test_generate_rejects_bad_arguments():
    model = UniformModel()
    with pytest.raises(ValueError, match="idx"):
        generate(model, torch.zeros(2, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="idx"):
        generate(model, torch.zeros(3, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="idx"):
        generate(model, torch.tensor([[0, 10]]), 3)  # id == vocab_size
    with pytest.raises(TypeError, match="idx"):
        generate(model, torch.zeros(1, 1), 3)
    with pytest.raises(TypeError, match="idx"):
        generate(model, [[0]], 3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, torch.zeros(1, 1, dtype=torch.long), -1)
    with pytest.raises(TypeError, match="max_new_tokens"):
        generate(model, torch.zeros(1, 1, dtype=torch.long), 2.0)
    assert model.calls == []  # every check comes before the first forward pass


def test_generate_requires_a_language_model():
    class Plain(nn.Module):
        config = SimpleNamespace(vocab_size=10, block_size=8)

        def forward(self, idx, targets=None):
            return torch.zeros(idx.shape[0], idx.shape[1], 10), None

    with pytest.raises(TypeError, match="LanguageModel"):
        generate(Plain(), torch.zeros(1, 1, dtype=torch.long), 3)


# -- the same sampler on the three models of the book ---------------------------------


def _book_models() -> dict[str, LanguageModel]:
    g = torch.Generator().manual_seed(0)
    prev = torch.cat([torch.arange(12).repeat(20), torch.randint(12, (300,), generator=g)])
    nxt = torch.cat([((torch.arange(12) * 5 + 1) % 12).repeat(20), torch.randint(12, (300,), generator=g)])
    bigram = BigramLM(BigramConfig(12, alpha=0.1)).fit(prev, nxt)  # mostly x -> 5x + 1 mod 12
    torch.manual_seed(0)
    mlp = MLPLanguageModel(MLPConfig(vocab_size=12, block_size=3, n_embd=4, n_hidden=16))
    gpt = GPT(GPTConfig(vocab_size=12, block_size=5, n_layer=1, n_head=2, n_embd=8, tie_weights=False))
    for m in (mlp, gpt):  # make the logits far from uniform so greedy paths are non-trivial
        with torch.no_grad():
            m.lm_head.weight.mul_(200.0)
    return {"bigram": bigram, "mlp": mlp, "gpt": gpt}


def _manual_greedy(model, prompt: torch.Tensor, n: int, pad_id: int) -> torch.Tensor:
    """Greedy decoding written out with the model's forward only, per model kind."""
    T = model.config.block_size
    seq = prompt.clone()
    for _ in range(n):
        ctx = seq[:, -T:]
        if isinstance(model, (BigramLM, MLPLanguageModel)):  # window models: exactly T tokens
            pad = torch.full((seq.shape[0], T - ctx.shape[1]), pad_id, dtype=torch.long)
            logits, _ = model(torch.cat([pad, ctx], dim=1))  # (B, V)
        else:
            logits, _ = model(ctx)
            logits = logits[:, -1]  # (B, V)
        seq = torch.cat([seq, logits.argmax(-1, keepdim=True)], dim=1)
    return seq


@pytest.mark.parametrize("name", ["bigram", "mlp", "gpt"])
def test_generate_works_unchanged_on_every_model(name):
    model = _book_models()[name].train()
    prompt = torch.tensor([[3], [7]])  # shorter than the MLP's window: left-padded with pad_id
    greedy = generate(model, prompt, 9, greedy=True, pad_id=0)
    assert model.training  # restored after sampling in eval mode
    model.eval()
    assert torch.equal(greedy, _manual_greedy(model, prompt, 9, pad_id=0))
    assert len(set(greedy[0, 1:].tolist())) > 1  # a non-trivial path
    sampled = generate(model, prompt, 9, pad_id=0, top_k=3, generator=torch.Generator().manual_seed(1))
    again = generate(model, prompt, 9, pad_id=0, top_k=3, generator=torch.Generator().manual_seed(1))
    assert sampled.shape == (2, 10) and torch.equal(sampled, again)
    assert torch.equal(sampled[:, :1], prompt) and ((sampled >= 0) & (sampled < 12)).all()
    # a prompt longer than every model's context is cropped to its last block_size tokens
    long_prompt = torch.arange(8)[None]
    assert torch.equal(generate(model, long_prompt, 3, greedy=True, pad_id=0),
                       _manual_greedy(model, long_prompt, 3, pad_id=0))


@pytest.mark.parametrize("name", ["bigram", "mlp", "gpt"])
def test_sampled_tokens_follow_the_models_distribution(name):
    """One step, many rows: token frequencies match softmax(next_token_logits)."""
    model = _book_models()[name].eval()
    with torch.no_grad():
        for m in model.modules():  # a flatter distribution so several tokens get drawn
            if isinstance(m, nn.Linear) and m.out_features == 12:
                m.weight.div_(200.0)
    prompt = torch.full((4000, 1), 5)
    out = generate(model, prompt, 1, pad_id=0, generator=torch.Generator().manual_seed(0))[:, -1]
    freq = torch.bincount(out, minlength=12).double() / len(out)
    with torch.no_grad():
        probs = model.next_token_logits(prompt[:1], pad_id=0).softmax(-1)[0].double()
    assert (freq - probs).abs().max() < 0.03
