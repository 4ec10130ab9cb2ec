"""Argument checks shared by the whole package: one rule, one message, one error type.

Used from chapter 1 on by every config, model and public function. The rule is
that of the standard library: a value of the wrong *type* raises :class:`TypeError`
(``3.0`` where an int is wanted, ``True`` where a number is wanted, a list where a
tensor is wanted), a value of the right type outside the allowed range raises
:class:`ValueError`. Every message names the argument and what is allowed.
"""

from __future__ import annotations

import math
import os
import operator
from collections.abc import Iterable, Mapping
from typing import Any

import torch


def _type_name(value: Any) -> str:
    return type(value).__name__


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` if it is an int (not a bool) in ``[minimum, maximum]``.

    Raises:
        TypeError: if ``value`` is not an int (``3.0`` and ``True`` are refused).
        ValueError: if it is outside the range.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {_type_name(value)} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_positive_int(name: str, value: Any) -> int:
    """``value`` if it is an int >= 1 (errors as :func:`check_int`)."""
    return check_int(name, value, minimum=1)


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
) -> float:
    """``value`` as a float if it is a finite real number in the given range.

    Ints are accepted (``lr=1`` is a learning rate of 1.0); bools, strings, NaN and
    infinities are not.

    Raises:
        TypeError: if ``value`` is not an int or float.
        ValueError: if it is NaN, infinite or outside the range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {_type_name(value)} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    low_ok = minimum is None or (value >= minimum if min_inclusive else value > minimum)
    high_ok = maximum is None or (value <= maximum if max_inclusive else value < maximum)
    if not (low_ok and high_ok):
        lo = "-inf" if minimum is None else f"{minimum:g}"
        hi = "inf" if maximum is None else f"{maximum:g}"
        interval = f"{'[' if min_inclusive and minimum is not None else '('}{lo}, {hi}" \
                   f"{']' if max_inclusive and maximum is not None else ')'}"
        raise ValueError(f"{name} must be in {interval}, got {value:g}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool.

    Raises:
        TypeError: otherwise (``0`` and ``"yes"`` are refused).
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {_type_name(value)} {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``.

    Raises:
        ValueError: otherwise, listing the choices.
    """
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_token_ids(name: str, ids: Any, vocab_size: int, *, ndim: int | None = None) -> torch.Tensor:
    """``ids`` if it is an int64 tensor of token ids in ``[0, vocab_size)``.

    Args:
        ndim: the required number of dimensions (None: any).

    Raises:
        TypeError: for a non-tensor or a dtype other than int64.
        ValueError: for the wrong number of dimensions or an id outside the vocabulary.
    """
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {_type_name(ids)}")
    if ids.dtype != torch.long:
        raise TypeError(f"{name} must hold int64 token ids, got dtype {ids.dtype}")
    if ndim is not None and ids.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(ids.shape)}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(
            f"{name} must hold ids in [0, {vocab_size}), got min {int(ids.min())}, max {int(ids.max())}"
        )
    return ids


def check_id_list(name: str, ids: Any, vocab_size: int | None = None) -> list[int]:
    """``ids`` as a list of Python ints: token ids in ``[0, vocab_size)`` (``[0, inf)`` without it).

    Accepts a list, tuple, range or other iterable of ints (numpy integers included) and a
    1-D tensor of an integer dtype: what a tokenizer's ``decode`` or a list of encoded
    words is given. The counterpart of :func:`check_token_ids` (a model's ``(B, T)``
    int64 batch) for the places that work on Python lists.

    Raises:
        TypeError: for a str, a mapping or a non-iterable, a float or bool element, or a
            tensor of a float, complex or bool dtype.
        ValueError: for a tensor that is not 1-D, or an id outside the range.
    """
    if isinstance(ids, torch.Tensor):
        if ids.dtype == torch.bool or ids.dtype.is_floating_point or ids.dtype.is_complex:
            raise TypeError(f"{name} must hold integer token ids, got a tensor of dtype {ids.dtype}")
        if ids.ndim != 1:
            raise ValueError(f"{name} must be a 1-D tensor of token ids, got shape {tuple(ids.shape)}")
        out = ids.tolist()
    elif isinstance(ids, (str, bytes, bytearray, Mapping)) or not isinstance(ids, Iterable):
        raise TypeError(f"{name} must be a list, tuple or 1-D tensor of int token ids, got {_type_name(ids)}")
    else:
        out = []
        for pos, i in enumerate(ids):
            if isinstance(i, bool) or (isinstance(i, torch.Tensor) and i.dtype == torch.bool):
                raise TypeError(f"{name}[{pos}] must be an int token id, got bool {i!r}")
            try:
                out.append(operator.index(i))
            except TypeError:
                raise TypeError(f"{name}[{pos}] must be an int token id, got {_type_name(i)} {i!r}") from None
    if out:
        low, high = min(out), max(out)
        if low < 0 or (vocab_size is not None and high >= vocab_size):
            pos, bad = next((p, i) for p, i in enumerate(out)
                            if i < 0 or (vocab_size is not None and i >= vocab_size))
            allowed = f"[0, {vocab_size})" if vocab_size is not None else "[0, inf)"
            raise ValueError(f"{name}: token id {bad} at position {pos} is outside {allowed}")
    return out


def check_float_tensor(name: str, value: Any, *, ndim: int | None = None) -> torch.Tensor:
    """``value`` if it is a tensor of a floating-point dtype (with ``ndim`` dimensions if given).

    Raises:
        TypeError: for a non-tensor or a tensor of another dtype.
        ValueError: for the wrong number of dimensions.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {_type_name(value)}")
    if not value.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(value.shape)}")
    return value


def check_module(name: str, value: Any) -> torch.nn.Module:
    """``value`` if it is a ``torch.nn.Module`` (a model).

    Raises:
        TypeError: otherwise.
    """
    if not isinstance(value, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {_type_name(value)}")
    return value


def check_path(name: str, value: Any, *, optional: bool = False) -> Any:
    """``value`` if it is a str or ``os.PathLike`` (or None, when ``optional``).

    Raises:
        TypeError: otherwise (an int, bytes, a list).
    """
    if value is None and optional:
        return value
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {_type_name(value)} {value!r}")
    return value
