"""One training loop and one evaluation for every model in the book.

Taught in chapter 1 (minibatch AdamW on the MLP) and extended in chapter 4 with what
real pretraining uses: linear warm-up then cosine decay of the learning rate, weight
decay on matrices only, gradient clipping and periodic held-out evaluation.

The loop relies only on the interface shared by all models,
``model(idx, targets) -> (logits, loss)``, and on the dataset interface of
:mod:`llmscratch.windows` (``sample``, ``batches``, ``num_targets``).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .windows import IGNORE_INDEX

PROGRESS_ENV = "LLMSCRATCH_PROGRESS"  # set to 0 to hide progress bars (the book build does)


def show_progress(progress: bool | None = None) -> bool:
    """Whether to draw a progress bar: ``progress`` if given, else unless ``LLMSCRATCH_PROGRESS=0``."""
    if progress is not None:
        return progress
    return os.environ.get(PROGRESS_ENV, "1") != "0"


@dataclass
class TrainConfig:
    """Optimisation settings.

    Attributes:
        max_steps: number of optimiser steps.
        batch_size: examples per minibatch (``B``).
        lr: peak learning rate of AdamW.
        min_lr: learning rate at the end of the cosine decay (default ``lr / 10``).
        warmup_steps: steps of linear warm-up from 0 to ``lr``.
        schedule: ``"cosine"`` (warm-up, then cosine decay to ``min_lr``) or ``"constant"``.
        weight_decay: decoupled weight decay (Loshchilov & Hutter, 2019), applied only
            to parameters with two or more dimensions (weight matrices, embeddings).
        betas: AdamW's moment decay rates.
        grad_clip: clip the global gradient norm to this value (None: no clipping).
        eval_interval: estimate train and held-out loss every this many steps.
        eval_batches: minibatches per estimate (the final evaluation uses all held-out data).
        seed: seeds the minibatch sampling and dropout.

    Raises:
        ValueError: for a non-positive step count, batch size, learning rate or interval,
            a negative warm-up or weight decay, or an unknown schedule.
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
    eval_batches: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "eval_interval", "eval_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.min_lr is None:
            self.min_lr = self.lr / 10
        if not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"min_lr must be in [0, lr={self.lr}], got {self.min_lr}")
        if not 0 <= self.warmup_steps < self.max_steps:
            raise ValueError(f"warmup_steps must be in [0, max_steps), got {self.warmup_steps}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")

    def to_dict(self) -> dict:
        return asdict(self)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, then cosine decay.

    .. math::
        \\eta_t = \\eta_{\\max} \\frac{t+1}{t_w} \\;(t < t_w), \\qquad
        \\eta_t = \\eta_{\\min} + \\tfrac12 (\\eta_{\\max}-\\eta_{\\min})
        \\bigl(1 + \\cos(\\pi \\tfrac{t - t_w}{t_{\\max} - t_w})\\bigr)

    (Loshchilov & Hutter, 2017, SGDR eq. 5, one cycle; warm-up as in Goyal et al., 2017).
    """
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: decay on tensors with ``ndim >= 2``, none on biases and norms.

    Weight matrices and embeddings are decayed; biases and LayerNorm gains and shifts are
    not, as in GPT-2 and nanoGPT. A tied matrix appears once.

    Raises:
        ValueError: if ``weight_decay`` is negative.
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _nll_sum(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
    logits, _ = model(x)
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum")
    return total.item(), int((y != IGNORE_INDEX).sum())


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset, *, batch_size: int = 512, max_batches: int | None = None) -> float:
    """Mean negative log-likelihood of ``dataset``'s targets, in nats per token.

    Runs one deterministic pass (``dataset.batches``), every target counted once; with
    ``max_batches`` only the first batches are used. The model is put in eval mode
    (no dropout) and restored afterwards.

    Raises:
        ValueError: if the pass holds no target.
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for i, (x, y) in enumerate(dataset.batches(batch_size)):
            if max_batches is not None and i >= max_batches:
                break
            s, n = _nll_sum(model, x, y)
            total, count = total + s, count + n
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("the dataset has no target to evaluate")
    return total / count


@torch.no_grad()
def _estimate(model, dataset, config: TrainConfig, generator: torch.Generator) -> float:
    """Loss on ``eval_batches`` random minibatches drawn with a fixed generator."""
    total, count = 0.0, 0
    for _ in range(config.eval_batches):
        s, n = _nll_sum(model, *dataset.sample(config.batch_size, generator))
        total, count = total + s, count + n
    return total / count


@dataclass
class TrainResult:
    """What :func:`train` measured.

    Attributes:
        steps: the steps at which losses were estimated.
        train_loss, val_loss: estimated losses at those steps (nats per token, eval mode).
        batch_loss: the training minibatch loss at every step (dropout on).
        lr: the learning rate at every step.
        final_val_loss: held-out loss over the whole validation set, nats per token.
        train_seconds: wall-clock time of the optimisation (estimates included).
        tokens_per_second: target tokens processed per second of training.
    """

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    final_val_loss: float = float("nan")
    train_seconds: float = 0.0
    tokens_per_second: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainResult":
        return cls(**d)


def train(model: torch.nn.Module, train_set, val_set, config: TrainConfig, *, progress: bool | None = None) -> TrainResult:
    """Minimise the model's cross-entropy on ``train_set`` with AdamW.

    Every ``eval_interval`` steps (and after the last) the train and held-out losses
    are estimated on fixed random minibatches; at the end the held-out loss is computed
    on all of ``val_set``. Seeding: ``config.seed`` seeds the minibatch sampler and
    torch's global generator (dropout), so the same seed and the same initial weights
    give the same losses on the same machine.

    Args:
        model: any model of the book (``model(idx, targets) -> (logits, loss)``).
        train_set, val_set: datasets from :mod:`llmscratch.windows`.
        config: a :class:`TrainConfig`.
        progress: show a tqdm bar (default: see :func:`show_progress`).

    Returns:
        A :class:`TrainResult`.
    """
    torch.manual_seed(config.seed)
    batch_gen = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas)
    result = TrainResult()
    model.train()
    tokens = 0
    start = time.perf_counter()
    bar = tqdm(range(config.max_steps), disable=not show_progress(progress), desc="train", leave=False)
    for step in bar:
        lr = learning_rate(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = train_set.sample(config.batch_size, batch_gen)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        tokens += y.numel()
        result.batch_loss.append(loss.item())
        result.lr.append(lr)
        if (step + 1) % config.eval_interval == 0 or step + 1 == config.max_steps:
            model.eval()
            eval_gen = torch.Generator().manual_seed(config.seed + 1)
            result.steps.append(step + 1)
            result.train_loss.append(_estimate(model, train_set, config, eval_gen))
            result.val_loss.append(_estimate(model, val_set, config, eval_gen))
            model.train()
            bar.set_postfix(train=f"{result.train_loss[-1]:.3f}", val=f"{result.val_loss[-1]:.3f}")
    result.train_seconds = time.perf_counter() - start
    result.tokens_per_second = tokens / result.train_seconds
    model.eval()
    result.final_val_loss = evaluate(model, val_set)
    return result
