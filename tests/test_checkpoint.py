"""Checkpoints: safetensors round trip (tied weights included) and the keyed training cache."""

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import llmscratch
from llmscratch.checkpoint import (
    CheckpointError,
    cache_key,
    code_text,
    load_checkpoint,
    save_checkpoint,
    train_or_load,
)
from llmscratch.gpt import GPT, GPTConfig

REPO = Path(__file__).resolve().parents[1]


def tiny_gpt(seed: int) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))


def test_round_trip_with_tied_weights(tmp_path):
    model, other = tiny_gpt(0), tiny_gpt(1)
    save_checkpoint(tmp_path / "ck", model, {"note": "tied"})
    meta = load_checkpoint(tmp_path / "ck", other)
    x = torch.randint(0, 11, (2, 8))
    assert meta == {"note": "tied"}
    assert torch.equal(model(x)[0], other(x)[0])
    assert other.lm_head.weight is other.transformer.wte.weight  # still tied after loading
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["ck"]  # no temporary folder


def test_train_or_load_trains_once_then_loads(tmp_path):
    calls = []

    def fit(m):
        calls.append(1)
        with torch.no_grad():
            m.lm_head.weight.add_(1.0)
        return {"loss": 1.5}

    key = {"config": {"n": 1}}
    trained, meta1 = train_or_load("t", tiny_gpt(0), fit, key, cache_dir=tmp_path)
    loaded, meta2 = train_or_load("t", tiny_gpt(5), fit, key, cache_dir=tmp_path)
    assert len(calls) == 1 and not meta1["from_cache"] and meta2["from_cache"]
    assert meta2["measurements"] == {"loss": 1.5}
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), loaded.state_dict().values()))
    (entry,) = [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")]  # no temporary folder left
    assert entry.name.startswith("t-")
    stored = json.loads((entry / "meta.json").read_text())  # plain JSON, no pickle
    assert stored["meta"] == {"name": "t", "key_parts": key, "measurements": {"loss": 1.5}}
    assert set(stored["sha256"]) == {"model.safetensors", "meta"}


def test_cache_key_changes_with_what_made_the_model():
    assert cache_key({"lr": 1e-3}) == cache_key({"lr": 1e-3})
    assert cache_key({"lr": 1e-3}) != cache_key({"lr": 2e-3})


def _closure(*roots: str) -> set[str]:
    from llmscratch.checkpoint import code_closure

    package = Path(llmscratch.__file__).parent
    return {p.relative_to(package).as_posix() for p in code_closure(roots)}


def test_code_closure_follows_package_imports():
    from llmscratch.checkpoint import code_closure

    names = _closure("recipes.pretrain")
    assert {"recipes/pretrain.py", "gpt.py", "attention.py", "train.py", "train_result.py", "checkpoint.py",
            "lm.py", "objectives.py", "validate.py"} <= names
    assert {"bpe.py", "merges.py", "byte_bpe.py", "bigram.py", "sft.py", "dpo.py", "logprobs.py",
            "preference_data.py", "tasks.py", "task_records.py"}.isdisjoint(names)  # never imported
    assert _closure("byte_bpe") >= {"byte_bpe.py", "bpe.py", "merges.py"}  # absolute imports
    assert {"dpo.py", "logprobs.py", "preference_data.py", "tasks.py", "task_records.py"} <= _closure("recipes.align")
    assert "gpt.py" not in _closure("byte_bpe")
    assert "vocab.py" in _closure("llmscratch.vocab") <= {"vocab.py", "validate.py"}
    with pytest.raises(ValueError, match="code_roots"):
        code_closure(["no_such_module"])
    with pytest.raises(ValueError, match="code_roots"):
        code_closure(["recipes.no_such_module"])


def test_code_closure_handles_subpackages():
    """Dotted roots, ``from ..x import y``, ``from .sibling import y``, ``from . import sibling``,
    and a package's ``__init__``: checked on the real recipes package."""
    assert "recipes/instruct.py" in _closure("recipes.align")  # from .instruct import ...
    assert "train.py" in _closure("recipes.align")  # from ..train import ...
    assert "recipes/__init__.py" not in _closure("recipes.pretrain")
    package = _closure("recipes")  # the package's __init__ re-exports its three modules
    assert {"recipes/__init__.py", "recipes/pretrain.py", "recipes/instruct.py", "recipes/align.py"} <= package
    assert _closure("recipes.pretrain") < package


def test_cache_key_hashes_only_the_code_roots_closure():
    from llmscratch.checkpoint import package_fingerprint

    assert package_fingerprint(["vocab"]) != package_fingerprint(["recipes.pretrain"])
    assert package_fingerprint(["vocab"]) == package_fingerprint(["llmscratch.vocab"])
    assert package_fingerprint(["recipes.pretrain"]) == package_fingerprint(["llmscratch.recipes.pretrain"])
    assert cache_key({"a": 1}, ["vocab"]) != cache_key({"a": 1})


def test_code_text_ignores_docstrings_and_comments_but_not_code(tmp_path):
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text('"""Module."""\n\ndef f(x):\n    """Doc."""\n    return x + 1  # one\n')
    b.write_text('"""Another module text."""\n\n\ndef f(x):\n    """Other doc."""\n    # a comment\n    return x + 1\n')
    c.write_text('def f(x):\n    return x + 2\n')
    assert code_text(a) == code_text(b)
    assert code_text(a) != code_text(c)
    a.write_text('def f(x):\n    """Only a docstring."""\n')
    assert "Pass" in code_text(a)  # a body that was only a docstring stays a valid tree


# ---------------------------------------------------------------------------------------
# Faults: nothing lost, every damaged entry detected, one trainer per key.

def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if not p.name.endswith(".lock")}


def test_save_never_deletes_files_it_did_not_write(tmp_path, monkeypatch):
    model = tiny_gpt(0)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="notes.txt"):
        save_checkpoint(mine, model, {})
    assert (mine / "notes.txt").read_text() == "keep me" and _files(mine) == {"notes.txt"}
    monkeypatch.chdir(mine)  # "." is the working directory: refused, not emptied
    with pytest.raises(ValueError, match="did not write"):
        save_checkpoint(".", model, {})
    assert _files(mine) == {"notes.txt"}
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        save_checkpoint(tmp_path / "afile", model, {})
    assert (tmp_path / "afile").read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder is fine
    save_checkpoint(empty, model, {"a": 1})
    assert _files(empty) == {"model.safetensors", "meta.json"}


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_saved_folder_gets_the_users_normal_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        folder = save_checkpoint(tmp_path / "ck", tiny_gpt(0), {})
    finally:
        os.umask(old)
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (folder / "meta.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_saving_over_a_checkpoint_replaces_it_and_leaves_no_temporary_files(tmp_path):
    folder = tmp_path / "ck"
    save_checkpoint(folder, tiny_gpt(0), {"v": 0})
    save_checkpoint(folder, tiny_gpt(1), {"v": 1})
    other = tiny_gpt(2)
    assert load_checkpoint(folder, other) == {"v": 1}
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), tiny_gpt(1).state_dict().values()))
    assert _files(tmp_path) == {"ck"}


def test_non_finite_weights_are_never_saved(tmp_path):
    model = tiny_gpt(0)
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="not finite"):
        save_checkpoint(tmp_path / "ck", model, {})
    assert not (tmp_path / "ck").exists()


def _write_raw(folder: Path, state: dict, meta: dict) -> None:
    """A checkpoint written by hand with correct hashes (to test checks beyond the hashes)."""
    from safetensors.torch import save_file

    from llmscratch.checkpoint import _meta_sha256
    from llmscratch.sources import sha256_file as _sha256_file

    folder.mkdir()
    save_file(state, str(folder / "model.safetensors"))
    record = {"format": 2, "meta": meta, "sha256": {"model.safetensors": _sha256_file(folder / "model.safetensors"),
                                                    "meta": _meta_sha256(meta)}}
    (folder / "meta.json").write_text(json.dumps(record))


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_meta(path: Path) -> None:
    record = json.loads(path.read_text())
    record["meta"]["measurements"]["loss"] = 0.1  # a better number than the run measured
    path.write_text(json.dumps(record))


def _state_with(change) -> Callable:
    def damage(folder: Path) -> None:
        state = {k: v.clone() for k, v in tiny_gpt(0).state_dict().items() if k != "lm_head.weight"}
        change(state)
        meta = json.loads((folder / "meta.json").read_text())["meta"]
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
        _write_raw(folder, state, meta)
    return damage


def _nan(state):
    state["transformer.wte.weight"][0, 0] = float("nan")


def _double(state):
    state["transformer.wte.weight"] = state["transformer.wte.weight"].double()


def _drop(state):
    del state["transformer.wte.weight"]


W, M = "model.safetensors", "meta.json"
DAMAGE = {  # name -> (damage(folder), can the cache delete the entry and retrain?)
    "weights truncated": (lambda f: (f / W).write_bytes((f / W).read_bytes()[:100]), True),
    "weights empty": (lambda f: (f / W).write_bytes(b""), True),
    "weights header byte flipped": (lambda f: _flip(f / W, 12), True),
    "weights data byte flipped": (lambda f: _flip(f / W, -1), True),
    "weights missing": (lambda f: (f / W).unlink(), True),
    "weights a folder": (lambda f: ((f / W).unlink(), (f / W).mkdir()), False),
    "meta truncated": (lambda f: (f / M).write_text((f / M).read_text()[:30]), True),
    "meta not an object": (lambda f: (f / M).write_text("[1, 2]"), True),
    "meta not utf-8": (lambda f: (f / M).write_bytes(b"\xff\xfe{"), True),
    "meta missing": (lambda f: (f / M).unlink(), True),
    "meta a folder": (lambda f: ((f / M).unlink(), (f / M).mkdir()), False),
    "measurement edited": (lambda f: _edit_meta(f / M), True),
    "nan weights (hashes redone)": (_state_with(_nan), True),
    "wrong dtype (hashes redone)": (_state_with(_double), True),
    "missing tensor (hashes redone)": (_state_with(_drop), True),
    "foreign file added": (lambda f: (f / "extra.bin").write_bytes(b"x"), None),
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_every_damaged_entry_is_detected(tmp_path, damage):
    hurt, retrainable = DAMAGE[damage]
    calls = []

    def fit(m):
        calls.append(1)
        with torch.no_grad():
            m.lm_head.weight.mul_(0.5)
        return {"loss": 1.5}

    key = {"config": {"n": 1}}
    trained, _ = train_or_load("t", tiny_gpt(0), fit, key, cache_dir=tmp_path)
    expected = {k: v.clone() for k, v in trained.state_dict().items()}
    (entry,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    hurt(entry)
    if retrainable is None:  # a foreign file next to intact files: still a valid entry, loaded
        _, meta = train_or_load("t", tiny_gpt(3), fit, key, cache_dir=tmp_path)
        assert meta["from_cache"] and (entry / "extra.bin").exists()
        return
    probe = tiny_gpt(3)
    before = {k: v.clone() for k, v in probe.state_dict().items()}
    with pytest.raises(CheckpointError, match=str(entry)):
        load_checkpoint(entry, probe)
    assert all(torch.equal(before[k], v) for k, v in probe.state_dict().items())  # untouched
    if retrainable:
        with pytest.warns(RuntimeWarning, match="training it again"):
            model, meta = train_or_load("t", tiny_gpt(0), fit, key, cache_dir=tmp_path)
        assert len(calls) == 2 and not meta["from_cache"]
        assert all(torch.equal(expected[k], v) for k, v in model.state_dict().items())
        _, meta = train_or_load("t", tiny_gpt(3), fit, key, cache_dir=tmp_path)  # and the new entry loads
        assert meta["from_cache"] and meta["measurements"] == {"loss": 1.5}
    else:  # a folder where a file should be: not ours to delete; the error says what to do
        with pytest.raises(CheckpointError, match="delete .* by hand"):
            train_or_load("t", tiny_gpt(0), fit, key, cache_dir=tmp_path)
        assert len(calls) == 1


def test_a_cache_hit_returns_what_the_fresh_run_returned(tmp_path):
    def fit(m):
        return {"losses": (1.0, 2.5), "steps": 3, "nested": {"ok": True, "none": None}}

    _, fresh = train_or_load("t", tiny_gpt(0), fit, {"a": (1, 2)}, cache_dir=tmp_path)
    _, hit = train_or_load("t", tiny_gpt(0), fit, {"a": (1, 2)}, cache_dir=tmp_path)
    assert hit["from_cache"] and not fresh["from_cache"]
    assert {**hit, "from_cache": None} == {**fresh, "from_cache": None}
    assert fresh["measurements"]["losses"] == [1.0, 2.5]  # a tuple is a list on both paths
    assert type(hit["measurements"]["steps"]) is int


@pytest.mark.parametrize("bad,error", [
    ({"loss": torch.tensor(1.5)}, TypeError),
    ({"loss": float("nan")}, ValueError),
    ({"loss": float("inf")}, ValueError),
    ({1: 2.0}, TypeError),
    ({"x": {1, 2}}, TypeError),
    ({"x": object()}, TypeError),
], ids=["tensor", "nan", "inf", "int key", "set", "object"])
def test_measurements_that_are_not_plain_numbers_are_refused_and_not_cached(tmp_path, bad, error):
    with pytest.raises(error, match="measurements"):
        train_or_load("t", tiny_gpt(0), lambda m: bad, {"a": 1}, cache_dir=tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_a_run_with_non_finite_weights_is_not_cached(tmp_path):
    def fit(m):
        with torch.no_grad():
            m.lm_head.weight.fill_(float("inf"))
        return {"loss": 1.0}

    with pytest.raises(FloatingPointError):
        train_or_load("t", tiny_gpt(0), fit, {"a": 1}, cache_dir=tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


@pytest.mark.parametrize("name", ["../../x", "/abs/path", "", "a/b", ".hidden", "x" * 101, "a..b", "nul\x00",
                                  "sp ace", 3])
def test_checkpoint_names_cannot_leave_the_cache(tmp_path, name):
    with pytest.raises(ValueError, match="name"):
        train_or_load(name, tiny_gpt(0), lambda m: {}, {"a": 1}, cache_dir=tmp_path / "cache")
    assert not any(tmp_path.rglob("*.safetensors"))


@pytest.mark.parametrize("roots,error", [
    (["../data"], ValueError), (["/etc/passwd"], ValueError), (["recipes/pretrain"], ValueError),
    ([".vocab"], ValueError), (["vocab.py"], ValueError), (["no_such_module"], ValueError), ("vocab", TypeError),
    ([3], ValueError),
])
def test_code_roots_cannot_read_outside_the_package(roots, error):
    from llmscratch.checkpoint import code_closure

    with pytest.raises(error, match="code_roots"):
        code_closure(roots)


def test_cache_key_hashes_tensors_by_their_bytes():
    a = torch.arange(2000, dtype=torch.float32)
    b = a.clone()
    b[1000] += 1
    assert repr(a) == repr(b)  # what json.dumps(default=str) used to hash
    assert cache_key({"t": a}) != cache_key({"t": b})
    assert cache_key({"t": a}) == cache_key({"t": a.clone()})
    assert cache_key({"t": a}) != cache_key({"t": a.double()})  # dtype counts
    assert cache_key({"t": a}) != cache_key({"t": a.reshape(40, 50)})  # shape counts
    assert cache_key({"t": torch.ones(3, dtype=torch.bfloat16)}) != cache_key({"t": torch.ones(3)})
    assert cache_key({"a": 1, "b": 2}) == cache_key({"b": 2, "a": 1})


@pytest.mark.parametrize("parts,error", [
    ({"s": {1, 2}}, TypeError), ({"p": Path("x")}, TypeError), ({"f": float("nan")}, ValueError),
    ({1: "a"}, TypeError), ({"__tensor__": 1}, TypeError), ([1, 2], TypeError), ({"o": object()}, TypeError),
], ids=["set", "path", "nan", "int key", "reserved key", "not a dict", "object"])
def test_cache_key_refuses_what_it_cannot_hash_canonically(parts, error):
    with pytest.raises(error, match="key_parts"):
        cache_key(parts)


def test_cache_key_is_the_same_in_another_interpreter():
    import subprocess
    import sys

    code = ("import torch; from llmscratch.checkpoint import cache_key; "
            "print(cache_key({'t': torch.arange(5), 'cfg': {'b': [1, 2.5], 'a': 'x'}}, ['vocab']))")
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == cache_key({"t": torch.arange(5), "cfg": {"a": "x", "b": [1, 2.5]}}, ["vocab"])


_WORKER = r"""
import json, sys, time, torch
from llmscratch.checkpoint import train_or_load
from llmscratch.gpt import GPT, GPTConfig
cache, log = sys.argv[1], sys.argv[2]
def fit(m):
    with open(log, "a") as f:
        f.write("trained\n")
    time.sleep(1.5)
    with torch.no_grad():
        m.lm_head.weight.mul_(0.5)
    return {"loss": 1.0}
torch.manual_seed(0)
model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
_, meta = train_or_load("race", model, fit, {"k": 1}, cache_dir=cache)
print(json.dumps({"from_cache": meta["from_cache"], "w": float(model.lm_head.weight.sum())}))
"""


def test_two_processes_on_one_key_train_once(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = tmp_path / "log.txt"
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path / "cache"), str(log)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    results = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert log.read_text().count("trained") == 1  # one trained, the other waited and loaded
    assert sorted(r["from_cache"] for r in results) == [False, True]
    assert results[0]["w"] == results[1]["w"]


_STRESS = r"""
import sys, torch
from llmscratch.checkpoint import load_checkpoint, save_checkpoint
from llmscratch.gpt import GPT, GPTConfig
folder, role, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
failures = 0
for i in range(n):
    try:
        if role == "save":
            save_checkpoint(folder, model, {"i": i})
        else:
            load_checkpoint(folder, model)
    except Exception as exc:
        failures += 1
        print(type(exc).__name__, exc, file=sys.stderr)
print(failures)
"""


def test_concurrent_saves_and_loads_of_one_folder_never_fail(tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "ck"
    save_checkpoint(folder, tiny_gpt(0), {"i": -1})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _STRESS, str(folder), role, "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for role in ("save", "save", "load", "load")]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [o[0].strip() for o in outs] == ["0", "0", "0", "0"], [o[1][-1000:] for o in outs]
    assert _files(tmp_path) == {"ck"}  # no temporary folder left behind
