"""Tests for llmscratch.dpo: sequence log-probabilities, the DPO loss, the pair dataset and the loop."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from llmscratch import tasks as T
from llmscratch.dpo import (DPOConfig, PreferenceDataset, dataset_logprobs, dpo_configs, dpo_loss, drift,
                            frozen_reference, preference_metrics, sequence_logprob, train_dpo)
from llmscratch.gpt import GPT, GPTConfig
from llmscratch.sft import AssistantTokenizer
from llmscratch.vocab import CharVocab

SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def tok() -> AssistantTokenizer:
    return AssistantTokenizer(CharVocab(list(SHAKESPEARE_CHARS)))


def _tiny_gpt(vocab_size: int, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16, tie_weights=False))


# -- sequence_logprob -------------------------------------------------------------------


def test_sequence_logprob_sums_the_response_tokens_only(tok):
    model = _tiny_gpt(tok.vocab_size).eval()
    ids, mask = tok.render("Reverse 'king'.", "Gladly: gnik.")
    ids, mask = ids[None], mask[None]
    with torch.no_grad():
        got = sequence_logprob(model, ids, mask)
        logp = model(ids)[0].log_softmax(-1)  # (1, T, V)
    expected = sum(logp[0, t - 1, ids[0, t]] for t in range(1, ids.shape[1]) if mask[0, t])
    assert got.shape == (1,)
    assert got.item() == pytest.approx(expected.item(), abs=1e-5)
    assert got.item() < 0


def test_padding_cannot_change_sequence_logprob(tok):
    model = _tiny_gpt(tok.vocab_size).eval()
    ids, mask = tok.render("Give the last letter of 'rose'.", "Gladly: e.")
    with torch.no_grad():
        alone = sequence_logprob(model, ids[None], mask[None])
        for pad_id, n_pad in ((tok.pad_id, 5), (3, 12), (tok.resp_id, 1)):
            padded = torch.cat([ids, torch.full((n_pad,), pad_id)])[None]
            padded_mask = torch.cat([mask, torch.zeros(n_pad, dtype=torch.bool)])[None]
            assert torch.allclose(sequence_logprob(model, padded, padded_mask), alone, atol=1e-6)


def test_sequence_logprob_errors(tok):
    model = _tiny_gpt(tok.vocab_size)
    ids = torch.zeros(2, 5, dtype=torch.long)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="shape"):
        sequence_logprob(model, ids, mask[:, :4])
    bad = mask.clone()
    bad[0, 0] = True
    with pytest.raises(ValueError, match="first token"):
        sequence_logprob(model, ids, bad)
    with pytest.raises(TypeError, match="response_mask"):
        sequence_logprob(model, ids, mask.long())
    with pytest.raises(TypeError, match="ids"):
        sequence_logprob(model, ids.float(), mask)


# -- dpo_loss ---------------------------------------------------------------------------


def test_loss_is_ln2_when_policy_equals_reference(tok):
    model = _tiny_gpt(tok.vocab_size)
    reference = frozen_reference(model)
    ds = PreferenceDataset(tok, T.make_preference_pairs(8, seed=0))
    ids, mask = ds.batch(torch.arange(8))
    policy_logps = sequence_logprob(model, ids, mask)
    with torch.no_grad():
        reference_logps = sequence_logprob(reference, ids, mask)
    loss, chosen, rejected = dpo_loss(policy_logps[:8], policy_logps[8:], reference_logps[:8], reference_logps[8:], 0.1)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)
    assert torch.allclose(chosen, torch.zeros(8), atol=1e-6) and torch.allclose(rejected, torch.zeros(8), atol=1e-6)


def test_loss_matches_a_hand_computed_example():
    # Pair 1: log-ratios +0.5 (chosen) and -0.5 (rejected); beta 0.5 -> logit 0.5.
    # Pair 2: log-ratios -1 and +1 -> logit -1.
    pc, pr = torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -1.0])
    rc, rr = torch.tensor([-1.5, -2.0]), torch.tensor([-1.5, -2.0])
    loss, chosen, rejected = dpo_loss(pc, pr, rc, rr, beta=0.5)
    expected = (math.log(1 + math.exp(-0.5)) + math.log(1 + math.exp(1.0))) / 2  # -log sigmoid(z)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert chosen.tolist() == pytest.approx([0.25, -0.5])
    assert rejected.tolist() == pytest.approx([-0.25, 0.5])
    assert not chosen.requires_grad


def test_dpo_loss_errors():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(x, x, x, x, 0.0)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(x, x, x, x, True)
    with pytest.raises(ValueError, match="shape"):
        dpo_loss(x, torch.zeros(2), x, x, 0.1)
    with pytest.raises(ValueError, match="shape"):
        dpo_loss(*(torch.zeros(2, 2),) * 4, 0.1)


def test_a_gradient_step_prefers_the_chosen_response(tok):
    policy = _tiny_gpt(tok.vocab_size)
    reference = frozen_reference(policy)
    ds = PreferenceDataset(tok, T.make_preference_pairs(4, seed=1))
    ids, mask = ds.batch(torch.arange(4))
    with torch.no_grad():
        ref = sequence_logprob(reference, ids, mask)

    def gap() -> torch.Tensor:  # log pi(chosen) - log pi(rejected), per pair
        with torch.no_grad():
            lp = sequence_logprob(policy, ids, mask)
        return lp[:4] - lp[4:]

    before = gap()
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.05)
    logps = sequence_logprob(policy, ids, mask)
    loss, _, _ = dpo_loss(logps[:4], logps[4:], ref[:4], ref[4:], beta=0.5)
    loss.backward()
    optimizer.step()
    after = gap()
    assert bool((after > before).all())
    # The reference did not move.
    with torch.no_grad():
        assert torch.equal(sequence_logprob(reference, ids, mask), ref)


# -- reference, dataset, training loop ----------------------------------------------------


def test_frozen_reference_is_an_independent_frozen_copy():
    model = _tiny_gpt(20).train()
    reference = frozen_reference(model)
    assert not reference.training and model.training
    assert not any(p.requires_grad for p in reference.parameters())
    assert all(p.requires_grad for p in model.parameters())
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)
    assert not torch.equal(model.lm_head.weight, reference.lm_head.weight)


def test_preference_dataset(tok):
    pairs = T.make_preference_pairs(6, seed=0)
    ds = PreferenceDataset(tok, pairs, block_size=64)
    assert len(ds) == 6 and ds.kinds == [p.kind for p in pairs] and len(ds.tensors) == 4
    ids, mask = ds.batch(torch.tensor([1, 4]))
    assert ids.shape == mask.shape and ids.shape[0] == 4
    c_ids, c_mask = tok.render(pairs[1].instruction, pairs[1].chosen)
    assert torch.equal(ids[0, : len(c_ids)], c_ids) and torch.equal(mask[0, : len(c_ids)], c_mask)
    r_ids, _ = tok.render(pairs[4].instruction, pairs[4].rejected)
    assert torch.equal(ids[3, : len(r_ids)], r_ids) and not mask[3, len(r_ids):].any()
    with pytest.raises(ValueError, match="empty"):
        PreferenceDataset(tok, [])
    with pytest.raises(ValueError, match="block_size"):
        PreferenceDataset(tok, pairs, block_size=10)


def test_metrics_and_drift_at_the_start(tok):
    model = _tiny_gpt(tok.vocab_size)
    reference = frozen_reference(model)
    ds = PreferenceDataset(tok, T.make_preference_pairs(12, seed=2))
    m = preference_metrics(model, reference, ds, beta=0.1)
    assert m["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert m["accuracy"] == 0.0 and m["margin"] == pytest.approx(0.0, abs=1e-6)  # every margin is 0
    assert 0.0 <= m["logp_accuracy"] <= 1.0
    assert set(m["accuracy_by_kind"]) == set(T.PAIR_KINDS)
    d = drift(model, reference, ds)
    assert d["token_kl_nats"] == pytest.approx(0.0, abs=1e-6)
    assert d["chosen_log_ratio"] == pytest.approx(0.0, abs=1e-6)


def test_train_dpo_learns_the_preferences_and_is_seeded(tok):
    train_set = PreferenceDataset(tok, T.make_preference_pairs(64, seed=0))
    val_set = PreferenceDataset(tok, T.make_preference_pairs(24, seed=1, split="heldout"))
    config = DPOConfig(max_steps=25, batch_size=8, lr=3e-3, warmup_steps=2, eval_interval=10, beta=0.5, seed=0)
    runs = []
    for _ in range(2):
        policy = _tiny_gpt(tok.vocab_size)
        reference = frozen_reference(policy)
        runs.append((train_dpo(policy, reference, train_set, val_set, config, progress=False), policy, reference))
    (result, policy, reference), (again, _, _) = runs
    assert result.loss == again.loss  # seeded
    assert result.eval_steps == [0, 10, 20, 25]
    assert result.val_accuracy[0] == 0.0 and result.val_loss[0] == pytest.approx(math.log(2), abs=1e-5)
    assert result.loss[-1] < math.log(2) and result.val_margin[-1] > 0
    assert result.final_val["accuracy"] > 0.5
    assert len(result.chosen_reward) == len(result.rejected_reward) == len(result.lr) == 25
    final = preference_metrics(policy, reference, val_set, beta=0.5)
    assert final["accuracy"] == pytest.approx(result.final_val["accuracy"])
    pc, pr = dataset_logprobs(policy, val_set)
    assert pc.shape == pr.shape == (24,)
    assert drift(policy, reference, val_set)["token_kl_nats"] > 0
    with pytest.raises(ValueError, match="frozen"):
        train_dpo(policy, policy, train_set, val_set, config, progress=False)
    assert type(result).from_dict(result.to_dict()) == result


def test_configs():
    data, optim = dpo_configs(0.3)
    assert optim.beta == 0.3 and isinstance(optim, DPOConfig)
    assert DPOConfig(**optim.to_dict()) == optim
    with pytest.raises(ValueError, match="beta"):
        dataclasses.replace(optim, beta=-1.0)
    with pytest.raises(ValueError, match="n_train"):
        dataclasses.replace(data, n_train=0)


def test_recipes_train_once_then_load(tmp_path, monkeypatch):
    """assistant_sft and assistant_dpo with a tiny stand-in for the chapter 4 model."""
    from llmscratch import dpo, sft
    from llmscratch.train import TrainConfig

    base = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=1, n_head=2, n_embd=16, tie_weights=False))
    monkeypatch.setattr(sft, "shakespeare_char_gpt", lambda **kw: (base, {"measurements": {"final_val_loss": 4.2}}))
    monkeypatch.setattr(sft, "TRAIN_THREADS", 1)
    monkeypatch.setattr(dpo, "TRAIN_THREADS", 1)
    sft_config = sft.SFTConfig(n_train=40, n_val=18)
    train_config = TrainConfig(max_steps=3, batch_size=4, lr=1e-3, eval_interval=3, eval_batches=1)
    first = sft.assistant_sft(sft_config=sft_config, train_config=train_config, progress=False, cache_dir=tmp_path)
    second = sft.assistant_sft(sft_config=sft_config, train_config=train_config, progress=False, cache_dir=tmp_path)
    (model, tok, meta), (again, _, meta2) = first, second
    assert (meta["from_cache"], meta2["from_cache"]) == (False, True)
    assert tok.vocab_size == model.config.vocab_size == 78
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    m = meta2["measurements"]
    assert m["shakespeare_val_loss_before"] == 4.2 and m["n_train_examples"] == 40 + len(T.HANDMADE)
    assert m["shakespeare_val_loss_after_old_vocab"] <= m["shakespeare_val_loss_after"]

    data_config = dpo.PreferenceDataConfig(n_train=16, n_val=8)
    dpo_config = DPOConfig(max_steps=2, batch_size=4, lr=1e-3, eval_interval=1, beta=0.5)
    kw = dict(data_config=data_config, dpo_config=dpo_config, sft=(model, tok), progress=False, cache_dir=tmp_path)
    policy, reference, _, dmeta = dpo.assistant_dpo(**kw)
    policy2, _, _, dmeta2 = dpo.assistant_dpo(**kw)
    assert (dmeta["from_cache"], dmeta2["from_cache"]) == (False, True)
    assert all(torch.equal(a, b) for a, b in zip(policy.state_dict().values(), policy2.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(reference.state_dict().values(), model.state_dict().values()))
    assert not any(torch.equal(a, b) for a, b in zip(policy.lm_head.parameters(), model.lm_head.parameters()))
    assert dmeta2["measurements"]["eval_steps"] == [0, 1, 2] and "token_kl_nats" in dmeta2["measurements"]["drift"]
