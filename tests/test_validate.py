"""Tests for llmscratch.validate: wrong type -> TypeError, wrong range -> ValueError, named arguments."""

from __future__ import annotations

import math

import pytest
import torch

from llmscratch.validate import (check_bool, check_choice, check_float, check_int, check_positive_int,
                                 check_token_ids)

# -- check_int / check_positive_int ------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, -5, 10**12])
def test_check_int_returns_ints_unchanged(value):
    assert check_int("n", value) == value and type(check_int("n", value)) is int


@pytest.mark.parametrize("value", [3.0, 2.5, True, False, "3", None, [3], torch.tensor(3)])
def test_check_int_refuses_other_types(value):
    with pytest.raises(TypeError, match=r"^n_steps must be an int"):
        check_int("n_steps", value)


@pytest.mark.parametrize(
    "value, kwargs, match",
    [
        (0, {"minimum": 1}, r"n must be >= 1, got 0"),
        (-1, {"minimum": 0}, r"n must be >= 0, got -1"),
        (11, {"maximum": 10}, r"n must be <= 10, got 11"),
        (11, {"minimum": 0, "maximum": 10}, r"n must be <= 10, got 11"),
    ],
)
def test_check_int_range(value, kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_int("n", value, **kwargs)


def test_check_int_bounds_are_inclusive():
    assert check_int("n", 1, minimum=1, maximum=1) == 1


def test_check_positive_int():
    assert check_positive_int("block_size", 1) == 1
    with pytest.raises(ValueError, match="block_size must be >= 1, got 0"):
        check_positive_int("block_size", 0)
    with pytest.raises(TypeError, match="block_size must be an int, got float 3.0"):
        check_positive_int("block_size", 3.0)
    with pytest.raises(TypeError, match="block_size must be an int, got bool True"):
        check_positive_int("block_size", True)


# -- check_float ------------------------------------------------------------------------


def test_check_float_accepts_ints_and_returns_a_float():
    out = check_float("lr", 1)
    assert out == 1.0 and type(out) is float
    assert check_float("lr", 2.5) == 2.5


@pytest.mark.parametrize("value", [True, False, "1e-3", None, [0.1], torch.tensor(0.1)])
def test_check_float_refuses_non_numbers(value):
    with pytest.raises(TypeError, match=r"^lr must be a number"):
        check_float("lr", value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_check_float_refuses_nan_and_infinities_even_without_bounds(value):
    with pytest.raises(ValueError, match=r"^lr must be a finite number"):
        check_float("lr", value)


@pytest.mark.parametrize(
    "value, kwargs, ok",
    [
        (0.0, {"minimum": 0.0}, True),
        (0.0, {"minimum": 0.0, "min_inclusive": False}, False),
        (1e-12, {"minimum": 0.0, "min_inclusive": False}, True),
        (-1e-12, {"minimum": 0.0}, False),
        (1.0, {"maximum": 1.0}, True),
        (1.0, {"maximum": 1.0, "max_inclusive": False}, False),
        (0.999, {"minimum": 0.0, "maximum": 1.0, "max_inclusive": False}, True),
        (1.5, {"minimum": 0.0, "maximum": 1.0}, False),
        (-1e300, {}, True),
    ],
)
def test_check_float_range_and_inclusiveness(value, kwargs, ok):
    if ok:
        assert check_float("p", value, **kwargs) == value
    else:
        with pytest.raises(ValueError, match=r"^p must be in "):
            check_float("p", value, **kwargs)


@pytest.mark.parametrize(
    "kwargs, interval",
    [
        ({"minimum": 0.0, "maximum": 1.0, "max_inclusive": False}, "[0, 1)"),
        ({"minimum": 0.0, "min_inclusive": False}, "(0, inf)"),
        ({"maximum": 1.0}, "(-inf, 1]"),
        ({"minimum": 0.0, "maximum": 1.0}, "[0, 1]"),
    ],
)
def test_check_float_message_shows_the_interval(kwargs, interval):
    with pytest.raises(ValueError) as info:
        check_float("dropout", 7.0 if "maximum" in kwargs else -7.0, **kwargs)
    assert str(info.value).startswith(f"dropout must be in {interval}, got ")


# -- check_bool / check_choice ------------------------------------------------------------


def test_check_bool():
    assert check_bool("bias", True) is True and check_bool("bias", False) is False
    for value in (0, 1, "yes", None, 1.0):
        with pytest.raises(TypeError, match="bias must be a bool"):
            check_bool("bias", value)


def test_check_choice():
    assert check_choice("schedule", "cosine", ("cosine", "constant")) == "cosine"
    assert check_choice("k", 2, iter([1, 2])) == 2  # any iterable of choices
    with pytest.raises(ValueError, match=r"schedule must be one of \('cosine', 'constant'\), got 'linear'"):
        check_choice("schedule", "linear", ("cosine", "constant"))


# -- check_token_ids ------------------------------------------------------------------------


def test_check_token_ids_accepts_int64_in_range():
    ids = torch.tensor([[0, 4], [2, 3]])
    assert check_token_ids("idx", ids, 5, ndim=2) is ids
    assert check_token_ids("idx", torch.zeros(0, dtype=torch.long), 5).numel() == 0  # empty: no range to check


@pytest.mark.parametrize(
    "ids, error, match",
    [
        ([[1, 2]], TypeError, "idx must be a torch.Tensor"),
        (torch.zeros(1, 2), TypeError, "idx must hold int64 token ids, got dtype torch.float32"),
        (torch.zeros(1, 2, dtype=torch.int32), TypeError, "idx must hold int64"),
        (torch.zeros(1, 2, dtype=torch.bool), TypeError, "idx must hold int64"),
        (torch.zeros(2, dtype=torch.long), ValueError, r"idx must have 2 dimensions, got shape \(2,\)"),
        (torch.tensor([[0, 5]]), ValueError, r"idx must hold ids in \[0, 5\), got min 0, max 5"),
        (torch.tensor([[-1, 0]]), ValueError, r"idx must hold ids in \[0, 5\), got min -1"),
    ],
)
def test_check_token_ids_errors(ids, error, match):
    with pytest.raises(error, match=match):
        check_token_ids("idx", ids, 5, ndim=2)
