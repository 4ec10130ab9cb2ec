"""Tests for the models of chapters 1-2: llmscratch.bigram and llmscratch.mlp."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from llmscratch.bigram import BigramConfig, BigramLM
from llmscratch.data import load_indian_names
from llmscratch.mlp import MLPConfig, MLPLanguageModel
from llmscratch.vocab import CharVocab
from llmscratch.windows import name_windows


@pytest.fixture(scope="module")
def names(mirror_dir, tmp_path_factory) -> list[str]:
    """The cleaned Indian names, read from the offline mirror."""
    names, _ = load_indian_names(mirror=mirror_dir, cache_dir=tmp_path_factory.mktemp("cache"))
    return names


@pytest.fixture(scope="module")
def vocab(names) -> CharVocab:
    return CharVocab.from_text(names, boundary=".")


def _naive_bigram_counts(names: list[str], vocab: CharVocab) -> list[list[int]]:
    """Count (previous, next) character pairs with two plain Python loops."""
    V = vocab.vocab_size
    counts = [[0] * V for _ in range(V)]
    for name in names:
        chars = ["."] + list(name) + ["."]
        for a, b in zip(chars, chars[1:]):
            counts[vocab.stoi[a]][vocab.stoi[b]] += 1
    return counts


# -- BigramLM -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def naive_counts(names, vocab) -> list[list[int]]:
    return _naive_bigram_counts(names, vocab)


@pytest.fixture(scope="module")
def bigram_pairs(names, vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (previous, next) id pair of the names: windows with block_size 1."""
    X, Y = name_windows([vocab.encode(n) for n in names], block_size=1)
    return X[:, 0], Y


def _fitted_bigram(bigram_pairs, vocab, alpha):
    return BigramLM(BigramConfig(vocab.vocab_size, alpha=alpha)).fit(*bigram_pairs)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_bigram_rows_sum_to_one(bigram_pairs, naive_counts, vocab, alpha):
    probs = _fitted_bigram(bigram_pairs, vocab, alpha).probs
    counts = torch.tensor(naive_counts, dtype=torch.float64)
    seen_rows = counts.sum(dim=1) > 0  # with alpha=0 an unseen row has no distribution
    assert bool(seen_rows.all()) or alpha == 0
    torch.testing.assert_close(
        probs[seen_rows].sum(dim=1).double(), torch.ones(int(seen_rows.sum()), dtype=torch.float64)
    )
    assert bool((probs[seen_rows] >= 0).all())


def test_bigram_alpha0_equals_naive_normalised_counts(bigram_pairs, naive_counts, vocab):
    model = _fitted_bigram(bigram_pairs, vocab, alpha=0.0)
    counts = naive_counts
    assert model.counts.tolist() == [[float(c) for c in row] for row in counts]
    expected = []
    for row in counts:
        total = sum(row)
        expected.append([c / total if total else float("nan") for c in row])
    expected = torch.tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(model.probs.double(), expected, rtol=1e-6, atol=1e-7, equal_nan=True)


def test_bigram_smoothing_gives_every_pair_positive_probability(bigram_pairs, naive_counts, vocab):
    model = _fitted_bigram(bigram_pairs, vocab, alpha=1.0)
    counts = naive_counts
    assert bool((model.probs > 0).all())
    i, j = vocab.stoi["q"], vocab.stoi["x"]
    row_total = sum(counts[i]) + vocab.vocab_size
    assert model.probs[i, j].item() == pytest.approx((counts[i][j] + 1) / row_total, rel=1e-6)


def test_bigram_forward_shapes_and_loss_is_mean_nll(bigram_pairs, naive_counts, vocab):
    model = _fitted_bigram(bigram_pairs, vocab, alpha=1.0)
    counts = naive_counts
    V = vocab.vocab_size
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(V, (64, 1), generator=g)  # a window of one token (block_size 1)
    targets = torch.randint(V, (64,), generator=g)
    logits, loss = model(idx, targets)
    assert logits.shape == (64, V)
    assert model(idx)[1] is None
    manual = 0.0
    for prev, nxt in zip(idx[:, 0].tolist(), targets.tolist()):
        manual -= math.log((counts[prev][nxt] + 1) / (sum(counts[prev]) + V))
    manual /= len(targets)
    assert loss.item() == pytest.approx(manual, rel=1e-5)
    # The sampler reads it through the contract: a longer prompt is cropped to its last token.
    longer = torch.cat([torch.randint(V, (64, 4), generator=g), idx], dim=1)
    torch.testing.assert_close(model.next_token_logits(longer), logits)


def test_bigram_refit_replaces_counts():
    model = BigramLM(BigramConfig(3, alpha=0.0))
    model.fit(torch.tensor([0, 0]), torch.tensor([1, 2]))
    model.fit(torch.tensor([1]), torch.tensor([2]))
    assert model.counts.tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 0]]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"vocab_size": 0}, ValueError, "vocab_size"),
        ({"vocab_size": 3.0}, TypeError, "vocab_size"),
        ({"vocab_size": True}, TypeError, "vocab_size"),
        ({"vocab_size": 3, "alpha": -1.0}, ValueError, "alpha"),
        ({"vocab_size": 3, "alpha": float("nan")}, ValueError, "alpha"),
        ({"vocab_size": 3, "alpha": float("inf")}, ValueError, "alpha"),
        ({"vocab_size": 3, "alpha": "1"}, TypeError, "alpha"),
        ({"vocab_size": 3, "block_size": 2}, ValueError, "block_size"),
        ({"vocab_size": 3, "block_size": 1.0}, TypeError, "block_size"),
        ({"vocab_size": 3, "block_size": True}, TypeError, "block_size"),
    ],
)
def test_bigram_config_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        BigramConfig(**kwargs)


def test_bigram_config_is_frozen_and_required():
    config = BigramConfig(5)
    assert config.to_dict() == {"vocab_size": 5, "alpha": 1.0, "block_size": 1}
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.alpha = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError, match="BigramConfig"):
        BigramLM(5)


@pytest.mark.parametrize(
    "prev, nxt, error, match",
    [
        (torch.tensor([0.0, 1.0]), torch.tensor([1, 2]), TypeError, "prev"),
        (torch.tensor([0, 1]), torch.tensor([1, 2], dtype=torch.int32), TypeError, "nxt"),
        ([0, 1], torch.tensor([1, 2]), TypeError, "prev"),
        (torch.tensor([0, 3]), torch.tensor([1, 2]), ValueError, "prev"),
        (torch.tensor([0, 1]), torch.tensor([1, -1]), ValueError, "nxt"),
        (torch.tensor([[0, 1]]), torch.tensor([[1, 2]]), ValueError, "prev"),
        (torch.tensor([0, 1]), torch.tensor([1]), ValueError, "shape"),
    ],
)
def test_bigram_fit_validation(prev, nxt, error, match):
    model = BigramLM(BigramConfig(3))
    with pytest.raises(error, match=match):
        model.fit(prev, nxt)
    assert model.counts.sum() == 0  # a refused fit changes nothing


# -- MLPLanguageModel ---------------------------------------------------------------


def test_mlp_initial_loss_is_near_uniform(names, vocab):
    X, Y = name_windows([vocab.encode(n) for n in names], block_size=3)
    torch.manual_seed(0)
    model = MLPLanguageModel(MLPConfig(vocab_size=vocab.vocab_size, block_size=3))
    with torch.no_grad():
        _, loss = model(X, Y)
    assert abs(loss.item() - math.log(vocab.vocab_size)) < 0.05


def test_mlp_overfits_one_batch(names, vocab):
    X, Y = name_windows([vocab.encode(n) for n in names[:200]], block_size=3)
    # 32 windows with distinct contexts: a model can fit them exactly
    picked, seen = [], set()
    for i, row in enumerate(X.tolist()):
        if tuple(row) not in seen:
            seen.add(tuple(row))
            picked.append(i)
        if len(picked) == 32:
            break
    x, y = X[picked], Y[picked]
    torch.manual_seed(0)
    model = MLPLanguageModel(MLPConfig(vocab_size=vocab.vocab_size, block_size=3, n_hidden=64))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(120):
        _, loss = model(x, y)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    _, loss = model(x, y)
    assert first > 3.0
    assert loss.item() < 0.05


def test_mlp_forward_matches_bengio_equation():
    """logits = b + U tanh(d + H x), x the concatenated embeddings (Bengio et al., eq. 1, W = 0)."""
    torch.manual_seed(0)
    cfg = MLPConfig(vocab_size=11, block_size=4, n_embd=5, n_hidden=7)
    model = MLPLanguageModel(cfg)
    idx = torch.randint(11, (6, 4))
    targets = torch.randint(11, (6,))
    logits, loss = model(idx, targets)
    C = model.wte.weight
    x = torch.cat([C[idx[:, t]] for t in range(4)], dim=1)  # (B, T*C)
    h = torch.tanh(x @ model.hidden.weight.T + model.hidden.bias)
    expected = h @ model.lm_head.weight.T + model.lm_head.bias
    assert logits.shape == (6, 11)
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(loss, F.cross_entropy(expected, targets))
    assert model(idx)[1] is None


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu"])
@pytest.mark.parametrize("B", [1, 5])
def test_mlp_shapes(activation, B):
    model = MLPLanguageModel(MLPConfig(vocab_size=9, block_size=2, activation=activation))
    logits, loss = model(torch.zeros(B, 2, dtype=torch.long), torch.zeros(B, dtype=torch.long))
    assert logits.shape == (B, 9)
    assert loss.shape == ()
    # int32 ids are refused, as by every model of the package (llmscratch.lm)
    with pytest.raises(TypeError, match="int64"):
        model(torch.zeros(B, 2, dtype=torch.int32))


def test_mlp_dropout_only_in_training():
    torch.manual_seed(0)
    model = MLPLanguageModel(MLPConfig(vocab_size=9, block_size=2, dropout=0.5))
    idx = torch.randint(9, (16, 2))
    model.eval()
    torch.testing.assert_close(model(idx)[0], model(idx)[0])
    model.train()
    assert not torch.allclose(model(idx)[0], model(idx)[0])


@pytest.mark.parametrize("shape", [(4, 2), (4, 4)])
def test_mlp_rejects_wrong_context_length(shape):
    model = MLPLanguageModel(MLPConfig(vocab_size=9, block_size=3))
    with pytest.raises(ValueError, match=r"shape \(B, block_size=3\)"):
        model(torch.zeros(shape, dtype=torch.long))


@pytest.mark.parametrize("shape", [(3,), (2, 3, 1)])
def test_mlp_rejects_wrong_rank(shape):
    model = MLPLanguageModel(MLPConfig(vocab_size=9, block_size=3))
    with pytest.raises(ValueError, match="idx must have 2 dimensions"):
        model(torch.zeros(shape, dtype=torch.long))


def test_mlp_rejects_float_idx():
    model = MLPLanguageModel(MLPConfig(vocab_size=9, block_size=3))
    with pytest.raises(TypeError, match="int64 token ids"):
        model(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="MLPConfig"):
        MLPLanguageModel({"vocab_size": 9})


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("vocab_size", 0, ValueError),
        ("block_size", 0, ValueError),
        ("n_embd", -1, ValueError),
        ("n_hidden", 0, ValueError),
        ("block_size", 3.0, TypeError),
        ("n_embd", True, TypeError),
        ("n_hidden", "200", TypeError),
        ("activation", "sigmoid", ValueError),
        ("dropout", 1.0, ValueError),
        ("dropout", -0.1, ValueError),
        ("dropout", float("nan"), ValueError),
        ("dropout", True, TypeError),
        ("vocab_size", 27.0, TypeError),
    ],
)
def test_mlp_config_validation(field, value, error):
    kwargs = {"vocab_size": 27, field: value}
    with pytest.raises(error, match=field):
        MLPConfig(**kwargs)


def test_mlp_config_defaults_and_to_dict():
    cfg = MLPConfig(vocab_size=27)
    assert cfg.to_dict() == {
        "vocab_size": 27,
        "block_size": 3,
        "n_embd": 10,
        "n_hidden": 200,
        "activation": "tanh",
        "dropout": 0.0,
    }
    assert MLPLanguageModel.fixed_context is True
