"""What made a trained model, as one hash: the code, the configs and the data.

Introduced with the checkpoint cache in chapter 1 (:mod:`llmscratch.checkpoint`).
:func:`cache_key` hashes a description of a training run (configs, seeds, data
fingerprints) in a canonical form, together with :func:`package_fingerprint`, the code
of the package modules the run imports (docstrings and comments aside). Two runs get
the same key only if everything that determines their result is the same.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_TENSOR = "__tensor__"


def _module_file(name: str) -> Path | None:
    """The source file of the package module ``name`` (``"train"``, ``"recipes.base"``)."""
    base = Path(__file__).parent.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _package_imports(name: str, path: Path) -> set[str]:
    """Names of the ``llmscratch`` modules that module ``name`` (file ``path``) imports, anywhere in it.

    ``from .x import y``, ``from ..x import y`` (in a subpackage) and ``from llmscratch.x
    import y`` or ``import llmscratch.x`` all count, including imports inside functions;
    ``from . import a`` counts ``a`` if it is a module, else the package itself.
    """
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level >= 1:
                if node.level - 1 > len(package):
                    continue
                parent = package[: len(package) - (node.level - 1)]
                module = ".".join([*parent, *([node.module] if node.module else [])])
            elif (node.module or "").split(".")[0] == "llmscratch":
                module = node.module.partition(".")[2]
            else:
                continue
            for alias in node.names:  # `from pkg import sub` names a module
                sub = f"{module}.{alias.name}" if module else alias.name
                if _module_file(sub) is not None:
                    found.add(sub)
                elif module:
                    found.add(module)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                head, _, rest = alias.name.partition(".")
                if head == "llmscratch" and rest:
                    found.add(rest)
    return {m for m in found if m and _module_file(m) is not None}


def code_closure(roots: Iterable[str]) -> list[Path]:
    """The package source files that ``roots`` (module names) import, directly or not.

    ``code_closure(["recipes.base"])`` is ``recipes/base.py`` and every ``llmscratch``
    module it imports, directly or through other modules, so a change to a module it
    never imports (a later chapter's) does not change its fingerprint.

    Raises:
        TypeError: if ``roots`` is a single string.
        ValueError: if a root is not a dotted module name (so no path can escape the
            package) or not a module of the package.
    """
    if isinstance(roots, str):
        raise TypeError(f"code_roots must be a list of module names, got the str {roots!r}")
    todo = []
    for root in roots:
        if not isinstance(root, str) or not _MODULE_NAME.fullmatch(root):
            raise ValueError(f"code_roots: {root!r} is not a dotted module name such as 'recipes.pretrain'")
        todo.append(root.removeprefix("llmscratch."))
    seen: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            raise ValueError(f"code_roots: no module llmscratch.{name} in {Path(__file__).parent}")
        seen[name] = path
        todo.extend(_package_imports(name, path) - set(seen))
    return sorted(seen.values())


def code_text(path: Path) -> str:
    """The code of a source file without its docstrings and comments: its syntax tree, dumped.

    Two files that differ only in docstrings, comments or layout give the same text, so
    editing a docstring does not invalidate a trained model, while any change to what the
    code does changes it.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def package_fingerprint(code_roots: Iterable[str] | None = None) -> str:
    """SHA-256 of the code (:func:`code_text`) of the package's source files, plus torch's version.

    Args:
        code_roots: hash only these modules and what they import (:func:`code_closure`);
            ``None`` hashes every ``.py`` file of the package.
    """
    h = hashlib.sha256(torch.__version__.encode())
    package = Path(__file__).parent
    files = sorted(package.rglob("*.py")) if code_roots is None else code_closure(code_roots)
    for path in files:
        h.update(path.relative_to(package).as_posix().encode())
        h.update(code_text(path).encode())
    return h.hexdigest()


def tensor_fingerprint(*tensors: torch.Tensor) -> str:
    """SHA-256 of the dtypes, shapes and bytes of some tensors (e.g. the token ids a model trains on).

    Raises:
        TypeError: for an argument that is not a tensor.
    """
    h = hashlib.sha256()
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"tensor_fingerprint takes tensors, got {type(t).__name__}")
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def canonical(value: Any, where: str = "key_parts") -> Any:
    """``value`` as plain JSON with one spelling per meaning, for hashing.

    Dicts (string keys) are sorted by key; tuples become lists; a tensor or NumPy array
    becomes ``{"__tensor__": [dtype, shape, sha256 of its bytes]}``, so two tensors that
    differ in one element differ here (a tensor's ``repr`` abbreviates large tensors); a
    dataclass becomes its class name and fields. Types with no canonical form are refused
    rather than hashed by ``str`` (a set's order differs between interpreters).

    Raises:
        TypeError: for a set, a non-string dict key, a key starting with ``"__"``, or any
            other type (the message gives its place, e.g. ``key_parts['data'][0]``).
        ValueError: for a NaN or infinite float.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}; a cache key needs finite numbers")
        return value
    if isinstance(value, (torch.Tensor, np.ndarray)):
        t = torch.as_tensor(value)
        return {_TENSOR: [str(t.dtype), list(t.shape), tensor_fingerprint(t)]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"__dataclass__": type(value).__qualname__, "fields": canonical(fields, where)}
    if isinstance(value, (list, tuple)):
        return [canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has the key {k!r}; keys must be strings")
            if k.startswith("__"):
                raise TypeError(f"{where} has the key {k!r}; keys starting with '__' are reserved")
            out[k] = canonical(v, f"{where}[{k!r}]")
        return dict(sorted(out.items()))
    if isinstance(value, (set, frozenset)):
        raise TypeError(f"{where} is a set, which has no canonical order; pass a sorted list")
    raise TypeError(f"{where} is a {type(value).__name__}, which a cache key cannot hash canonically; "
                    "pass numbers, strings, lists, dicts, dataclasses or tensors")


def cache_key(parts: dict, code_roots: Iterable[str] | None = None) -> str:
    """A 16-hex-digit key for a description of a training run and the package code.

    Hashes :func:`canonical` ``(parts)`` and :func:`package_fingerprint` ``(code_roots)``.

    Raises:
        TypeError: if ``parts`` is not a dict, or as :func:`canonical`.
        ValueError: as :func:`canonical` and :func:`code_closure`.
    """
    if not isinstance(parts, dict):
        raise TypeError(f"key_parts must be a dict, got {type(parts).__name__}")
    blob = json.dumps(canonical(parts), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256((blob + package_fingerprint(code_roots)).encode()).hexdigest()[:16]
