"""Tests for llmscratch.train: schedule, parameter groups, evaluation and the loop."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llmscratch.data import load_indian_names
from llmscratch.mlp import MLPConfig, MLPLanguageModel
from llmscratch.train import TrainConfig, TrainResult, evaluate, learning_rate, param_groups, train
from llmscratch.vocab import CharVocab
from llmscratch.windows import IGNORE_INDEX, TokenStream, WindowDataset, name_windows, split_by_name


@pytest.fixture(scope="module")
def names_data(mirror_dir, tmp_path_factory):
    """Train and validation windows (block_size 3) over the Indian names, split by name."""
    names, _ = load_indian_names(mirror=mirror_dir, cache_dir=tmp_path_factory.mktemp("cache"))
    vocab = CharVocab.from_text(names, boundary=".")
    train_names, val_names, _ = split_by_name(names, seed=0)
    train_set = WindowDataset(*name_windows([vocab.encode(n) for n in train_names], 3))
    val_set = WindowDataset(*name_windows([vocab.encode(n) for n in val_names], 3))
    return vocab, train_set, val_set


def _small_mlp(vocab_size: int, seed: int = 0) -> MLPLanguageModel:
    torch.manual_seed(seed)
    return MLPLanguageModel(MLPConfig(vocab_size=vocab_size, block_size=3, n_hidden=64, dropout=0.1))


SMALL = dict(max_steps=80, batch_size=32, lr=1e-2, warmup_steps=5, eval_interval=40, eval_batches=2, weight_decay=0.01, grad_clip=1.0)


@pytest.fixture(scope="module")
def two_runs(names_data):
    """Two trainings with the same seed and initial weights, and one with another seed."""
    vocab, train_set, val_set = names_data
    runs = []
    for i, seed in enumerate((0, 0, 1)):
        model = _small_mlp(vocab.vocab_size)
        torch.rand(10 + i)  # move torch's global generator on: train() must seed dropout itself
        runs.append(train(model, train_set, val_set, TrainConfig(**SMALL, seed=seed), progress=False))
    return runs


# -- train -----------------------------------------------------------------------------


def test_train_same_seed_gives_identical_losses(two_runs):
    a, b, other = two_runs
    assert a.batch_loss == b.batch_loss
    assert a.train_loss == b.train_loss and a.val_loss == b.val_loss
    assert a.final_val_loss == b.final_val_loss
    assert other.batch_loss != a.batch_loss  # another seed draws other minibatches


def test_train_seed_chooses_the_minibatches(names_data):
    """Without dropout, only the minibatch sampler depends on the seed."""
    vocab, train_set, val_set = names_data
    first_losses = []
    for seed in (0, 0, 1):
        torch.manual_seed(0)
        model = MLPLanguageModel(MLPConfig(vocab_size=vocab.vocab_size, block_size=3, n_hidden=16))
        cfg = TrainConfig(max_steps=2, batch_size=32, eval_batches=1, seed=seed)
        result = train(model, train_set, val_set, cfg, progress=False)
        assert result.steps == [2]  # the last step is always evaluated
        first_losses.append(result.batch_loss[0])
    assert first_losses[0] == first_losses[1] != first_losses[2]


def test_train_loss_goes_down(two_runs, names_data):
    vocab = names_data[0]
    result = two_runs[0]
    uniform = math.log(vocab.vocab_size)  # 3.30 nats: the loss of a uniform guess
    assert abs(result.batch_loss[0] - uniform) < 0.1
    first, last = sum(result.batch_loss[:10]) / 10, sum(result.batch_loss[-10:]) / 10
    assert last < first - 0.4
    assert result.final_val_loss < uniform - 0.4
    assert result.val_loss[-1] < uniform - 0.4


def test_train_result_records(two_runs):
    result = two_runs[0]
    cfg = TrainConfig(**SMALL)
    assert len(result.batch_loss) == len(result.lr) == cfg.max_steps
    assert result.lr == [learning_rate(s, cfg) for s in range(cfg.max_steps)]
    assert result.steps == [40, 80]
    assert len(result.train_loss) == len(result.val_loss) == 2
    assert result.train_seconds > 0 and result.tokens_per_second > 0
    assert all(math.isfinite(x) for x in result.batch_loss)
    assert TrainResult.from_dict(result.to_dict()) == result


class PositionBigram(nn.Module):
    """A bigram model with the transformer interface: logits ``(B, T, V)`` at every position."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx, targets=None):
        logits = self.table(idx)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
        return logits, loss


def test_train_on_token_stream_all_targets():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 5, (400,), generator=g) * 2  # even ids only ...
    ids[1::2] = ids[::2] + 1  # ... each followed by its successor: half the text is predictable
    train_set = TokenStream(ids[:300], 8, targets="all")
    val_set = TokenStream(ids[300:], 8, targets="all")
    torch.manual_seed(0)
    model = PositionBigram(10)
    before = evaluate(model, val_set)
    result = train(model, train_set, val_set, TrainConfig(max_steps=60, batch_size=8, lr=0.1, eval_interval=30), progress=False)
    assert result.final_val_loss < before - 0.5
    assert result.final_val_loss == pytest.approx(evaluate(model, val_set))


# -- learning_rate ---------------------------------------------------------------------


def test_learning_rate_warmup_then_cosine():
    cfg = TrainConfig(max_steps=100, warmup_steps=10, lr=1e-3, min_lr=1e-4)
    lrs = [learning_rate(s, cfg) for s in range(cfg.max_steps)]
    # linear warm-up: lr * (t + 1) / t_w, reaching the peak at the end of the warm-up
    for s in range(10):
        assert lrs[s] == pytest.approx(1e-3 * (s + 1) / 10)
    assert lrs[9] == pytest.approx(1e-3) and lrs[10] == pytest.approx(1e-3)
    assert max(lrs) == pytest.approx(1e-3)
    # cosine half-way down at the middle of the decay, min_lr at the end
    assert learning_rate(55, cfg) == pytest.approx((1e-3 + 1e-4) / 2)
    assert learning_rate(100, cfg) == pytest.approx(1e-4)
    assert learning_rate(500, cfg) == pytest.approx(1e-4)
    assert lrs[-1] == pytest.approx(1e-4, abs=1e-6)
    # monotone: up during warm-up, never up afterwards, never below min_lr
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10]))
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert min(lrs) >= 1e-4


def test_learning_rate_defaults_and_constant():
    cfg = TrainConfig(max_steps=50, lr=2e-3)
    assert cfg.min_lr == pytest.approx(2e-4)
    assert learning_rate(0, cfg) == pytest.approx(2e-3)  # no warm-up: start at the peak
    const = TrainConfig(max_steps=50, lr=2e-3, warmup_steps=4, schedule="constant")
    assert [learning_rate(s, const) for s in range(6)] == pytest.approx([5e-4, 1e-3, 1.5e-3, 2e-3, 2e-3, 2e-3])
    assert learning_rate(49, const) == 2e-3


# -- param_groups ----------------------------------------------------------------------


class WithNormAndFrozen(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mlp = MLPLanguageModel(MLPConfig(vocab_size=7, block_size=2))
        self.norm = nn.LayerNorm(7)
        self.frozen = nn.Linear(3, 3)
        self.frozen.requires_grad_(False)


def test_param_groups_partition_parameters():
    model = WithNormAndFrozen()
    decay, no_decay = param_groups(model, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids_decay = [id(p) for p in decay["params"]]
    ids_no = [id(p) for p in no_decay["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(ids_decay + ids_no) == sorted(trainable)  # each trainable parameter exactly once
    assert not set(ids_decay) & set(ids_no)
    named = dict(model.named_parameters())
    decayed = {n for n, p in named.items() if id(p) in ids_decay}
    assert decayed == {"mlp.wte.weight", "mlp.hidden.weight", "mlp.lm_head.weight"}
    undecayed = {n for n, p in named.items() if id(p) in ids_no}
    assert undecayed == {"mlp.hidden.bias", "mlp.lm_head.bias", "norm.weight", "norm.bias"}
    # AdamW accepts the groups
    torch.optim.AdamW(param_groups(model, 0.1), lr=1e-3)


# -- evaluate --------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [7, 512, 100000])
def test_evaluate_equals_full_pass_cross_entropy(names_data, batch_size):
    vocab, _, val_set = names_data
    model = _small_mlp(vocab.vocab_size, seed=3)  # dropout 0.1: evaluate must switch it off
    model.train()
    loss = evaluate(model, val_set, batch_size=batch_size)
    assert model.training  # restored
    model.eval()
    with torch.no_grad():
        manual = F.cross_entropy(model(val_set.X)[0].double(), val_set.Y).item()
    assert loss == pytest.approx(manual, rel=1e-5)


def test_evaluate_max_batches(names_data):
    vocab, _, val_set = names_data
    model = _small_mlp(vocab.vocab_size, seed=3).eval()
    with torch.no_grad():
        manual = F.cross_entropy(model(val_set.X[:200])[0], val_set.Y[:200]).item()
    assert evaluate(model, val_set, batch_size=100, max_batches=2) == pytest.approx(manual, rel=1e-5)


@pytest.mark.parametrize("n", [40, 41, 47])
def test_evaluate_token_stream_all_counts_every_target_once(n):
    """With a model that ignores context, the full-pass loss is the mean over tokens 1..n-1."""
    torch.manual_seed(0)
    model = PositionBigram(6)
    ids = torch.randint(0, 6, (n,), generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        logp = F.log_softmax(model.table.weight, dim=-1)  # (V, V): row = previous token
        manual = -sum(logp[ids[t - 1], ids[t]].item() for t in range(1, n)) / (n - 1)
    assert evaluate(model, TokenStream(ids, 8, targets="all"), batch_size=2) == pytest.approx(manual, rel=1e-5)


def test_evaluate_rejects_no_targets():
    class AllIgnored:
        def batches(self, batch_size):
            yield torch.zeros(2, 3, dtype=torch.long), torch.full((2, 3), IGNORE_INDEX)

    with pytest.raises(ValueError, match="no target"):
        evaluate(PositionBigram(4), AllIgnored())


# -- TrainConfig -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"max_steps": 0}, "max_steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"eval_interval": 0}, "eval_interval"),
        ({"eval_batches": -1}, "eval_batches"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"lr": 1e-3, "min_lr": 2e-3}, "min_lr"),
        ({"min_lr": -1e-5}, "min_lr"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"max_steps": 10, "warmup_steps": 10}, "warmup_steps"),
        ({"schedule": "linear"}, "schedule"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"grad_clip": 0.0}, "grad_clip"),
    ],
)
def test_train_config_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TrainConfig(**kwargs)


def test_train_config_to_dict():
    d = TrainConfig(max_steps=10, lr=1e-2).to_dict()
    assert d["max_steps"] == 10 and d["min_lr"] == pytest.approx(1e-3) and d["schedule"] == "cosine"
