"""Tests for llmscratch.train: schedule, parameter groups, evaluation and the one training loop."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llmscratch.bigram import BigramConfig, BigramLM
from llmscratch.checkpoint import train_or_load
from llmscratch.data import load_indian_names
from llmscratch.lm import IGNORE_INDEX
from llmscratch.mlp import MLPConfig, MLPLanguageModel
from llmscratch.objectives import next_token_loss
from llmscratch.train import TrainConfig, TrainResult, evaluate, learning_rate, param_groups, train
from llmscratch.vocab import CharVocab
from llmscratch.windows import TokenStream, WindowDataset, name_windows, split_by_name


@pytest.fixture(scope="module")
def names_data(mirror_dir, tmp_path_factory):
    """Train and validation windows (block_size 3) over the Indian names, split by name."""
    names, _ = load_indian_names(mirror=mirror_dir, cache_dir=tmp_path_factory.mktemp("cache"))
    vocab = CharVocab.from_text(names, boundary=".")
    train_names, val_names, _ = split_by_name(names, seed=0)
    train_set = WindowDataset(*name_windows([vocab.encode(n) for n in train_names], 3))
    val_set = WindowDataset(*name_windows([vocab.encode(n) for n in val_names], 3))
    return vocab, train_set, val_set


def _small_mlp(vocab_size: int, seed: int = 0, dropout: float = 0.1) -> MLPLanguageModel:
    torch.manual_seed(seed)
    return MLPLanguageModel(MLPConfig(vocab_size=vocab_size, block_size=3, n_hidden=64, dropout=dropout))


SMALL = dict(max_steps=80, batch_size=32, lr=1e-2, warmup_steps=5, eval_interval=40, eval_batches=2,
             weight_decay=0.01, grad_clip=1.0)


@pytest.fixture(scope="module")
def two_runs(names_data):
    """Two trainings with the same seed and initial weights, and one with another seed."""
    vocab, train_set, val_set = names_data
    runs = []
    for i, seed in enumerate((0, 0, 1)):
        model = _small_mlp(vocab.vocab_size)
        torch.rand(10 + i)  # move torch's global generator on: train() must seed dropout itself
        runs.append(train(model, next_token_loss, train_set, val_set, TrainConfig(**SMALL, seed=seed),
                          progress=False))
    return runs


def _ce(model: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> float:
    """Mean cross-entropy of a window model over all of (X, Y), in float64, eval mode."""
    was = model.training
    model.eval()
    with torch.no_grad():
        out = F.cross_entropy(model(X)[0].double(), Y).item()
    model.train(was)
    return out


# -- train: determinism, progress, records ------------------------------------------------


def test_train_same_seed_gives_identical_losses(two_runs):
    a, b, other = two_runs
    assert a.batch_loss == b.batch_loss
    assert a.train_loss == b.train_loss and a.val_loss == b.val_loss
    assert a.final_val == b.final_val
    assert other.batch_loss != a.batch_loss  # another seed draws other minibatches (and dropout masks)


def test_train_seed_chooses_the_minibatches(names_data):
    """Without dropout, only the minibatch sampler depends on the seed."""
    vocab, train_set, val_set = names_data
    first_losses = []
    for seed in (0, 0, 1):
        model = _small_mlp(vocab.vocab_size, dropout=0.0)
        cfg = TrainConfig(max_steps=2, batch_size=32, eval_batches=1, seed=seed)
        result = train(model, next_token_loss, train_set, val_set, cfg, progress=False)
        assert result.steps == [0, 2]  # before any update, and the last step
        first_losses.append(result.batch_loss[0])
    assert first_losses[0] == first_losses[1] != first_losses[2]


def test_train_loss_goes_down(two_runs, names_data):
    vocab = names_data[0]
    result = two_runs[0]
    uniform = math.log(vocab.vocab_size)  # 3.30 nats: the loss of a uniform guess
    assert abs(result.batch_loss[0] - uniform) < 0.1
    assert abs(result.val_loss[0] - uniform) < 0.1  # step 0: the model before any update
    first, last = sum(result.batch_loss[:10]) / 10, sum(result.batch_loss[-10:]) / 10
    assert last < first - 0.4
    assert result.final_val_loss < uniform - 0.4
    assert result.val_loss[-1] < uniform - 0.4


def test_train_result_records(two_runs, names_data):
    _, _, val_set = names_data
    result = two_runs[0]
    cfg = TrainConfig(**SMALL)
    assert len(result.batch_loss) == len(result.lr) == cfg.max_steps
    assert result.lr == [learning_rate(s, cfg) for s in range(cfg.max_steps)]
    assert result.steps == [0, 40, 80]
    assert len(result.train_loss) == len(result.val_loss) == 3
    assert set(result.batch) == set(result.val) == set(result.train) == {"loss"}  # count/tokens are bookkeeping
    assert result.final_val["count"] == val_set.num_targets  # the whole held-out set, each target once
    assert all(math.isfinite(x) for x in result.batch_loss)
    # next_token_loss reports y.numel() tokens: 32 targets a step for a window model
    assert result.train_seconds > 0
    assert result.tokens_per_second == pytest.approx(cfg.max_steps * cfg.batch_size / result.train_seconds)


def test_train_result_round_trip_ignores_extra_keys(two_runs):
    result = two_runs[0]
    d = json.loads(json.dumps(result.to_dict()))
    assert TrainResult.from_dict(d) == result
    assert TrainResult.from_dict({**d, "n_params": 123, "drift": {"x": 1}}) == result
    assert result.final_val_loss == d["final_val"]["loss"] and result.val_loss == d["val"]["loss"]
    assert TrainResult().train_loss == []  # no estimate on training data


def test_evaluation_points_and_whole_set_estimates(names_data):
    """eval_batches=None scores the whole held-out set: step 0 is the untrained model's exact loss."""
    vocab, train_set, val_set = names_data
    model = _small_mlp(vocab.vocab_size, seed=4, dropout=0.0)
    before = _ce(model, val_set.X, val_set.Y)
    cfg = TrainConfig(max_steps=5, batch_size=16, lr=1e-2, eval_interval=2, eval_batches=None, eval_train=False,
                      eval_batch_size=1000)
    result = train(model, next_token_loss, train_set, val_set, cfg, progress=False)
    assert result.steps == [0, 2, 4, 5]
    assert result.train == {} and result.train_loss == []  # eval_train=False
    assert result.val_loss[0] == pytest.approx(before, rel=1e-5)
    after = _ce(model, val_set.X, val_set.Y)
    assert result.val_loss[-1] == pytest.approx(after, rel=1e-5)
    assert result.final_val_loss == pytest.approx(after, rel=1e-5)
    assert not model.training  # left in eval mode


class PositionBigram(nn.Module):
    """A bigram model with the sequence interface: logits ``(B, T, V)`` at every position."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx, targets=None):
        logits = self.table(idx)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
        return logits, loss


def _table_nll(model: PositionBigram, ids: torch.Tensor) -> float:
    """Mean -log p(ids[t] | ids[t-1]) over t = 1..n-1, read off the table with a Python loop."""
    with torch.no_grad():
        logp = F.log_softmax(model.table.weight.double(), dim=-1)  # (V, V): row = previous token
    n = len(ids)
    return -sum(logp[ids[t - 1], ids[t]].item() for t in range(1, n)) / (n - 1)


def test_train_on_token_stream_all_targets():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 5, (400,), generator=g) * 2  # even ids only ...
    ids[1::2] = ids[::2] + 1  # ... each followed by its successor: half the text is predictable
    train_set = TokenStream(ids[:300], 8, targets="all")
    val_set = TokenStream(ids[300:], 8, targets="all")
    torch.manual_seed(0)
    model = PositionBigram(10)
    before = _table_nll(model, ids[300:])
    result = train(model, next_token_loss, train_set, val_set,
                   TrainConfig(max_steps=60, batch_size=8, lr=0.1, eval_interval=30), progress=False)
    assert result.final_val_loss < before - 0.5
    assert result.final_val_loss == pytest.approx(_table_nll(model, ids[300:]), rel=1e-5)
    assert result.final_val["count"] == 99  # tokens 1..99 of the 100 held-out ones


# -- train: gradient clipping ------------------------------------------------------------


def _scaled(objective, factor):
    def wrapped(model, batch):
        loss, metrics = objective(model, batch)
        return loss * factor, metrics
    return wrapped


def _grads(model: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


def _norm(grads) -> float:
    return math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))


def test_grad_clip_bounds_the_gradient_the_optimiser_sees(names_data):
    """One step on a loss scaled by 1e6: the gradients left after ``train`` are the clipped ones.

    ``zero_grad`` comes before ``backward``, so after the last step ``p.grad`` holds the
    gradient that step used. The reference gradient is computed independently on the
    same first minibatch (drawn by a generator seeded with ``seed``).
    """
    vocab, train_set, val_set = names_data
    init = _small_mlp(vocab.vocab_size, dropout=0.0)
    objective = _scaled(next_token_loss, 1e6)

    reference = copy.deepcopy(init)
    batch = train_set.sample(32, torch.Generator().manual_seed(0))
    objective(reference, batch)[0].backward()
    manual = _grads(reference)
    manual_norm = _norm(manual)
    assert manual_norm > 1e4

    runs = {}
    for clip in (None, 0.5):
        model = copy.deepcopy(init)
        cfg = TrainConfig(max_steps=1, batch_size=32, lr=1e-3, grad_clip=clip, eval_batches=1, eval_train=False)
        train(model, objective, train_set, val_set, cfg, progress=False)
        runs[clip] = _grads(model)
    for got, want in zip(runs[None], manual):  # no clipping: the raw gradient of that minibatch
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-2)
    assert _norm(runs[0.5]) <= 0.5 + 1e-6
    assert _norm(runs[0.5]) == pytest.approx(0.5, rel=1e-4)
    for got, want in zip(runs[0.5], manual):  # same direction, rescaled to norm 0.5
        torch.testing.assert_close(got, want * (0.5 / manual_norm), rtol=1e-4, atol=1e-9)


def test_grad_clip_leaves_small_gradients_alone(names_data):
    vocab, train_set, val_set = names_data
    init = _small_mlp(vocab.vocab_size, dropout=0.0)
    grads = {}
    for clip in (None, 1e6):
        model = copy.deepcopy(init)
        cfg = TrainConfig(max_steps=1, batch_size=32, grad_clip=clip, eval_batches=1, eval_train=False)
        train(model, next_token_loss, train_set, val_set, cfg, progress=False)
        grads[clip] = _grads(model)
    assert all(torch.equal(a, b) for a, b in zip(grads[None], grads[1e6]))


# -- train: failures -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_loss_raises_and_nothing_is_cached(names_data, tmp_path, bad):
    vocab, train_set, val_set = names_data

    def fit(model):
        cfg = TrainConfig(max_steps=3, batch_size=8, eval_batches=1, num_threads=1)
        return train(model, _scaled(next_token_loss, bad), train_set, val_set, cfg, progress=False).to_dict()

    with pytest.raises(FloatingPointError, match="training loss"):
        train_or_load("diverges", _small_mlp(vocab.vocab_size), fit, {"bad": str(bad)}, cache_dir=tmp_path)
    # no entry, no half-written folder (the checkpoint cache's sibling lock file may stay)
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
    assert torch.get_num_threads() == 1  # the thread count is restored on the way out


def test_a_non_finite_loss_leaves_the_weights_as_they_were(names_data):
    vocab, train_set, val_set = names_data
    model = _small_mlp(vocab.vocab_size)
    before = copy.deepcopy(model.state_dict())
    cfg = TrainConfig(max_steps=3, batch_size=8, eval_batches=1, num_threads=1)
    with pytest.raises(FloatingPointError):
        train(model, _scaled(next_token_loss, math.nan), train_set, val_set, cfg, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_num_threads_is_set_during_the_run_and_restored(names_data):
    vocab, train_set, val_set = names_data
    seen = []

    def objective(model, batch):
        seen.append(torch.get_num_threads())
        return next_token_loss(model, batch)

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = TrainConfig(max_steps=2, batch_size=8, eval_batches=1, num_threads=2)
        train(_small_mlp(vocab.vocab_size), objective, train_set, val_set, cfg, progress=False)
        assert set(seen) == {2} and torch.get_num_threads() == 1
        seen.clear()
        train(_small_mlp(vocab.vocab_size), objective, train_set, val_set,
              TrainConfig(max_steps=2, batch_size=8, eval_batches=1), progress=False)
        assert set(seen) == {1}  # None leaves the thread count alone
    finally:
        torch.set_num_threads(old)


def test_train_refuses_bad_arguments(names_data):
    vocab, train_set, val_set = names_data
    model = _small_mlp(vocab.vocab_size)
    with pytest.raises(TypeError, match="TrainConfig"):
        train(model, next_token_loss, train_set, val_set, {"max_steps": 1})
    with pytest.raises(TypeError, match="torch.nn.Module"):
        train(lambda x: x, next_token_loss, train_set, val_set, TrainConfig(max_steps=1))
    with pytest.raises(ValueError, match="trainable"):  # the bigram table counts, it has no parameter
        train(BigramLM(BigramConfig(vocab.vocab_size)), next_token_loss, train_set, val_set, TrainConfig(max_steps=1))


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


def test_weight_decay_applies_to_matrices_only(names_data):
    """After training with an lr so small that the gradient step is negligible, a decayed
    matrix has shrunk by about lr * weight_decay, a bias has not moved by decay."""
    vocab, train_set, val_set = names_data
    model = _small_mlp(vocab.vocab_size, dropout=0.0)
    with torch.no_grad():
        model.hidden.bias.fill_(1.0)
    before = copy.deepcopy(model)
    # Adam's update is ~lr per parameter whatever the gradient; decay adds lr * wd * w.
    cfg = TrainConfig(max_steps=1, batch_size=8, lr=1e-3, weight_decay=100.0, eval_batches=1, eval_train=False)
    train(model, next_token_loss, train_set, val_set, cfg, progress=False)
    for name in ("wte.weight", "hidden.weight", "lm_head.weight"):
        w0, w1 = before.get_parameter(name), model.get_parameter(name)
        # decoupled decay: w <- w * (1 - lr * wd) before the Adam step (|Adam step| <= ~lr)
        assert torch.allclose(w1, w0 * (1 - 1e-3 * 100.0), atol=1.01e-3), name
    bias_change = (model.hidden.bias - before.hidden.bias).abs().max().item()
    assert bias_change <= 1.01e-3  # only the Adam step (a 10% decay would move it by 0.1)


# -- evaluate --------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [7, 512, 100000])
def test_evaluate_equals_full_pass_cross_entropy(names_data, batch_size):
    vocab, _, val_set = names_data
    model = _small_mlp(vocab.vocab_size, seed=3)  # dropout 0.1: evaluate must switch it off
    model.train()
    out = evaluate(model, val_set, batch_size=batch_size)
    assert model.training  # restored
    assert out["count"] == len(val_set)
    assert out["loss"] == pytest.approx(_ce(model, val_set.X, val_set.Y), rel=1e-5)


def test_evaluate_max_batches(names_data):
    vocab, _, val_set = names_data
    model = _small_mlp(vocab.vocab_size, seed=3).eval()
    manual = _ce(model, val_set.X[:200], val_set.Y[:200])
    out = evaluate(model, val_set, batch_size=100, max_batches=2)
    assert out["loss"] == pytest.approx(manual, rel=1e-5) and out["count"] == 200


@pytest.mark.parametrize("n", [40, 41, 47])
def test_evaluate_token_stream_all_counts_every_target_once(n):
    """With a model that ignores context, the full-pass loss is the mean over tokens 1..n-1."""
    torch.manual_seed(0)
    model = PositionBigram(6)
    ids = torch.randint(0, 6, (n,), generator=torch.Generator().manual_seed(n))
    out = evaluate(model, TokenStream(ids, 8, targets="all"), batch_size=2)
    assert out["loss"] == pytest.approx(_table_nll(model, ids), rel=1e-5)
    assert out["count"] == n - 1


class _FixedBatches:
    """A dataset whose batches are given as (loss, count, accuracy) triples."""

    def __init__(self, triples):
        self.triples = triples

    def batches(self, batch_size):
        yield from self.triples


def _fixed_objective(model, batch):
    loss, count, accuracy = batch
    return torch.tensor(loss), {"count": count, "accuracy": accuracy, "tokens": 99}


def test_evaluate_weights_each_batch_by_its_count():
    data = _FixedBatches([(1.0, 1, 0.0), (2.0, 3, 1.0), (5.0, 0, 0.5)])  # a batch with no target is skipped
    out = evaluate(nn.Linear(1, 1), data, _fixed_objective)
    assert out == {"loss": pytest.approx((1.0 + 3 * 2.0) / 4), "accuracy": pytest.approx(0.75), "count": 4}


def test_evaluate_rejects_no_targets_and_bad_sizes():
    class AllIgnored:
        def batches(self, batch_size):
            yield torch.zeros(2, 3, dtype=torch.long), torch.full((2, 3), IGNORE_INDEX)

    with pytest.raises(ValueError, match="no target"):
        evaluate(PositionBigram(4), AllIgnored())
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(PositionBigram(4), AllIgnored(), batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        evaluate(PositionBigram(4), AllIgnored(), batch_size=2.5)
    with pytest.raises(ValueError, match="max_batches"):
        evaluate(PositionBigram(4), AllIgnored(), max_batches=0)


# -- TrainConfig -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"max_steps": 0}, "max_steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"eval_interval": 0}, "eval_interval"),
        ({"eval_batches": -1}, "eval_batches"),
        ({"eval_batches": 0}, "eval_batches"),
        ({"eval_batch_size": 0}, "eval_batch_size"),
        ({"num_threads": 0}, "num_threads"),
        ({"seed": -1}, "seed"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"lr": math.inf}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"lr": 1e-3, "min_lr": 2e-3}, "min_lr"),
        ({"min_lr": -1e-5}, "min_lr"),
        ({"min_lr": math.nan}, "min_lr"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"max_steps": 10, "warmup_steps": 10}, "warmup_steps"),
        ({"schedule": "linear"}, "schedule"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"weight_decay": math.nan}, "weight_decay"),
        ({"betas": (1.5, 0.9)}, r"betas\[0\]"),
        ({"betas": (0.9, 1.0)}, r"betas\[1\]"),
        ({"betas": (0.9, -0.1)}, r"betas\[1\]"),
        ({"grad_clip": 0.0}, "grad_clip"),
        ({"grad_clip": math.inf}, "grad_clip"),
    ],
)
def test_train_config_value_errors(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TrainConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"batch_size": 2.5}, "batch_size"),
        ({"max_steps": 10.0}, "max_steps"),
        ({"max_steps": True}, "max_steps"),
        ({"eval_batches": 1.5}, "eval_batches"),
        ({"num_threads": 2.0}, "num_threads"),
        ({"lr": "1e-3"}, "lr"),
        ({"lr": True}, "lr"),
        ({"weight_decay": None}, "weight_decay"),
        ({"betas": (0.9,)}, "betas"),
        ({"betas": 0.9}, "betas"),
        ({"betas": (0.9, "0.99")}, r"betas\[1\]"),
        ({"grad_clip": "1"}, "grad_clip"),
        ({"eval_train": 1}, "eval_train"),
    ],
)
def test_train_config_type_errors(kwargs, name):
    with pytest.raises(TypeError, match=name):
        TrainConfig(**kwargs)


def test_train_config_to_dict_round_trips_through_json():
    cfg = TrainConfig(max_steps=10, lr=1e-2, betas=[0.8, 0.95], grad_clip=1, eval_batches=None, num_threads=1)
    d = cfg.to_dict()
    assert d["max_steps"] == 10 and d["min_lr"] == pytest.approx(1e-3) and d["schedule"] == "cosine"
    assert cfg.betas == (0.8, 0.95) and cfg.grad_clip == 1.0 and isinstance(cfg.grad_clip, float)
    assert TrainConfig(**json.loads(json.dumps(d))) == cfg
