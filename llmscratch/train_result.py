"""What a training run measured: the loss and metrics at every evaluation, step and the end.

Taught in chapter 1 with the training loop (:func:`llmscratch.train.train` returns a
:class:`TrainResult`) and read back from every cached run from chapter 4 on
(:meth:`TrainResult.from_dict`). Its names are the same for every objective: ``"loss"``
and the objective's metrics, less the bookkeeping keys :data:`COUNT` and :data:`TOKENS`.
Re-exported by :mod:`llmscratch.train`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

COUNT, TOKENS = "count", "tokens"  # bookkeeping keys of an objective's metrics


@dataclass
class TrainResult:
    """What :func:`~llmscratch.train.train` measured, with the same names for every objective.

    Attributes:
        steps: the steps at which the model was evaluated (0 is before any update).
        train, val: at those steps, each metric of the objective (``"loss"`` first)
            estimated on the training and held-out data (eval mode): ``val["loss"][i]``
            is the held-out loss after ``steps[i]`` updates. ``train`` is empty when
            ``eval_train`` is off.
        batch: each metric on the training minibatch of every step (train mode).
        lr: the learning rate at every step.
        final_val: the objective's metrics over the whole held-out set after training.
        train_seconds: wall-clock time of the optimisation (estimates included).
        tokens_per_second: tokens processed per second of training (the objective's
            ``"tokens"``; 0 if it reports none).
    """

    steps: list[int] = field(default_factory=list)
    train: dict[str, list[float]] = field(default_factory=dict)
    val: dict[str, list[float]] = field(default_factory=dict)
    batch: dict[str, list[float]] = field(default_factory=dict)
    lr: list[float] = field(default_factory=list)
    final_val: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    tokens_per_second: float = 0.0

    @property
    def train_loss(self) -> list[float]:
        return self.train.get("loss", [])

    @property
    def val_loss(self) -> list[float]:
        return self.val["loss"]

    @property
    def batch_loss(self) -> list[float]:
        return self.batch["loss"]

    @property
    def final_val_loss(self) -> float:
        return self.final_val["loss"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainResult:
        """Inverse of :meth:`to_dict`; other keys of ``d`` (a recipe's extra measurements) are ignored.

        Raises:
            TypeError: if ``d`` is not a mapping.
            ValueError: naming the fields ``d`` lacks.
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"d must be a dict from TrainResult.to_dict, got {type(d).__name__}")
        missing = [f.name for f in fields(cls) if f.name not in d]
        if missing:
            raise ValueError(f"d lacks the TrainResult fields {missing}")
        return cls(**{f.name: d[f.name] for f in fields(cls)})


def _append(series: dict[str, list[float]], metrics: dict[str, float]) -> None:
    for key, value in metrics.items():
        if key not in (COUNT, TOKENS):
            series.setdefault(key, []).append(value)
