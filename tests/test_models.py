"""Tests for the models of chapters 1-2: llmscratch.bigram and llmscratch.mlp."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llmscratch.bigram import BigramLM
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
    return BigramLM(vocab.vocab_size, alpha=alpha).fit(*bigram_pairs)


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
    idx = torch.randint(V, (64, 3), generator=g)
    targets = torch.randint(V, (64,), generator=g)
    logits, loss = model(idx, targets)
    assert logits.shape == (64, V)
    # only the last token of the context matters
    other = idx.clone()
    other[:, :-1] = (other[:, :-1] + 1) % V
    torch.testing.assert_close(model(other)[0], logits)
    assert model(idx)[1] is None
    manual = 0.0
    for prev, nxt in zip(idx[:, -1].tolist(), targets.tolist()):
        manual -= math.log((counts[prev][nxt] + 1) / (sum(counts[prev]) + V))
    manual /= len(targets)
    assert loss.item() == pytest.approx(manual, rel=1e-5)


def test_bigram_refit_replaces_counts():
    model = BigramLM(3, alpha=0.0)
    model.fit(torch.tensor([0, 0]), torch.tensor([1, 2]))
    model.fit(torch.tensor([1]), torch.tensor([2]))
    assert model.counts.tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 0]]


@pytest.mark.parametrize("kwargs, match", [({"vocab_size": 0}, "vocab_size"), ({"vocab_size": 3, "alpha": -1.0}, "alpha")])
def test_bigram_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BigramLM(**kwargs)


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
    # int32 ids are accepted too
    assert model(torch.zeros(B, 2, dtype=torch.int32))[0].shape == (B, 9)


def test_mlp_dropout_only_in_training():
    torch.manual_seed(0)
    model = MLPLanguageModel(MLPConfig(vocab_size=9, block_size=2, dropout=0.5))
    idx = torch.randint(9, (16, 2))
    model.eval()
    torch.testing.assert_close(model(idx)[0], model(idx)[0])
    model.train()
    assert not torch.allclose(model(idx)[0], model(idx)[0])


@pytest.mark.parametrize("shape", [(4, 2), (4, 4), (3,), (2, 3, 1)])
def test_mlp_rejects_wrong_context_length(shape):
    model = MLPLanguageModel(MLPConfig(vocab_size=9, block_size=3))
    with pytest.raises(ValueError, match=r"shape \(B, block_size=3\)"):
        model(torch.zeros(shape, dtype=torch.long))


def test_mlp_rejects_float_idx():
    model = MLPLanguageModel(MLPConfig(vocab_size=9, block_size=3))
    with pytest.raises(TypeError, match="integer token ids"):
        model(torch.zeros(2, 3))


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
