"""Tests for llmscratch.recipes: the reference runs' configs, their data, and their cache.

The expensive runs (the chapter 4 GPT, SFT, DPO) are exercised through their own
arguments only: tiny ``train_config``s, ``cache_dir``/``base_cache_dir`` in ``tmp_path``,
and ``sft=`` for DPO. No module global is patched.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch

import llmscratch
from llmscratch import recipes
from llmscratch.checkpoint import code_closure, tensor_fingerprint, train_or_load
from llmscratch.dpo import DPOConfig
from llmscratch.gpt import GPT, GPTConfig
from llmscratch.mlp import MLPConfig
from llmscratch.objectives import next_token_loss
from llmscratch.recipes import align, instruct, pretrain
from llmscratch.recipes import ShakespeareData, shakespeare_char_data, shakespeare_gpt_configs
from llmscratch.sft import text_loss
from llmscratch.task_data import HANDMADE
from llmscratch.tasks import PAIR_KINDS, TASKS, TaskWords
from llmscratch.train import TrainConfig, TrainResult, train
from llmscratch.windows import TokenStream


@pytest.fixture(scope="module")
def shakespeare(mirror_dir) -> ShakespeareData:
    return shakespeare_char_data((mirror_dir / "tinyshakespeare.txt").read_text(encoding="utf-8"))


# -- pretrain (chapters 1-4) ---------------------------------------------------------------


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
    assert train_config.num_threads == 2  # the thread count is a setting of the run, not a module global
    assert not hasattr(pretrain, "TRAIN_THREADS")
    # Fresh objects: changing one call's config does not leak into the next.
    model_config.n_layer = 99
    train_config.lr = 1.0
    again_model, again_train = shakespeare_gpt_configs(65)
    assert again_model.n_layer != 99 and again_train.lr != 1.0
    with pytest.raises(ValueError, match="vocab_size"):
        shakespeare_gpt_configs(0)


@pytest.mark.parametrize("make", [pretrain.names_mlp_configs, pretrain.shakespeare_mlp_configs])
def test_mlp_configs_are_valid(make):
    model_config, train_config = make(27)
    assert isinstance(model_config, MLPConfig) and model_config.vocab_size == 27
    assert MLPConfig(**model_config.to_dict()) == model_config
    assert TrainConfig(**train_config.to_dict()) == train_config


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
    train_config = TrainConfig(max_steps=5, batch_size=4, lr=1e-2, eval_interval=5, eval_batches=1, num_threads=1)
    key_parts = {"model": config.to_dict(), "train": train_config.to_dict(), "data": tensor_fingerprint(ids)}
    calls = []

    def fit(model):
        calls.append(1)
        stream = TokenStream(ids, config.block_size, targets="all")
        return train(model, next_token_loss, stream, stream, train_config, progress=False).to_dict()

    torch.manual_seed(0)
    first, meta1 = train_or_load("tiny-gpt", GPT(config), fit, key_parts, cache_dir=tmp_path)
    torch.manual_seed(1)  # a different init: only the cache can make the weights equal
    fresh = GPT(config)
    assert not torch.equal(fresh.lm_head.weight, first.lm_head.weight)
    second, meta2 = train_or_load("tiny-gpt", fresh, fit, key_parts, cache_dir=tmp_path)
    assert len(calls) == 1
    assert (meta1["from_cache"], meta2["from_cache"]) == (False, True)
    assert meta2["measurements"]["final_val"]["loss"] == pytest.approx(meta1["measurements"]["final_val"]["loss"])
    assert TrainResult.from_dict(meta2["measurements"]).steps == [0, 5]
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name


def test_each_recipe_hashes_only_its_own_chapter_and_what_it_imports():
    """A change to chapter 6's code must not retrain chapter 4's or 5's model."""
    assert pretrain.CODE_ROOTS == ("recipes.pretrain",)
    package = Path(llmscratch.__file__).parent
    names = {root: {p.relative_to(package).as_posix() for p in code_closure([root])}
             for root in ("recipes.pretrain", "recipes.instruct", "recipes.align")}
    assert {"recipes/pretrain.py", "train.py", "gpt.py", "objectives.py", "lm.py", "validate.py"} <= names["recipes.pretrain"]
    assert not {"recipes/instruct.py", "recipes/align.py", "sft.py", "dpo.py", "chat.py"} & names["recipes.pretrain"]
    assert {"recipes/instruct.py", "recipes/pretrain.py", "sft.py", "chat.py"} <= names["recipes.instruct"]
    assert not {"recipes/align.py", "dpo.py", "logprobs.py", "preference_data.py"} & names["recipes.instruct"]
    assert {"recipes/align.py", "recipes/instruct.py", "recipes/pretrain.py", "dpo.py"} <= names["recipes.align"]
    assert "recipes/__init__.py" not in names["recipes.align"]  # importing a sibling is not importing the package
    classify = {p.relative_to(package).as_posix() for p in code_closure(["recipes.classify"])}
    assert {"recipes/classify.py", "classify.py", "spam_data.py", "recipes/pretrain.py"} <= classify
    assert not {"recipes/instruct.py", "recipes/align.py", "dpo.py", "lora.py"} & classify
    adapt = {p.relative_to(package).as_posix() for p in code_closure(["recipes.adapt"])}
    assert {"recipes/adapt.py", "recipes/classify.py", "lora.py"} <= adapt


# -- instruct (chapter 5) ---------------------------------------------------------------------


def test_sft_configs():
    data, optim = recipes.sft_configs()
    assert optim.lr < 6e-3  # below the pretraining peak
    draws = optim.max_steps * optim.batch_size / data.n_train
    assert 2.5 < draws < 3.5  # each example drawn about three times, with replacement (the docstring)
    data.n_train = 1
    assert recipes.sft_configs()[0].n_train != 1  # fresh objects
    with pytest.raises(ValueError, match="loss_on"):
        recipes.SFTConfig(loss_on="prompt")
    with pytest.raises(ValueError, match="n_train"):
        recipes.SFTConfig(n_train=0)
    with pytest.raises(TypeError, match="n_val"):
        recipes.SFTConfig(n_val=2.0)
    with pytest.raises(TypeError, match="include_handmade"):
        recipes.SFTConfig(include_handmade=1)
    assert recipes.SFTConfig(mix={"good": 1.0, "terse": 0.0, "wrong": 0.0, "rude": 0.0}).mix.good == 1.0
    with pytest.raises(TypeError, match="tasks"):
        recipes.SFTConfig(tasks="compare")
    with pytest.raises(TypeError, match="tasks"):
        recipes.SFTConfig(tasks=("compare", 1))
    with pytest.raises(ValueError, match="tasks"):
        recipes.SFTConfig(tasks=())
    with pytest.raises(ValueError, match="tasks"):
        recipes.SFTConfig(tasks=("divide",))
    assert recipes.SFTConfig(tasks=["add", "add"]).tasks == ("add", "add")  # a list from JSON


def test_sft_task_cycle_gives_compare_twice_the_share():
    config = recipes.SFTConfig(n_train=100, n_val=18)
    assert config.tasks.count("compare") == 2 and set(config.tasks) == set(TASKS)
    train, val = recipes.sft_examples(config)
    counts = Counter(e.task for e in train)
    assert counts["compare"] == 20 and all(counts[t] == 10 for t in TASKS if t != "compare")
    assert Counter(e.task for e in val) == {t: 2 for t in TASKS}  # held out: every task once
    assert recipes.SFTConfig(**json.loads(json.dumps(config.to_dict()))) == config


def test_task_words_and_datasets(task_words):
    words = recipes.task_words()
    assert isinstance(words, TaskWords) and words == task_words  # Tiny Shakespeare's words, as the tests build them
    tok = recipes.assistant_tokenizer()
    assert tok.vocab_size == 78 and tok.base_vocab_size == 65
    config = recipes.SFTConfig(n_train=30, n_val=12)
    train_set, val_set = recipes.sft_datasets(tok, config, 64)
    assert len(train_set) == 30 + len(HANDMADE) and len(val_set) == 12
    no_handmade, _ = recipes.sft_datasets(tok, dataclasses.replace(config, include_handmade=False), 64)
    assert len(no_handmade) == 30


def test_dpo_configs_and_preference_datasets():
    data, dpo_config, optim = recipes.dpo_configs(0.3)
    assert isinstance(dpo_config, DPOConfig) and dpo_config.beta == 0.3
    assert isinstance(optim, TrainConfig) and optim.eval_batches is None and not optim.eval_train
    assert optim.weight_decay == 0.0  # decay would pull the policy towards zero, not the reference
    assert recipes.MAIN_BETA in recipes.BETAS and recipes.dpo_configs()[1].beta == recipes.MAIN_BETA
    assert TrainConfig(**optim.to_dict()) == optim and DPOConfig(**dpo_config.to_dict()) == dpo_config
    with pytest.raises(ValueError, match="beta"):
        recipes.dpo_configs(-1.0)
    with pytest.raises(ValueError, match="n_train"):
        dataclasses.replace(data, n_train=0)
    with pytest.raises(ValueError, match="seed"):
        recipes.PreferenceDataConfig(seed=-1)
    tok = recipes.assistant_tokenizer()
    train_set, val_set = recipes.preference_datasets(tok, recipes.PreferenceDataConfig(n_train=8, n_val=8), 64)
    assert (len(train_set), len(val_set)) == (8, 8)
    assert all(p.seen_phrasing for p in train_set.pairs)  # training phrasings only
    held = set(recipes.task_words().heldout)
    for p in train_set.pairs:
        if "'" in p.instruction:
            assert p.instruction.split("'")[1] not in held
    assert set(train_set.kinds) == set(PAIR_KINDS)


# -- the expensive runs, in miniature -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_sft(tmp_path_factory, mirror_dir):
    cache_dir = tmp_path_factory.mktemp("sft")
    data = recipes.shakespeare_char_data()
    model_config, _ = shakespeare_gpt_configs(data.vocab.vocab_size)
    torch.manual_seed(0)
    stand_in = GPT(model_config)  # an untrained stand-in for the chapter 4 model, passed in
    kw = dict(sft_config=instruct.SFTConfig(n_train=40, n_val=18),
              train_config=TrainConfig(max_steps=3, batch_size=4, lr=1e-3, eval_interval=3, eval_batches=1,
                                       num_threads=1),
              base=(stand_in, {"measurements": {"final_val": {"loss": 4.2}}}),
              progress=False, cache_dir=cache_dir)
    first = recipes.assistant_sft(**kw)
    second = recipes.assistant_sft(**kw)
    return data, stand_in, first, second


def test_assistant_sft_trains_once_then_loads(tiny_sft):
    data, stand_in, (model, tok, meta), (again, tok2, meta2) = tiny_sft
    assert (meta["from_cache"], meta2["from_cache"]) == (False, True)
    assert tok.vocab_size == model.config.vocab_size == 78 and tok2.vocab_size == 78
    assert not model.training and not again.training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    m = meta2["measurements"]
    assert m["shakespeare_val_loss_before"] == 4.2  # the stand-in's measurement: the base passed in was used
    assert m["n_train_examples"] == 40 + len(HANDMADE)
    assert m["steps"] == [0, 3] and math.isfinite(m["final_val"]["loss"])
    assert TrainResult.from_dict(m).final_val_loss == m["final_val"]["loss"]  # extra keys ignored
    # The stored measurements are those of the weights the cache gives back.
    assert m["shakespeare_val_loss_after"] == pytest.approx(text_loss(again, data.val_ids), rel=1e-5)
    assert m["shakespeare_val_loss_after_old_vocab"] <= m["shakespeare_val_loss_after"]
    # The fine-tuned model started from the stand-in: three small steps stay close to it.
    assert (model.transformer.h[0].attn.c_attn.weight - stand_in.transformer.h[0].attn.c_attn.weight).abs().max() < 0.01


def test_assistant_dpo_trains_once_then_loads(tiny_sft, tmp_path):
    _, _, (model, tok, _), _ = tiny_sft
    sft_before = copy.deepcopy(model.state_dict())
    kw = dict(data_config=align.PreferenceDataConfig(n_train=16, n_val=8), dpo_config=DPOConfig(beta=0.5),
              train_config=TrainConfig(max_steps=2, batch_size=4, lr=1e-3, eval_interval=1, eval_batches=None,
                                       eval_train=False, num_threads=1),
              sft=(model, tok), progress=False, cache_dir=tmp_path)
    policy, reference, tok_out, dmeta = recipes.assistant_dpo(**kw)
    policy2, _, _, dmeta2 = recipes.assistant_dpo(**kw)
    assert tok_out is tok
    assert (dmeta["from_cache"], dmeta2["from_cache"]) == (False, True)
    assert not policy.training and not reference.training
    assert all(torch.equal(a, b) for a, b in zip(policy.state_dict().values(), policy2.state_dict().values()))
    assert all(torch.equal(a, sft_before[k]) for k, a in model.state_dict().items())  # the SFT model is untouched
    assert all(torch.equal(a, sft_before[k]) for k, a in reference.state_dict().items())  # reference = SFT model
    assert not any(p.requires_grad for p in reference.parameters())
    assert not torch.equal(policy.lm_head.weight, model.lm_head.weight)
    m = dmeta2["measurements"]
    assert m["steps"] == [0, 1, 2]
    assert m["val"]["loss"][0] == pytest.approx(math.log(2), abs=1e-5)  # policy == reference at step 0
    assert set(m["accuracy_by_kind"]) == set(PAIR_KINDS)
    assert m["drift"]["token_kl_nats"] > 0
    assert TrainResult.from_dict(m).final_val["count"] == 8
    # beta is part of the key: another beta is another run
    _, _, _, other = recipes.assistant_dpo(**{**kw, "dpo_config": DPOConfig(beta=2.0)})
    assert not other["from_cache"]


# -- classify (chapter 7) -----------------------------------------------------------------------


def test_spam_classifier_trains_once_then_loads(tmp_path, mirror_dir):
    from llmscratch.recipes.classify import ClassifierConfig, spam_classifier, spam_data

    data = recipes.shakespeare_char_data()
    torch.manual_seed(0)
    stand_in = GPT(shakespeare_gpt_configs(data.vocab.vocab_size)[0])
    before = {k: v.clone() for k, v in stand_in.state_dict().items()}
    kw = dict(train_config=TrainConfig(max_steps=2, batch_size=4, lr=1e-3, eval_interval=2, eval_batches=1,
                                       num_threads=1),
              base=stand_in, progress=False, cache_dir=tmp_path)
    config = ClassifierConfig(trainable="last_block", max_windows=2)
    model, meta = spam_classifier(config, **kw)
    again, meta2 = spam_classifier(config, **kw)
    assert (meta["from_cache"], meta2["from_cache"]) == (False, True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert all(torch.equal(before[k], v) for k, v in stand_in.state_dict().items())  # the base is not modified
    assert meta2["measurements"]["n_trainable"] == sum(p.numel() for p in again.parameters() if p.requires_grad)
    assert meta2["measurements"]["steps"] == [0, 2] and not again.training
    assert spam_data(2).train.max_windows == 2 and config.name == "spam-last_block-mean-pretrained-w2-s0"


# -- adapt (chapter 8) --------------------------------------------------------------------------


def test_lora_spam_classifier_caches_only_the_adapter_and_the_head(tmp_path, mirror_dir):
    from safetensors.torch import load_file

    from llmscratch.lora import lora_layers
    from llmscratch.recipes.adapt import LoRAConfig, lora_spam_classifier

    data = recipes.shakespeare_char_data()
    torch.manual_seed(0)
    stand_in = GPT(shakespeare_gpt_configs(data.vocab.vocab_size)[0])
    kw = dict(train_config=TrainConfig(max_steps=2, batch_size=4, lr=1e-2, eval_interval=2, eval_batches=1,
                                       num_threads=1),
              base=stand_in, progress=False, cache_dir=tmp_path)
    config = LoRAConfig(r=2, targets="attn")
    model, meta = lora_spam_classifier(config, **kw)
    again, meta2 = lora_spam_classifier(config, **kw)
    assert (meta["from_cache"], meta2["from_cache"]) == (False, True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert any(layer.lora_B.abs().sum() > 0 for layer in lora_layers(again))  # trained factors came back
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("spam-lora-attn-r2-s0")]
    saved = load_file(str(folder / "model.safetensors"))
    n_layer = stand_in.config.n_layer
    assert len(saved) == 2 * 2 * n_layer + 2  # A and B of c_attn and c_proj per block, head weight and bias
    assert sum(t.numel() for t in saved.values()) == meta2["measurements"]["n_trainable"]
    assert meta2["measurements"]["n_trainable"] < 0.05 * meta2["measurements"]["n_parameters"]


def test_lora_classifier_train_config_is_chapter_7s_at_a_higher_rate():
    import dataclasses

    from llmscratch.recipes.adapt import lora_classifier_train_config
    from llmscratch.recipes.classify import classifier_train_config

    lora, full = lora_classifier_train_config(3), classifier_train_config(3)
    assert (lora.lr, lora.min_lr, lora.seed) == (1e-2, 1e-3, 3)
    assert dataclasses.replace(lora, lr=full.lr, min_lr=full.min_lr) == full  # only the rate differs
    assert lora_classifier_train_config() is not lora_classifier_train_config()  # fresh objects


def test_lora_assistant_sft_caches_only_the_trainable_tensors(tmp_path, mirror_dir):
    from safetensors.torch import load_file

    from llmscratch.lora import lora_layers
    from llmscratch.recipes.adapt import LoRAConfig
    from llmscratch.recipes.lora_sft import lora_assistant_sft, lora_sft_configs

    lora, optim = lora_sft_configs()
    assert (lora.targets, optim.max_steps) == ("attn_mlp", recipes.sft_configs()[1].max_steps)
    data = recipes.shakespeare_char_data()
    torch.manual_seed(0)
    stand_in = GPT(shakespeare_gpt_configs(data.vocab.vocab_size)[0])
    before = [t.clone() for t in stand_in.state_dict().values()]
    kw = dict(sft_config=instruct.SFTConfig(n_train=40, n_val=18),
              train_config=TrainConfig(max_steps=2, batch_size=4, lr=1e-2, eval_interval=2, eval_batches=1,
                                       num_threads=1),
              base=(stand_in, {"measurements": {"final_val": {"loss": 4.2}}}), progress=False, cache_dir=tmp_path)
    config = LoRAConfig(r=2, targets="attn_mlp")
    model, tok, meta = lora_assistant_sft(config, **kw)
    again, _, meta2 = lora_assistant_sft(config, **kw)
    assert (meta["from_cache"], meta2["from_cache"]) == (False, True)
    assert all(torch.equal(a, b) for a, b in zip(before, stand_in.state_dict().values()))  # base untouched
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert any(layer.lora_B.abs().sum() > 0 for layer in lora_layers(again))
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("assistant-sft-lora-attn_mlp-r2-s0")]
    saved = load_file(str(folder / "model.safetensors"))
    assert len(saved) == 2 * 4 * stand_in.config.n_layer + 2  # A, B of 4 layers per block; two row deltas
    assert sum(t.numel() for t in saved.values()) == meta2["measurements"]["n_trainable"]
    assert saved["lm_head__delta"].shape == (tok.vocab_size - tok.base_vocab_size, stand_in.config.n_embd)
    assert meta2["measurements"]["shakespeare_val_loss_before"] == 4.2


# -- bpe_gpt (chapter 9) --------------------------------------------------------------------------


def test_bpe_gpt_recipe_hashes_its_own_code_and_learns_the_vocabulary_on_training_text(mirror_dir):
    from llmscratch.recipes.bpe_gpt import bpe_data

    package = Path(llmscratch.__file__).parent
    closure = {p.relative_to(package).as_posix() for p in code_closure(["recipes.bpe_gpt"])}
    assert {"recipes/bpe_gpt.py", "bpc.py", "byte_bpe.py", "gpt.py", "recipes/pretrain.py"} <= closure
    assert not {"gpt2.py", "hf_gpt2.py", "cli.py", "recipes/instruct.py", "lora.py"} & closure  # loaders retrain nothing
    data = bpe_data()
    chars = shakespeare_char_data()
    n_train = len(chars.train_ids)
    assert data.tokenizer.vocab_size == 1024
    assert data.tokenizer.decode(data.train_ids.tolist()) == chars.text[:n_train]
    assert data.tokenizer.decode(data.val_ids.tolist()) == chars.text[n_train:]
    # the vocabulary comes from the training characters alone: retraining on them gives the same ranks
    from llmscratch.byte_bpe import ByteBPETokenizer

    again = ByteBPETokenizer.train(chars.text[:n_train], 1024, special_tokens=("<|endoftext|>",))
    assert again.ranks == data.tokenizer.ranks
