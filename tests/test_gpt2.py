"""GPT-2's sizes, costs, loader and command line (llmscratch.gpt2, llmscratch.cli).

Oracles: transformers' GPT2LMHeadModel (parameter counts on the meta device; tiny random
models saved with save_pretrained for the loader), torch.utils.flop_counter for the FLOPs.
Nothing is downloaded: the offline paths are tested with ``local_files_only`` and
``HF_HUB_OFFLINE``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import GPT2Config, GPT2LMHeadModel

from llmscratch import cli
from llmscratch.bpc import bits_per_character
from llmscratch.gpt import GPT, GPTConfig
from llmscratch.gpt2 import (
    GPT2_SIZES,
    HUB_REVISIONS,
    PUBLISHED_PARAMS_M,
    WEIGHTS_ENV,
    GPT2WeightsUnavailable,
    activation_bytes,
    find_weights,
    flops_per_token,
    gpt2_config,
    load_gpt2,
    local_weights,
    parameter_count,
)
from llmscratch.train import evaluate
from llmscratch.windows import TokenStream

from test_hf_gpt2 import CONFIGS, hf_model, random_ids

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", list(GPT2_SIZES))
def test_parameter_counts_match_built_models_and_published(name):
    config = gpt2_config(name)
    counts = parameter_count(config)
    n_layer, n_head, n_embd = GPT2_SIZES[name]
    with torch.device("meta"):
        ours = GPT(config)
        hf_tied = GPT2LMHeadModel(GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=n_embd))
        hf_untied = GPT2LMHeadModel(GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                                               tie_word_embeddings=False))
    assert counts["total"] == ours.num_parameters() == hf_tied.num_parameters()
    assert round(counts["total"] / 1e6) == PUBLISHED_PARAMS_M[name]
    untied = parameter_count(GPTConfig(**{**config.to_dict(), "tie_weights": False}))
    assert untied["total"] == counts["total"] + 50257 * n_embd == hf_untied.num_parameters()
    assert counts["non_embedding"] == ours.num_parameters(exclude_embeddings=True)


def test_published_small_count_exactly():
    assert parameter_count(gpt2_config("gpt2"))["total"] == 124_439_808


@pytest.mark.parametrize("shape", [(97, 32, 3, 4, 48, True), (50, 16, 1, 2, 8, False), (64, 24, 2, 1, 16, True)])
@pytest.mark.parametrize("seq_len", [1, 7, 16])
def test_flops_match_flop_counter(shape, seq_len):
    V, T, L, nh, C, tied = shape
    config = GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=nh, n_embd=C, tie_weights=tied)
    model = GPT(config)
    idx = torch.zeros(2, seq_len, dtype=torch.long)
    flops = flops_per_token(config, seq_len)
    with FlopCounterMode(display=False) as forward:
        model(idx)
    with FlopCounterMode(display=False) as step:
        model(idx, idx)[1].backward()
    assert forward.get_total_flops() == 2 * seq_len * flops["forward"]
    assert step.get_total_flops() == 2 * seq_len * flops["training"]


def test_flops_bad_input():
    with pytest.raises(ValueError, match="seq_len"):
        flops_per_token(gpt2_config(), 1025)
    with pytest.raises(TypeError, match="config"):
        flops_per_token("gpt2")
    with pytest.raises(ValueError, match="name must be one of"):
        gpt2_config("gpt3")


def test_activation_bytes_on_meta_equal_real():
    config = GPTConfig(vocab_size=61, block_size=32, n_layer=2, n_head=4, n_embd=32)
    torch.manual_seed(0)
    real = activation_bytes(GPT(config), 3, 20)
    with torch.device("meta"):
        meta_model = GPT(config)
    assert real == activation_bytes(meta_model, 3, 20) > 0
    assert 1.9 * real < activation_bytes(meta_model, 6, 20) <= 2 * real  # about linear in the batch
    with pytest.raises(ValueError, match="seq_len"):
        activation_bytes(meta_model, 1, 33)
    with pytest.raises(TypeError, match="GPT"):
        activation_bytes(torch.nn.Linear(2, 2))


def test_bits_per_character_is_nats_per_token_rescaled():
    config = GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16)
    torch.manual_seed(0)
    model = GPT(config).eval()
    ids = torch.randint(0, 20, (101,), generator=torch.Generator().manual_seed(0))
    nats = evaluate(model, TokenStream(ids, 8, targets="all"))["loss"]
    # one character per token: bits per character = nats per token / ln 2
    assert bits_per_character(model, ids, 100) == pytest.approx(nats / math.log(2))
    # two characters per token: half as many bits per character
    assert bits_per_character(model, ids, 200) == pytest.approx(nats / math.log(2) / 2)
    with pytest.raises(ValueError, match="n_chars"):
        bits_per_character(model, ids, 0)


# -- loading --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", CONFIGS, ids=lambda c: "tied" if c[5] else "untied")
def test_load_from_folder_equals_hf(tmp_path, shape):
    hf = hf_model(*shape)
    hf.save_pretrained(tmp_path)
    ours = load_gpt2(tmp_path)
    assert not ours.training
    assert all(p.device.type == "cpu" for p in ours.parameters())
    assert ours.num_parameters() == hf.num_parameters()
    assert (ours.lm_head.weight is ours.transformer.wte.weight) == shape[5]
    idx = random_ids(shape[0], 2, shape[1])
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], hf(idx).logits)


def test_load_from_env_folder(tmp_path, monkeypatch):
    hf = hf_model(*CONFIGS[0])
    hf.save_pretrained(tmp_path / "gpt2")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    assert local_weights("gpt2") == tmp_path / "gpt2"
    assert local_weights("gpt2-xl") is None
    idx = random_ids(CONFIGS[0][0], 1, 9)
    with torch.no_grad():
        torch.testing.assert_close(load_gpt2("gpt2")(idx)[0], hf(idx).logits)


def test_offline_error_says_how_to_get_the_weights(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(GPT2WeightsUnavailable) as info:
        find_weights("gpt2", cache_dir=tmp_path, local_files_only=True)
    message = str(info.value)
    assert "hf download openai-community/gpt2" in message and HUB_REVISIONS["gpt2"] in message
    assert WEIGHTS_ENV in message
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither"):
        find_weights(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        find_weights(tmp_path)
    with pytest.raises(TypeError, match="model"):
        find_weights(3)


# -- the command line -------------------------------------------------------------------


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "llmscratch", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env={**os.environ, **(env or {})}, timeout=120)


def test_cli_help():
    out = _run("--help")
    assert out.returncode == 0 and "generate" in out.stdout and "bpc" in out.stdout
    out = _run("generate", "--help")
    assert out.returncode == 0 and "--max-new-tokens" in out.stdout


def test_cli_offline_error(tmp_path, mirror_dir):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path), WEIGHTS_ENV: str(tmp_path / "none")}
    out = _run("generate", "Hello", env=env)
    assert out.returncode == 2
    assert "hf download openai-community/gpt2" in out.stderr and "Traceback" not in out.stderr


def test_cli_rejects_bad_numbers(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["generate", "Hi", "--max-new-tokens", "0"])
    assert info.value.code == 2
    assert "must be > 0" in capsys.readouterr().err


@pytest.fixture
def tiny_gpt2_folder(tmp_path):
    """A random GPT-2 with GPT-2's vocabulary (so the real tokenizer fits) but 8 channels."""
    hf = hf_model(50257, 64, 1, 2, 8, True)
    hf.save_pretrained(tmp_path)
    return tmp_path


def test_cli_generate_and_bpc_with_weights(tiny_gpt2_folder, mirror_dir, capsys):
    assert cli.main(["generate", "ROMEO:", "--model", str(tiny_gpt2_folder), "--max-new-tokens", "5",
                     "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ROMEO:")
    result = json.loads(out[-1])
    assert result["new_tokens"] == 5 and result["tokens_per_second"] > 0 and result["kv_cache"]
    assert cli.main(["generate", "ROMEO:", "--model", str(tiny_gpt2_folder), "--max-new-tokens", "5",
                     "--no-cache", "--json"]) == 0
    uncached = capsys.readouterr().out.splitlines()
    assert uncached[0] == out[0] and not json.loads(uncached[-1])["kv_cache"]  # same text, sampled
    assert cli.main(["bpc", "--model", str(tiny_gpt2_folder), "--max-chars", "500", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    # a random model is near uniform over 50,257 ids: about log2(50257) bits per token
    chars_per_token = result["heldout_chars"] / (result["heldout_tokens"] - 1)
    assert result["bits_per_char"] == pytest.approx(math.log2(50257) / chars_per_token, rel=0.1)


def test_cli_prompt_special_token_is_text(tiny_gpt2_folder, mirror_dir, capsys):
    assert cli.main(["generate", "<|endoftext|>", "--model", str(tiny_gpt2_folder), "--max-new-tokens", "1"]) == 0
    tokenizer = cli.gpt2_tokenizer()
    assert 50256 not in tokenizer.encode("<|endoftext|>", allowed_special="none")
