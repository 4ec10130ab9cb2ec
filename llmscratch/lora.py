"""LoRA: fine-tune a frozen model through low-rank updates of chosen linear layers.

Taught in chapter 8. Hu et al. 2021 ("LoRA: Low-Rank Adaptation of Large Language
Models", eq. 3) keep a pretrained weight ``W (out, in)`` frozen and learn an update of
rank ``r``::

    h = W x + (alpha / r) * B A x,     A: (r, in),  B: (out, r)

``B`` starts at zero, so the adapted model starts exactly as the pretrained one; ``A``
starts random (Kaiming-uniform, as ``nn.Linear`` and Hugging Face ``peft`` initialise
it), so the gradient of ``B`` is not zero at the first step. Hu et al. chose the factor
``alpha / r`` so that ``alpha`` need not be retuned when ``r`` changes; with Adam it does
not make the update's scale rank-independent (the first step shrinks about like
``1 / sqrt(r)``, measured in chapter 8; rsLoRA, Kalajdzievski 2023, scales by
``alpha / sqrt(r)`` instead). Trainable parameters per layer:
``r * (in + out)`` instead of ``in * out``.

The pieces: :class:`LoRALinear` (one wrapped layer, with :meth:`~LoRALinear.merge` /
:meth:`~LoRALinear.unmerge` to fold ``(alpha / r) B A`` into ``W`` for inference at no
extra cost), :func:`add_lora` (wrap a model's linear layers by name and freeze the
rest), :func:`merge_lora` / :func:`unmerge_lora`, and :func:`save_adapter` /
:func:`load_adapter` (only the trainable tensors, as safetensors, loaded back onto the
base model).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .validate import check_float, check_int, check_module, check_path


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) * x A^T B^T``: a frozen ``nn.Linear`` plus a rank-``r`` update.

    Args:
        base: the pretrained layer; it is used in place (not copied) and frozen
            (``requires_grad=False`` on its weight and bias).
        r: the rank, >= 1 and <= min(in_features, out_features).
        alpha: the scale numerator (> 0); the update is multiplied by ``alpha / r``.
        seed: seeds ``A``'s initial values (Kaiming-uniform with ``a = sqrt(5)``, the
            default of ``nn.Linear`` and of ``peft``).

    Attributes:
        lora_A: ``(r, in_features)``, trainable.
        lora_B: ``(out_features, r)``, trainable, zero at the start.
        scaling: ``alpha / r``.
        merged: whether the update is folded into ``base.weight``.

    Raises:
        TypeError: if ``base`` is not an ``nn.Linear``.
        ValueError: for a rank outside ``[1, min(in, out)]`` or ``alpha <= 0``.
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, *, seed: int = 0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        check_int("r", r, minimum=1, maximum=min(base.in_features, base.out_features))
        self.alpha = check_float("alpha", alpha, minimum=0.0, min_inclusive=False)
        self.r, self.scaling, self.merged = r, self.alpha / r, False
        self.base = base
        base.requires_grad_(False)
        A = torch.empty(r, base.in_features, dtype=base.weight.dtype)
        bound = 1.0 / math.sqrt(base.in_features)  # kaiming_uniform_(a=sqrt(5)) on a (r, in) weight
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            A.uniform_(-bound, bound, generator=generator)
        self.lora_A = nn.Parameter(A)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=base.weight.dtype))

    def delta_weight(self) -> Tensor:
        """The update ``(alpha / r) B A``, shape ``(out_features, in_features)``."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., in_features) -> (..., out_features)``."""
        y = self.base(x)
        if self.merged:
            return y  # the update is inside base.weight
        return y + self.scaling * ((x @ self.lora_A.T) @ self.lora_B.T)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into ``base.weight`` (forward then costs one matmul).

        Raises:
            RuntimeError: if already merged.
        """
        if self.merged:
            raise RuntimeError("this LoRALinear is already merged; unmerge() first")
        self.base.weight += self.delta_weight()
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update back out of ``base.weight`` (equal to before up to float rounding).

        Raises:
            RuntimeError: if not merged.
        """
        if not self.merged:
            raise RuntimeError("this LoRALinear is not merged")
        self.base.weight -= self.delta_weight()
        self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, merged={self.merged}"


def add_lora(model: nn.Module, targets: Sequence[str], r: int, alpha: float, *, seed: int = 0,
             train_also: Sequence[str] = ()) -> list[str]:
    """Wrap every ``nn.Linear`` of ``model`` whose name ends with one of ``targets`` in a
    :class:`LoRALinear`, in place, and freeze every other parameter.

    Args:
        model: the model (modified in place).
        targets: name suffixes, e.g. ``("attn.c_attn", "attn.c_proj")``; a suffix matches
            a whole name component (``"c_proj"`` matches ``"h.0.mlp.c_proj"``, not
            ``"xc_proj"``).
        r, alpha: as :class:`LoRALinear`.
        seed: layer ``i`` (in the order of ``named_modules``) seeds its ``A`` with ``seed + i``.
        train_also: name prefixes of parameters that stay trainable (e.g. a new
            classification head, ``("gpt.lm_head.",)``).

    Returns:
        The names of the wrapped layers.

    Raises:
        TypeError: if ``model`` is not a torch module.
        ValueError: if no linear layer matches, or a matched layer is already wrapped.
    """
    check_module("model", model)
    if isinstance(targets, str):
        targets = (targets,)
    names = [name for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and any(name == t or name.endswith("." + t) for t in targets)]
    if not names:
        raise ValueError(f"no nn.Linear of the model matches targets={list(targets)}")
    for name, p in model.named_parameters():
        p.requires_grad = any(name.startswith(prefix) for prefix in train_also)
    for i, name in enumerate(names):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = getattr(parent, child)
        if isinstance(parent, LoRALinear):
            raise ValueError(f"{name} is already wrapped in a LoRALinear")
        setattr(parent, child, LoRALinear(layer, r, alpha, seed=seed + i))
    return names


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    """The :class:`LoRALinear` modules of ``model``, in order."""
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def merge_lora(model: nn.Module) -> None:
    """:meth:`LoRALinear.merge` every wrapped layer of ``model``."""
    for layer in lora_layers(model):
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """:meth:`LoRALinear.unmerge` every wrapped layer of ``model``."""
    for layer in lora_layers(model):
        layer.unmerge()


def count_trainable(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts; a frozen base weight counts in ``total`` only."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def save_adapter(path: str | os.PathLike, model: nn.Module, *, config: dict | None = None) -> Path:
    """Save only the trainable tensors of ``model`` (the LoRA factors and whatever else is
    trainable) as a safetensors file; ``config`` (plain JSON) is stored in its metadata.

    Raises:
        RuntimeError: if a layer is merged (its base weight then holds the update).
        ValueError: if nothing is trainable.
    """
    check_path("path", path)
    if any(layer.merged for layer in lora_layers(model)):
        raise RuntimeError("unmerge the model before saving its adapter")
    tensors = {name: p.detach().contiguous() for name, p in model.named_parameters() if p.requires_grad}
    if not tensors:
        raise ValueError("the model has no trainable tensor to save")
    path = Path(path)
    save_file(tensors, str(path), metadata={"config": json.dumps(config or {})})
    return path


def load_adapter(path: str | os.PathLike, model: nn.Module) -> dict:
    """Load tensors saved by :func:`save_adapter` into ``model`` (already wrapped with
    :func:`add_lora` the same way); return the stored ``config``.

    Raises:
        ValueError: if a stored tensor has no parameter of that name and shape in
            ``model``.
    """
    check_path("path", path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        config = json.loads((f.metadata() or {}).get("config", "{}"))
    tensors = load_file(str(path))
    params = dict(model.named_parameters())
    for name, t in tensors.items():
        if name not in params or params[name].shape != t.shape:
            raise ValueError(f"adapter tensor {name} {tuple(t.shape)} has no matching parameter in the model")
        with torch.no_grad():
            params[name].copy_(t)
    return config


__all__ = ["LoRALinear", "add_lora", "count_trainable", "load_adapter", "lora_layers", "merge_lora",
           "save_adapter", "unmerge_lora"]
