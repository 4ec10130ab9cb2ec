"""The one training loop of the book, and the evaluation that goes with it.

Taught in chapter 1 (minibatch AdamW on the MLP) and extended in chapter 4 with what
real pretraining uses: linear warm-up then cosine decay of the learning rate, weight
decay on matrices only, gradient clipping and periodic held-out evaluation. Every
later chapter trains through it; what changes is the *objective*:

* an **objective** is a function ``objective(model, batch) -> (loss, metrics)``: ``loss``
  a 0-d tensor to minimise, ``metrics`` a dict of floats, means over the batch, that
  must include ``"count"`` (how many items the means are over: targets, pairs,
  messages) and may include ``"tokens"`` (tokens processed, for throughput). The
  next-token loss of chapters 1-5 is :func:`llmscratch.objectives.next_token_loss`;
  DPO's is :class:`llmscratch.dpo.DPOObjective`.
* a **dataset** has ``sample(batch_size, generator)`` (a random minibatch, the batch
  format its objective reads), ``batches(batch_size)`` (one deterministic pass) and
  ``len()``: :mod:`llmscratch.windows`, :class:`llmscratch.sft.SFTDataset`,
  :class:`llmscratch.preference_data.PreferenceDataset`.

The loop owns everything else: seeding, the thread count, the optimiser and its
parameter groups, the schedule, clipping, evaluation and progress. No other module
of the package calls ``optimizer.step()``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from .objectives import next_token_loss
from .train_result import (  # noqa: F401  (re-exported: `from llmscratch.train import TrainResult` keeps working)
    COUNT,
    TOKENS,
    TrainResult,
    _append,
)
from .validate import check_bool, check_choice, check_float, check_int, check_module, check_positive_int

PROGRESS_ENV = "LLMSCRATCH_PROGRESS"  # set to 0 to hide progress bars (the book build does)

Objective = Callable[[torch.nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]


class Dataset(Protocol):
    """What the loop needs of a dataset (see the module docstring)."""

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Any: ...

    def batches(self, batch_size: int) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


def show_progress(progress: bool | None = None) -> bool:
    """Whether to draw a progress bar: ``progress`` if given, else unless ``LLMSCRATCH_PROGRESS=0``."""
    if progress is not None:
        return check_bool("progress", progress)
    return os.environ.get(PROGRESS_ENV, "1") != "0"


@dataclass
class TrainConfig:
    """Optimisation settings.

    Attributes:
        max_steps: number of optimiser steps.
        batch_size: examples per minibatch (``B``): windows, sequences or pairs.
        lr: peak learning rate of AdamW.
        min_lr: learning rate at the end of the cosine decay (default ``lr / 10``, filled in
            at construction: ``dataclasses.replace(config, lr=...)`` keeps the old value).
        warmup_steps: steps of linear warm-up from 0 to ``lr``.
        schedule: ``"cosine"`` (warm-up, then cosine decay to ``min_lr``) or ``"constant"``.
        weight_decay: decoupled weight decay (Loshchilov & Hutter, 2019), applied only
            to parameters with two or more dimensions (weight matrices, embeddings).
        betas: AdamW's moment decay rates, each in ``[0, 1)``.
        grad_clip: clip the global gradient norm to this value (None: no clipping).
        eval_interval: evaluate every this many steps (and at step 0 and the last step).
        eval_batches: random minibatches of ``batch_size`` per estimate; None scores the
            whole held-out set (and, with ``eval_train``, the whole training set) in one
            deterministic pass instead.
        eval_train: also estimate the objective on the training set at each evaluation.
        eval_batch_size: minibatch size of deterministic passes (the final evaluation).
        seed: seeds the minibatch sampling and torch's global generator (dropout).
        num_threads: torch's thread count during the run (None: leave it as it is).

    Raises:
        TypeError: for a field of the wrong type (``batch_size=2.5``, ``lr="1e-3"``).
        ValueError: for a value out of range (non-positive counts, a non-finite or
            non-positive learning rate, ``betas`` outside ``[0, 1)``, an unknown schedule).
    """

    max_steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    min_lr: float | None = None
    warmup_steps: int = 0
    schedule: str = "cosine"
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = None
    eval_interval: int = 100
    eval_batches: int | None = 20
    eval_train: bool = True
    eval_batch_size: int = 512
    seed: int = 0
    num_threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "eval_interval", "eval_batch_size"):
            check_positive_int(name, getattr(self, name))
        if self.eval_batches is not None:
            check_positive_int("eval_batches", self.eval_batches)
        if self.num_threads is not None:
            check_positive_int("num_threads", self.num_threads)
        check_int("seed", self.seed, minimum=0)
        self.lr = check_float("lr", self.lr, minimum=0.0, min_inclusive=False)
        self.min_lr = self.lr / 10 if self.min_lr is None else check_float(
            "min_lr", self.min_lr, minimum=0.0, maximum=self.lr)
        check_int("warmup_steps", self.warmup_steps, minimum=0, maximum=self.max_steps - 1)
        check_choice("schedule", self.schedule, ("cosine", "constant"))
        self.weight_decay = check_float("weight_decay", self.weight_decay, minimum=0.0)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise TypeError(f"betas must be a pair of numbers, got {self.betas!r}")
        self.betas = tuple(check_float(f"betas[{i}]", b, minimum=0.0, maximum=1.0, max_inclusive=False)
                           for i, b in enumerate(self.betas))
        if self.grad_clip is not None:
            self.grad_clip = check_float("grad_clip", self.grad_clip, minimum=0.0, min_inclusive=False)
        check_bool("eval_train", self.eval_train)

    def to_dict(self) -> dict:
        return asdict(self)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, then cosine decay.

    .. math::
        \\eta_t = \\eta_{\\max} \\frac{t+1}{t_w} \\;(t < t_w), \\qquad
        \\eta_t = \\eta_{\\min} + \\tfrac12 (\\eta_{\\max}-\\eta_{\\min})
        \\bigl(1 + \\cos(\\pi \\tfrac{t - t_w}{t_{\\max} - t_w})\\bigr)

    (Loshchilov & Hutter, 2017, SGDR eq. 5, one cycle; warm-up as in Goyal et al., 2017).

    Raises:
        TypeError: if ``step`` is not an int or ``config`` not a TrainConfig.
        ValueError: if ``step`` is negative.
    """
    check_int("step", step, minimum=0)
    _check_config(config)
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: decay on tensors with ``ndim >= 2``, none on biases and norms.

    Weight matrices and embeddings are decayed; biases and LayerNorm gains and shifts are
    not, as in GPT-2 and nanoGPT. Only trainable parameters (``requires_grad``) are
    included, so a frozen part of the model is never touched; a tied matrix appears once.

    Raises:
        TypeError: if ``model`` is not a torch module.
        TypeError, ValueError: if ``weight_decay`` is not a finite number >= 0.
    """
    check_module("model", model)
    check_float("weight_decay", weight_decay, minimum=0.0)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _check_config(config: object) -> None:
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")


def _check_objective(objective: object) -> None:
    if not callable(objective):
        raise TypeError(f"objective must be callable as objective(model, batch), got {type(objective).__name__}")


def _check_dataset(name: str, dataset: object, *, sample: bool = True) -> None:
    needs = ("sample", "batches") if sample else ("batches",)
    missing = [m for m in needs if not callable(getattr(dataset, m, None))]
    if missing:
        raise TypeError(f"{name} must be a dataset with {' and '.join(needs)} methods "
                        f"(llmscratch.train.Dataset), got {type(dataset).__name__}")


def _check_train_args(model, objective, train_set, val_set, config, progress) -> None:
    """The argument checks of :func:`train`, before any work."""
    _check_config(config)
    check_module("model", model)
    _check_objective(objective)
    _check_dataset("train_set", train_set)
    _check_dataset("val_set", val_set)
    show_progress(progress)  # a non-bool progress raises


def _mean_metrics(model: torch.nn.Module, objective: Objective, batches: Iterable[Any]) -> dict[str, float]:
    """Count-weighted means of the loss and metrics of ``objective`` over ``batches``."""
    sums: dict[str, float] = {}
    total = 0
    for batch in batches:
        loss, metrics = objective(model, batch)
        count = metrics[COUNT]
        if count == 0:
            continue
        total += count
        for key, value in {"loss": loss.item(), **metrics}.items():
            if key not in (COUNT, TOKENS):
                sums[key] = sums.get(key, 0.0) + value * count
    if total == 0:
        raise ValueError("the dataset has no target to evaluate")
    return {**{k: v / total for k, v in sums.items()}, COUNT: total}


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset: Dataset, objective: Objective = next_token_loss, *,
             batch_size: int = 512, max_batches: int | None = None) -> dict[str, float]:
    """The objective's loss and metrics over one deterministic pass of ``dataset``.

    Every item counts once (``dataset.batches``), so for :func:`~llmscratch.objectives.next_token_loss`
    ``evaluate(model, val)["loss"]`` is the held-out mean negative log-likelihood in nats
    per token. With ``max_batches`` only the first batches are used. The model is put in
    eval mode (no dropout) and restored afterwards.

    Returns:
        ``{"loss": ..., <metrics>, "count": items scored}``, each a count-weighted mean.

    Raises:
        TypeError: for a model that is not a torch module, a dataset without ``batches``,
            an objective that is not callable, or non-int counts.
        ValueError: if the pass holds no target, or ``batch_size`` / ``max_batches`` < 1.
    """
    check_module("model", model)
    _check_dataset("dataset", dataset, sample=False)
    _check_objective(objective)
    check_positive_int("batch_size", batch_size)
    if max_batches is not None:
        check_positive_int("max_batches", max_batches)
    was_training = model.training
    model.eval()
    try:
        batches = dataset.batches(batch_size)
        if max_batches is not None:
            batches = (b for i, b in zip(range(max_batches), batches))
        return _mean_metrics(model, objective, batches)
    finally:
        model.train(was_training)


def train(model: torch.nn.Module, objective: Objective, train_set: Dataset,
          val_set: Dataset, config: TrainConfig, *,
          progress: bool | None = None) -> TrainResult:
    """Minimise ``objective`` over ``train_set`` with AdamW, updating ``model`` in
    place.

    Each step draws a minibatch (``train_set.sample``), computes the objective, and
    takes an AdamW step (parameter groups of :func:`param_groups`, learning rate of
    :func:`learning_rate`, gradient norm clipped to ``grad_clip``). At step 0, every
    ``eval_interval`` steps and after the last, the objective is estimated in eval mode
    on held-out data (and on training data, if ``eval_train``): on ``eval_batches``
    minibatches drawn with a generator seeded ``seed + 1`` afresh each time, or on the
    whole held-out set if ``eval_batches`` is None. After training the held-out set is
    scored once more, whole. ``config.seed`` seeds the minibatch sampler and torch's
    global generator (dropout), so the same seed and the same initial weights give the
    same losses on the same machine.

    Args:
        model: the model to train (only parameters with ``requires_grad`` are updated).
        objective: ``objective(model, batch) -> (loss, metrics)`` (module docstring).
        train_set, val_set: datasets whose batches ``objective`` reads.
        config: a :class:`TrainConfig`.
        progress: show a tqdm bar (default: see :func:`show_progress`).

    Returns:
        A :class:`~llmscratch.train_result.TrainResult`; the model is left in eval mode.

    Raises:
        TypeError: if ``config`` is not a TrainConfig, ``model`` not a torch module,
            ``objective`` not callable, a dataset lacks ``sample``/``batches``, or
            ``progress`` is neither None nor a bool.
        ValueError: if the model has no trainable parameter.
        FloatingPointError: if the loss becomes NaN or infinite; the update that would
            have used it is not made, and nothing is returned, so nothing is cached.
    """
    _check_train_args(model, objective, train_set, val_set, config, progress)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("model has no trainable parameter (requires_grad) to optimise")
    with torch_threads(config.num_threads):
        torch.manual_seed(config.seed)
        batch_gen = torch.Generator().manual_seed(config.seed)
        optimizer = torch.optim.AdamW(
            param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas
        )
        result = TrainResult()
        _evaluate_now(model, objective, train_set, val_set, config, result, step=0)
        tokens, start = 0, time.perf_counter()
        bar = tqdm(
            range(config.max_steps), disable=not show_progress(progress), desc="train",
            leave=False,
        )
        for step in bar:
            lr = learning_rate(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, metrics = objective(
                model, train_set.sample(config.batch_size, batch_gen)
            )
            loss_value = loss.item()
            # stop before the update: the weights stay as they were
            if not math.isfinite(loss_value):
                raise FloatingPointError(
                    f"the training loss is {loss_value} at step {step}: lower lr "
                    f"(now {lr:g}) or check the data; the run is not kept"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
            optimizer.step()
            tokens += metrics.get(TOKENS, 0)
            _append(result.batch, {"loss": loss_value, **metrics})
            result.lr.append(lr)
            if (step + 1) % config.eval_interval == 0 or step + 1 == config.max_steps:
                _evaluate_now(
                    model, objective, train_set, val_set, config, result, step=step + 1
                )
                bar.set_postfix(val=f"{result.val_loss[-1]:.3f}")
        result.train_seconds = time.perf_counter() - start
        result.tokens_per_second = tokens / result.train_seconds
        model.eval()
        result.final_val = evaluate(
            model, val_set, objective, batch_size=config.eval_batch_size
        )
    return result


@contextmanager
def torch_threads(num_threads: int | None):
    """Run the block with torch on ``num_threads`` threads (None: unchanged), then restore the count.

    Raises:
        TypeError, ValueError: if ``num_threads`` is not None or an int >= 1.
    """
    if num_threads is not None:
        check_positive_int("num_threads", num_threads)
    old = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@torch.no_grad()
def _evaluate_now(model, objective, train_set, val_set, config: TrainConfig, result: TrainResult,
                  *, step: int) -> None:
    """The periodic evaluation of :func:`train`: append estimates after ``step`` updates to ``result``."""
    model.eval()
    eval_gen = torch.Generator().manual_seed(config.seed + 1)

    def estimate(dataset: Dataset) -> dict[str, float]:
        if config.eval_batches is None:
            return _mean_metrics(model, objective, dataset.batches(config.eval_batch_size))
        draws = (dataset.sample(config.batch_size, eval_gen) for _ in range(config.eval_batches))
        return _mean_metrics(model, objective, draws)

    result.steps.append(step)
    if config.eval_train:
        _append(result.train, estimate(train_set))
    _append(result.val, estimate(val_set))
    model.train()
