"""Checkpoints as safetensors + JSON, and a cache of trained models keyed by what made them.

Introduced in chapter 1 (so chapter 2 can compare against the names model without
training it again) and used by chapter 4 onwards for the transformer that later
chapters fine-tune.

A checkpoint is a folder with ``model.safetensors`` (tensors only: no pickle, so
loading a file cannot run code) and ``meta.json``: the metadata (model config,
training config, what the run measured) and the SHA-256 of both, checked on every load,
so a damaged or edited entry is detected instead of served.

:func:`train_or_load` stores a trained model under a key (:func:`~llmscratch.fingerprint.cache_key`)
that hashes everything that determines the result: the configs, a fingerprint of the
data, the torch version and the code of the package modules the run imports. Changing
any of them changes the key, so the cache never serves a model the current code would
not have produced; a missing or damaged entry is retrained, deterministically, to the
same result. A file lock (``filelock``) makes one process train while another waits for
it and then loads.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import shutil
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .fingerprint import (  # noqa: F401  (re-exported: the chapters import them from here)
    cache_key,
    canonical,
    code_closure,
    code_text,
    package_fingerprint,
    tensor_fingerprint,
)
from .sources import default_cache_dir, sha256_file
from .validate import check_module, check_path

META_FILE = "meta.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = 2  # meta.json: {"format", "meta", "sha256": {"model.safetensors", "meta"}}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class CheckpointError(RuntimeError):
    """A checkpoint folder that cannot be loaded: missing, unreadable, damaged or edited files,
    or weights that do not fit the model. The message names the folder."""


def plain_json(value: Any, where: str = "meta") -> Any:
    """``value`` as plain JSON (dicts with string keys, lists, strings, finite numbers, bools, None).

    Tuples become lists, so what a fresh run returns equals what the cache returns later.

    Raises:
        TypeError: for anything else, e.g. a tensor (store ``t.item()`` or ``t.tolist()``).
        ValueError: for a NaN or infinite float.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}; a checkpoint stores finite numbers only")
        return float(value)
    if isinstance(value, (list, tuple)):
        return [plain_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise TypeError(f"{where} has the key {k!r}; keys must be strings")
        return {k: plain_json(v, f"{where}[{k!r}]") for k, v in value.items()}
    hint = " (store t.item() or t.tolist())" if isinstance(value, torch.Tensor) else ""
    raise TypeError(f"{where} is a {type(value).__name__}; a checkpoint stores plain numbers, "
                    f"strings, lists and dicts{hint}")


def _meta_sha256(meta: Any) -> str:
    return hashlib.sha256(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _lock(folder: Path) -> FileLock:
    """The lock that guards ``folder``: a sibling file, so the folder itself holds only the checkpoint."""
    return FileLock(folder.parent / f".{folder.name}.lock")


def _check_folder_is_ours(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"folder {folder} is a file, not a checkpoint folder")
    if folder.is_dir():
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in (WEIGHTS_FILE, META_FILE))
        if foreign:
            raise ValueError(f"folder {folder} holds files that save_checkpoint did not write "
                             f"({', '.join(foreign[:5])}); refusing to write a checkpoint there. "
                             "Choose a new or empty folder.")


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # clone(): tied parameters share memory, which safetensors refuses to save twice.
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise FloatingPointError(f"the model's weights are not finite ({', '.join(bad[:3])}); not saved")
    return state


def _new_folder(parent: Path, prefix: str) -> Path:
    """A new empty folder in ``parent`` with the user's normal permissions (``0o777 & ~umask``;
    ``tempfile.mkdtemp`` would make it ``0o700``, and the renamed checkpoint with it)."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue


def _save(folder: Path, model: torch.nn.Module, meta: dict) -> None:
    _check_folder_is_ours(folder)
    meta = plain_json(meta)
    state = _state(model)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_folder(folder.parent, f".{folder.name}.tmp-")
    try:
        save_file(state, str(tmp / WEIGHTS_FILE))
        record = {"format": FORMAT, "meta": meta,
                  "sha256": {WEIGHTS_FILE: sha256_file(tmp / WEIGHTS_FILE), "meta": _meta_sha256(meta)}}
        (tmp / META_FILE).write_text(json.dumps(record, indent=1, sort_keys=True, allow_nan=False))
        if not folder.exists():
            os.rename(tmp, folder)  # the whole folder appears at once
        else:  # replace our two files, each atomically; the folder never goes missing
            os.replace(tmp / WEIGHTS_FILE, folder / WEIGHTS_FILE)
            os.replace(tmp / META_FILE, folder / META_FILE)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)  # our own temporary folder only


def _load(folder: Path, model: torch.nn.Module) -> dict:
    def damaged(why: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {folder}: {why}")

    try:
        record = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {folder}: no {META_FILE}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise damaged(f"{META_FILE} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not (isinstance(record, dict) and record.get("format") == FORMAT
            and isinstance(record.get("sha256"), dict) and isinstance(record.get("meta"), dict)):
        raise damaged(f"{META_FILE} is not a format-{FORMAT} checkpoint record")
    meta, sums = record["meta"], record["sha256"]
    if _meta_sha256(meta) != sums.get("meta"):
        raise damaged(f"{META_FILE} was edited (its SHA-256 does not match the one saved)")
    weights = folder / WEIGHTS_FILE
    try:
        if sha256_file(weights) != sums.get(WEIGHTS_FILE):
            raise damaged(f"{WEIGHTS_FILE} is damaged (its SHA-256 does not match the one saved)")
        state = load_file(str(weights))
    except (OSError, SafetensorError) as exc:
        raise damaged(f"{WEIGHTS_FILE} cannot be read ({type(exc).__name__}: {exc})") from exc
    expected = model.state_dict()
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise CheckpointError(f"checkpoint {folder} does not fit the model: missing {missing[:3]}, "
                              f"unexpected {extra[:3]}")
    for k, v in state.items():
        if v.shape != expected[k].shape or v.dtype != expected[k].dtype:
            raise CheckpointError(f"checkpoint {folder}: {k} is {v.dtype} {tuple(v.shape)}, the model's "
                                  f"is {expected[k].dtype} {tuple(expected[k].shape)}")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise damaged(f"{k} holds NaN or infinite values")
    model.load_state_dict(state, strict=True)
    return meta


def save_checkpoint(folder: str | os.PathLike, model: torch.nn.Module, meta: dict) -> Path:
    """Write ``model.safetensors`` and ``meta.json`` into ``folder``, atomically, deleting nothing else.

    The files are written to a temporary sibling folder, which is renamed into place
    (a new folder) or whose two files replace the old ones (an existing checkpoint), so
    an interrupted save never leaves a half-written checkpoint and the folder never goes
    missing. A lock (the file ``.<folder name>.lock`` beside the folder) guards it
    against a concurrent save or load. The folder gets the user's normal permissions.

    Args:
        meta: plain JSON (:func:`plain_json`); stored with its SHA-256 and the weights'.

    Raises:
        ValueError: if ``folder`` is a file or holds files other than a checkpoint's
            (they are left untouched), or ``meta`` holds a NaN.
        TypeError: if ``meta`` is not plain JSON.
        FloatingPointError: if a weight is NaN or infinite (nothing is written).
    """
    check_path("folder", folder)
    check_module("model", model)
    folder = Path(os.path.abspath(folder))
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    _check_folder_is_ours(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _lock(folder):
        _save(folder, model, meta)
    return folder


def load_checkpoint(folder: str | os.PathLike, model: torch.nn.Module) -> dict:
    """Verify the checkpoint in ``folder``, load its weights into ``model`` and return the metadata.

    The weights file and the metadata must match the SHA-256 saved with them; every
    tensor must have the model's name, shape and dtype, and be finite. ``model`` is left
    untouched unless all of that holds.

    Raises:
        CheckpointError: naming ``folder``, for a missing, unreadable, damaged or edited
            file, or weights that do not fit ``model``.
    """
    check_path("folder", folder)
    check_module("model", model)
    folder = Path(os.path.abspath(folder))
    if not folder.is_dir():
        raise CheckpointError(f"no checkpoint folder {folder}")
    with _lock(folder):
        return _load(folder, model)


def _discard(folder: Path) -> bool:
    """Delete a damaged cache entry if it holds only a checkpoint's two files; say whether it did."""
    entries = list(folder.iterdir()) if folder.is_dir() else None
    if entries is None or any(p.name not in (WEIGHTS_FILE, META_FILE) or not p.is_file() or p.is_symlink()
                              for p in entries):
        return False
    for p in entries:
        p.unlink()
    return True


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

    One process trains a given entry at a time: another that asks for the same entry
    waits for it (a file lock) and then loads. A damaged entry (:class:`CheckpointError`)
    gives a warning and is trained again.

    Args:
        name: a readable prefix of the cache entry, e.g. ``"names-mlp"``: letters, digits,
            ``.``, ``_`` and ``-``, at most 100 characters, so it cannot leave the cache.
        model: a freshly initialised model; trained in place or loaded into.
        fit: trains the model and returns its measurements as plain JSON (losses,
            seconds; :func:`plain_json`); they are stored with the weights and returned on
            later loads exactly as the fresh run returned them.
        key_parts: everything that determines the result besides the package code
            (configs, data fingerprint, seed), hashed by :func:`~llmscratch.fingerprint.cache_key`.
        cache_dir: defaults to ``<data cache>/checkpoints``.
        code_roots: the modules whose code (with everything they import) made the
            model, e.g. ``["recipes.pretrain"]``; the key hashes their code. ``None`` (the
            safe default) hashes the whole package.

    Returns:
        ``(model, meta)`` where ``meta["measurements"]`` is what ``fit`` returned and
        ``meta["from_cache"]`` says whether training was skipped.

    Raises:
        TypeError/ValueError: for a bad ``name``, ``key_parts`` or ``code_roots``, or
            measurements that are not plain JSON (nothing is cached).
        FloatingPointError: if training produced non-finite weights (nothing is cached).
        CheckpointError: for a damaged entry that holds files it cannot safely delete.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"name must be 1-100 letters, digits, '.', '_' or '-' (no '..'), got {name!r}")
    check_module("model", model)
    check_path("cache_dir", cache_dir, optional=True)
    if not callable(fit):
        raise TypeError(f"fit must be callable, got {type(fit).__name__}")
    parts = canonical(key_parts)
    root = Path(os.path.abspath(cache_dir if cache_dir is not None else default_cache_dir() / "checkpoints"))
    folder = root / f"{name}-{cache_key(key_parts, code_roots)}"
    root.mkdir(parents=True, exist_ok=True)
    with _lock(folder):
        if folder.exists():
            try:
                return model, {**_load(folder, model), "from_cache": True}
            except CheckpointError as exc:
                if not _discard(folder):
                    raise CheckpointError(f"{exc}. The entry holds files other than a checkpoint's, so it "
                                          f"was not deleted: delete {folder} by hand to retrain it.") from exc
                warnings.warn(f"{exc}; deleted the entry and training it again", RuntimeWarning, stacklevel=2)
        measurements = plain_json(fit(model), "measurements")
        meta = {"name": name, "key_parts": parts, "measurements": measurements}
        _save(folder, model, meta)
    return model, {**meta, "from_cache": False}
