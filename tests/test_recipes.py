"""Tests for llmscratch.recipes: the reference run's configs, its data split, and its cache."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from llmscratch.checkpoint import tensor_fingerprint, train_or_load
from llmscratch.gpt import GPT, GPTConfig
from llmscratch.recipes import ShakespeareData, shakespeare_char_data, shakespeare_gpt_configs
from llmscratch.train import TrainConfig, train
from llmscratch.windows import TokenStream


@pytest.fixture(scope="module")
def shakespeare(mirror_dir) -> ShakespeareData:
    return shakespeare_char_data((mirror_dir / "tinyshakespeare.txt").read_text(encoding="utf-8"))


def test_configs_are_valid_and_fresh():
    model_config, train_config = shakespeare_gpt_configs(65)
    assert model_config.vocab_size == 65
    # Round trips re-run __post_init__ validation.
    assert GPTConfig.from_dict(model_config.to_dict()) == model_config
    assert TrainConfig(**train_config.to_dict()) == train_config
    assert model_config.dropout == 0.0 and model_config.use_fused_attention
    assert 0 < train_config.warmup_steps < train_config.max_steps
    # The final full evaluation is the figure that matters; estimates must stay rare and cheap.
    assert train_config.eval_interval >= 100 and train_config.eval_batches <= 5
    # Fresh objects: changing one call's config does not leak into the next.
    model_config.n_layer = 99
    train_config.lr = 1.0
    again_model, again_train = shakespeare_gpt_configs(65)
    assert again_model.n_layer != 99 and again_train.lr != 1.0
    with pytest.raises(ValueError, match="vocab_size"):
        shakespeare_gpt_configs(0)


def test_data_splits_90_10_by_position(shakespeare):
    data = shakespeare
    n = len(data.text)
    assert data.vocab.vocab_size == 65
    assert len(data.train_ids) == int(0.9 * n)
    assert len(data.train_ids) + len(data.val_ids) == n
    assert data.train_ids.dtype == data.val_ids.dtype == torch.int64
    # Position split: the held-out ids decode to exactly the last 10% of the file.
    assert data.vocab.decode(data.val_ids[:200].tolist()) == data.text[int(0.9 * n) :][:200]
    assert data.vocab.decode(data.train_ids[-50:].tolist()) == data.text[int(0.9 * n) - 50 : int(0.9 * n)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.text = "x"  # type: ignore[misc]


def test_train_or_load_reloads_the_same_weights(tmp_path, shakespeare):
    """A tiny stand-in for the recipe: trains once, then comes back from the cache."""
    ids = shakespeare.train_ids[:2000]
    recipe_config, _ = shakespeare_gpt_configs(65)  # same flags (tied weights, bias, ...), tiny sizes
    config = dataclasses.replace(recipe_config, block_size=16, n_layer=1, n_head=2, n_embd=16)
    train_config = TrainConfig(max_steps=5, batch_size=4, lr=1e-2, eval_interval=5, eval_batches=1)
    key_parts = {"model": config.to_dict(), "train": train_config.to_dict(), "data": tensor_fingerprint(ids)}
    calls = []

    def fit(model):
        calls.append(1)
        stream = TokenStream(ids, config.block_size, targets="all")
        return train(model, stream, stream, train_config, progress=False).to_dict()

    torch.manual_seed(0)
    first, meta1 = train_or_load("tiny-gpt", GPT(config), fit, key_parts, cache_dir=tmp_path)
    torch.manual_seed(1)  # a different init: only the cache can make the weights equal
    fresh = GPT(config)
    assert not torch.equal(fresh.lm_head.weight, first.lm_head.weight)
    second, meta2 = train_or_load("tiny-gpt", fresh, fit, key_parts, cache_dir=tmp_path)
    assert len(calls) == 1
    assert (meta1["from_cache"], meta2["from_cache"]) == (False, True)
    assert meta2["measurements"]["final_val_loss"] == pytest.approx(meta1["measurements"]["final_val_loss"])
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
