"""Checkpoints as safetensors + JSON, and a cache of trained models keyed by what made them.

Introduced in chapter 1 (so chapter 2 can compare against the names model without
training it again) and used by chapter 4 onwards for the transformer that later
chapters fine-tune.

A checkpoint is a folder with ``model.safetensors`` (tensors only: no pickle, so
loading a file cannot run code) and ``meta.json`` (the model config, the training
config and whatever the training run measured).

:func:`train_or_load` stores a trained model under a key that hashes everything that
determines the result: the configs, a fingerprint of the data, the torch version and
the code (docstrings and comments aside) of the package modules the run imports. Changing any of them changes the key, so the cache
can never serve a model the current code would not have produced; a missing entry is
simply retrained, deterministically, to the same result.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .data import default_cache_dir

META_FILE = "meta.json"
WEIGHTS_FILE = "model.safetensors"


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
        ValueError: if a root is not a module of the package.
    """
    todo = [r.removeprefix("llmscratch.") for r in roots]
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
    """SHA-256 of the bytes of some tensors (e.g. the token ids a model trains on)."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_key(parts: dict, code_roots: Iterable[str] | None = None) -> str:
    """A short hex key for a JSON-serialisable description of a training run and the package code.

    ``code_roots`` is passed to :func:`package_fingerprint`.
    """
    blob = json.dumps(parts, sort_keys=True, default=str) + package_fingerprint(code_roots)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_checkpoint(folder: str | os.PathLike, model: torch.nn.Module, meta: dict) -> Path:
    """Write ``model.safetensors`` and ``meta.json`` into ``folder`` atomically.

    The files are written to a temporary sibling folder that is then renamed, so an
    interrupted save never leaves a half-written checkpoint.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        # clone(): tied parameters share memory, which safetensors refuses to save twice.
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILE))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_checkpoint(folder: str | os.PathLike, model: torch.nn.Module) -> dict:
    """Load weights from ``folder`` into ``model`` (strictly) and return the metadata.

    Raises:
        FileNotFoundError: if either file is missing.
        RuntimeError: if the weights do not match the model's parameters.
    """
    folder = Path(folder)
    meta = json.loads((folder / META_FILE).read_text())
    model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
    return meta


def train_or_load(
    name: str,
    model: torch.nn.Module,
    fit: Callable[[torch.nn.Module], dict],
    key_parts: dict,
    *,
    cache_dir: str | os.PathLike | None = None,
    code_roots: Iterable[str] | None = None,
) -> tuple[torch.nn.Module, dict]:
    """Return ``model`` trained by ``fit``, from the checkpoint cache when possible.

    Args:
        name: a readable prefix of the cache entry, e.g. ``"names-mlp"``.
        model: a freshly initialised model; trained in place or loaded into.
        fit: trains the model and returns JSON-serialisable measurements (losses,
            seconds); they are stored with the weights and returned on later loads.
        key_parts: everything that determines the result besides the package code
            (configs, data fingerprint, seed).
        cache_dir: defaults to ``<data cache>/checkpoints``.
        code_roots: the modules whose code (with everything they import) made the
            model, e.g. ``["recipes"]``; the key hashes their source. ``None`` (the
            safe default) hashes the whole package.

    Returns:
        ``(model, meta)`` where ``meta["measurements"]`` is what ``fit`` returned and
        ``meta["from_cache"]`` says whether training was skipped.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "checkpoints"
    folder = root / f"{name}-{cache_key(key_parts, code_roots)}"
    if (folder / META_FILE).exists() and (folder / WEIGHTS_FILE).exists():
        meta = load_checkpoint(folder, model)
        return model, {**meta, "from_cache": True}
    measurements = fit(model)
    meta = {"name": name, "key_parts": key_parts, "measurements": measurements}
    save_checkpoint(folder, model, json.loads(json.dumps(meta, default=str)))
    return model, {**meta, "from_cache": False}
