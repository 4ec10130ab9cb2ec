"""Checkpoints as safetensors + JSON, and a cache of trained models keyed by what made them.

Introduced in chapter 1 (so chapter 2 can compare against the names model without
training it again) and used by chapter 4 onwards for the transformer that later
chapters fine-tune.

A checkpoint is a folder with ``model.safetensors`` (tensors only: no pickle, so
loading a file cannot run code) and ``meta.json`` (the model config, the training
config and whatever the training run measured).

:func:`train_or_load` stores a trained model under a key that hashes everything that
determines the result: the configs, a fingerprint of the data, the torch version and
the source code of this package. Changing any of them changes the key, so the cache
can never serve a model the current code would not have produced; a missing entry is
simply retrained, deterministically, to the same result.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .data import default_cache_dir

META_FILE = "meta.json"
WEIGHTS_FILE = "model.safetensors"


def package_fingerprint() -> str:
    """SHA-256 of every ``.py`` file of the installed ``llmscratch`` package, plus torch's version."""
    h = hashlib.sha256(torch.__version__.encode())
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def tensor_fingerprint(*tensors: torch.Tensor) -> str:
    """SHA-256 of the bytes of some tensors (e.g. the token ids a model trains on)."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_key(parts: dict) -> str:
    """A short hex key for a JSON-serialisable description of a training run and the package code."""
    blob = json.dumps(parts, sort_keys=True, default=str) + package_fingerprint()
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

    Returns:
        ``(model, meta)`` where ``meta["measurements"]`` is what ``fit`` returned and
        ``meta["from_cache"]`` says whether training was skipped.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "checkpoints"
    folder = root / f"{name}-{cache_key(key_parts)}"
    if (folder / META_FILE).exists() and (folder / WEIGHTS_FILE).exists():
        meta = load_checkpoint(folder, model)
        return model, {**meta, "from_cache": True}
    measurements = fit(model)
    meta = {"name": name, "key_parts": key_parts, "measurements": measurements}
    save_checkpoint(folder, model, json.loads(json.dumps(meta, default=str)))
    return model, {**meta, "from_cache": False}
