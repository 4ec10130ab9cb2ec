"""Checks for the "build it" exercises of every chapter (1 onwards).

A build-it exercise asks the reader to write the core of a chapter (bigram counts, an
attention head, the DPO loss...) as a function. The check cell beside it calls
:func:`check`, which runs the reader's function and the package's on the same inputs
(usually random, from a seed) and prints one line: ``PASS`` with the number of cases, or
``FAIL`` with the first case that differs and how. The worked solution in the book
passes the same check when the page is executed, so a check that cannot pass fails the
build. No model or recipe imports this module: changing it never retrains anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch

__all__ = ["CheckResult", "check", "compare"]


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check` found.

    Attributes:
        name: the exercise's name, as printed.
        passed: every case agreed.
        n_cases: how many cases were run (up to and including the first failure).
        message: the line that was printed.
    """

    name: str
    passed: bool
    n_cases: int
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def _ipython_display_(self) -> None:
        """Show nothing in a notebook: :func:`check` has already printed the message."""


def compare(got: object, want: object, *, rtol: float = 1e-5, atol: float = 1e-6, where: str = "output") -> str | None:
    """``None`` if ``got`` equals ``want``, else a sentence saying where they first differ.

    Tensors must have the same shape and dtype and be close (``torch.testing.assert_close``
    with ``rtol``/``atol``); floats are compared with the same tolerances; tuples and lists
    element by element, dicts key by key; anything else with ``==``.
    """
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"{where} should be a tensor, got {type(got).__name__}"
        if got.shape != want.shape:
            return f"{where} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
        if got.dtype != want.dtype:
            return f"{where} has dtype {got.dtype}, expected {want.dtype}"
        try:
            torch.testing.assert_close(got, want, rtol=rtol, atol=atol, equal_nan=True)
        except AssertionError:
            g, w = got.double(), want.double()
            # equal values (infinities and NaNs included) are agreements, not differences
            same = torch.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True) | (g == w)
            diff = torch.where(same, torch.zeros_like(g), (g - w).abs().nan_to_num(math.inf))
            idx = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
            return (f"{where} differs most at index {idx}: got {got[idx].item():.6g}, "
                    f"expected {want[idx].item():.6g}")
        return None
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        if math.isclose(got, want, rel_tol=rtol, abs_tol=atol) or (math.isnan(got) and math.isnan(want)):
            return None
        return f"{where} is {got:.6g}, expected {want:.6g}"
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            n = len(got) if isinstance(got, (tuple, list)) else type(got).__name__
            return f"{where} should be a sequence of {len(want)} items, got {n}"
        for i, (g, w) in enumerate(zip(got, want)):
            msg = compare(g, w, rtol=rtol, atol=atol, where=f"{where}[{i}]")
            if msg:
                return msg
        return None
    if isinstance(want, Mapping):
        if not isinstance(got, Mapping) or set(got) != set(want):
            keys = sorted(map(str, got)) if isinstance(got, Mapping) else type(got).__name__
            return f"{where} should have keys {sorted(map(str, want))}, got {keys}"
        for k in want:
            msg = compare(got[k], want[k], rtol=rtol, atol=atol, where=f"{where}[{k!r}]")
            if msg:
                return msg
        return None
    if got != want:
        return f"{where} is {got!r}, expected {want!r}"
    return None


def _describe(case: object, limit: int = 120) -> str:
    def one(v: object) -> str:
        if isinstance(v, torch.Tensor):
            return f"tensor{tuple(v.shape)}"
        return repr(v)
    if isinstance(case, Mapping):
        text = ", ".join(f"{k}={one(v)}" for k, v in case.items())
    else:
        text = ", ".join(one(v) for v in case)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check(
    name: str,
    yours: Callable,
    reference: Callable,
    cases: Iterable[Sequence | Mapping],
    *,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    quiet: bool = False,
) -> CheckResult:
    """Run ``yours`` and ``reference`` on every case and print whether they agree.

    Args:
        name: the exercise, as the printed line names it.
        yours: the reader's function.
        reference: the package's function (or a small wrapper around it).
        cases: argument tuples (called as ``f(*case)``) or keyword dicts (``f(**case)``).
            Each function gets its own copy of tensor arguments, so one cannot change
            the other's inputs.
        rtol, atol: tolerances for tensors and floats (see :func:`compare`).
        quiet: return the result without printing it.

    Returns:
        a :class:`CheckResult`, true when every case agreed. A function that raises
        ``NotImplementedError`` (the exercise's stub) is reported as not written yet;
        any other exception is a failure that names it.

    Raises:
        TypeError: if ``yours`` or ``reference`` is not callable, or a case is neither a
            sequence nor a mapping.
        ValueError: if ``cases`` is empty.
    """
    for arg, fn in (("yours", yours), ("reference", reference)):
        if not callable(fn):
            raise TypeError(f"{arg} must be a function, got {type(fn).__name__}")
    cases = list(cases)
    if not cases:
        raise ValueError("cases must hold at least one case")

    def call(fn: Callable, case: Sequence | Mapping) -> object:
        if isinstance(case, Mapping):
            return fn(**{k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in case.items()})
        if isinstance(case, (tuple, list)):
            return fn(*(v.clone() if isinstance(v, torch.Tensor) else v for v in case))
        raise TypeError(f"each case must be a tuple of arguments or a dict, got {type(case).__name__}")

    result = None
    for i, case in enumerate(cases, start=1):
        want = call(reference, case)
        try:
            got = call(yours, case)
        except NotImplementedError:
            result = CheckResult(name, False, i, f"NOT YET {name}: write your function, then run this again")
            break
        except Exception as err:  # the reader's bug, reported rather than raised
            result = CheckResult(name, False, i, f"FAIL {name}: case {i} ({_describe(case)}) raised "
                                                 f"{type(err).__name__}: {err}")
            break
        msg = compare(got, want, rtol=rtol, atol=atol)
        if msg:
            result = CheckResult(name, False, i, f"FAIL {name}: case {i} ({_describe(case)}): {msg}")
            break
    if result is None:
        result = CheckResult(name, True, len(cases), f"PASS {name}: your function agrees with the "
                                                     f"package's on all {len(cases)} cases")
    if not quiet:
        print(result.message)
    return result
