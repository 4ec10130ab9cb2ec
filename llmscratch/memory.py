"""What one training step holds in memory: weights, gradients, optimiser state, activations.

Taught in chapter 8 (section "Rank, layers and accuracy"), where what LoRA saves is
measured instead of assumed. A training step keeps four kinds of tensors alive:

* the **weights**, every parameter, trained or frozen;
* one **gradient** per trainable parameter, of the parameter's size;
* the **optimiser state**: AdamW keeps two moment estimates, ``exp_avg`` and
  ``exp_avg_sq``, of each trainable parameter's size (Loshchilov and Hutter 2019,
  Algorithm 2; Kingma and Ba 2015, Algorithm 1);
* the **activations saved for the backward pass**: the tensors autograd stores in the
  forward pass because a derivative needs them (a linear layer's input, for the
  gradient of its weight; a nonlinearity's input, for its own derivative). Which are
  saved depends on what is trained: a frozen linear layer whose input needs no
  gradient of the weight keeps only the weight, which is stored anyway.

:func:`training_memory` measures the gradients and the saved activations by running
one forward and backward pass on a copy of the model, and counts the optimiser state
from the trainable parameters (it is allocated at the first ``optimizer.step()``, which
only the training loop calls; the tests compare the count with a real AdamW's state).
Temporary buffers that live only inside one operation are not counted.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
from torch import nn

from .validate import check_module


@dataclass(frozen=True)
class StepMemory:
    """Bytes held by one training step (see the module docstring for each field).

    Attributes:
        weights: every parameter.
        gradients: the gradients left by one backward pass.
        adam_state: AdamW's two moment estimates of every trainable parameter.
        saved_activations: the tensors autograd saved for the backward pass, each
            storage counted once, the parameters' own storages excluded.
    """

    weights: int
    gradients: int
    adam_state: int
    saved_activations: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.adam_state + self.saved_activations

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def training_memory(model: nn.Module, objective: Callable[[nn.Module, Any], tuple[torch.Tensor, dict]],
                    batch: Any) -> StepMemory:
    """Measure what one training step of ``model`` on ``batch`` holds, in bytes.

    Runs ``objective(copy, batch)`` and ``loss.backward()`` on a deep copy of ``model``
    in training mode (``model`` itself, its gradients and its mode are not touched), with
    :func:`torch.autograd.graph.saved_tensors_hooks` recording every tensor the forward
    pass saves for the backward.

    Args:
        model: the model, with ``requires_grad`` set on the parameters to train.
        objective: ``objective(model, batch) -> (loss, metrics)``, as for
            :func:`llmscratch.train.train`.
        batch: one minibatch in the objective's format.

    Returns:
        a :class:`StepMemory`.

    Raises:
        TypeError: if ``model`` is not a torch module or ``objective`` is not callable.
        ValueError: if no parameter of ``model`` requires a gradient.
    """
    check_module("model", model)
    if not callable(objective):
        raise TypeError(f"objective must be callable, got {type(objective).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("model has no trainable parameter (requires_grad=True): nothing to train")
    work = copy.deepcopy(model).train()
    for p in work.parameters():
        p.grad = None
    params = list(work.parameters())
    own = {p.untyped_storage().data_ptr() for p in params}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in own:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, _ = objective(work, batch)
    loss.backward()
    trainable = [p for p in params if p.requires_grad]
    return StepMemory(weights=_nbytes(params),
                      gradients=_nbytes(p.grad for p in params if p.grad is not None),
                      adam_state=2 * _nbytes(trainable),
                      saved_activations=sum(saved.values()))
