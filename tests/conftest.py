"""Shared pytest fixtures.

The tests never touch the network. Real data comes from the offline mirror folder
named by ``LLMSCRATCH_DATA_MIRROR`` (CI points it at ``../shared/data``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _mirror_dir() -> Path:
    env = os.environ.get("LLMSCRATCH_DATA_MIRROR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """The offline data mirror (a folder holding every file the book downloads)."""
    path = _mirror_dir()
    if not path.is_dir():
        pytest.fail(f"data mirror {path} not found; set LLMSCRATCH_DATA_MIRROR")
    os.environ.setdefault("LLMSCRATCH_DATA_MIRROR", str(path))  # no test downloads
    return path


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny test models run faster on one thread, and far faster on a busy machine."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty download cache and reads data from the mirror."""
    monkeypatch.setenv("LLMSCRATCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("LLMSCRATCH_DATA_MIRROR", str(_mirror_dir()))


@pytest.fixture(scope="session")
def task_words(mirror_dir):
    """The word tasks' words, built from the mirror's Tiny Shakespeare as the recipes build them."""
    from llmscratch.tasks import TaskWords

    return TaskWords.from_text((mirror_dir / "tinyshakespeare.txt").read_text(encoding="utf-8"))
