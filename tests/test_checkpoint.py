"""Checkpoints: safetensors round trip (tied weights included) and the keyed training cache."""

import json
from pathlib import Path

import pytest
import torch

import llmscratch
from llmscratch.checkpoint import cache_key, code_text, load_checkpoint, save_checkpoint, train_or_load
from llmscratch.gpt import GPT, GPTConfig


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
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary folder left


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
    (entry,) = tmp_path.iterdir()  # one entry, no temporary folder left
    assert entry.name.startswith("t-")
    stored = json.loads((entry / "meta.json").read_text())  # plain JSON, no pickle
    assert stored == {"name": "t", "key_parts": key, "measurements": {"loss": 1.5}}


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
    assert {"recipes/pretrain.py", "gpt.py", "attention.py", "train.py", "checkpoint.py", "lm.py",
            "objectives.py", "validate.py"} <= names
    assert {"bpe.py", "byte_bpe.py", "bigram.py", "sft.py", "dpo.py"}.isdisjoint(names)  # never imported
    assert _closure("byte_bpe") >= {"byte_bpe.py", "bpe.py"}  # absolute import
    assert "gpt.py" not in _closure("byte_bpe")
    assert _closure("llmscratch.vocab") == {"vocab.py"}
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
