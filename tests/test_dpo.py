"""Tests for llmscratch.dpo: sequence log-probabilities, the DPO loss, the pair dataset, the objective
in the one training loop, and the held-out measurements (preference metrics, drift)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llmscratch import tasks as T
from llmscratch.chat import AssistantTokenizer
from llmscratch.dpo import (DPOConfig, DPOObjective, PreferenceDataset, dataset_logprobs, dpo_loss, drift,
                            frozen_reference, preference_metrics, reward_metrics, sequence_logprob, token_logprobs)
from llmscratch.task_data import make_preference_pairs
from llmscratch.train import TrainConfig, evaluate, train

from helpers import assistant_tokenizer, tiny_gpt

LN2 = math.log(2)


@pytest.fixture(scope="module")
def tok() -> AssistantTokenizer:
    return assistant_tokenizer()


def _logp_alone(model, tok, instruction: str, response: str) -> float:
    """log pi(response + end | prompt) of one unpadded example, summed by hand."""
    ids, mask = tok.render(instruction, response)
    with torch.no_grad():
        logp = model(ids[None])[0][0].double().log_softmax(-1)  # (T, V)
    return sum(logp[t - 1, ids[t]].item() for t in range(1, len(ids)) if mask[t])


# -- sequence_logprob -------------------------------------------------------------------


def test_sequence_logprob_sums_the_response_tokens_only(tok):
    model = tiny_gpt(tok.vocab_size).eval()
    ids, mask = tok.render("Reverse 'king'.", "Gladly: gnik.")
    with torch.no_grad():
        got = sequence_logprob(model, ids[None], mask[None])
        per_token = token_logprobs(model, ids[None])
    assert got.shape == (1,) and per_token.shape == (1, len(ids) - 1)
    assert got.item() == pytest.approx(_logp_alone(model, tok, "Reverse 'king'.", "Gladly: gnik."), abs=1e-4)
    assert got.item() < 0
    # token_logprobs[t - 1] is log p(ids[t] | ids[:t])
    with torch.no_grad():
        logp = model(ids[None])[0][0].log_softmax(-1)
    torch.testing.assert_close(per_token[0], logp[:-1].gather(1, ids[1:, None])[:, 0])


def test_padding_cannot_change_sequence_logprob(tok):
    model = tiny_gpt(tok.vocab_size).eval()
    ids, mask = tok.render("Give the last letter of 'rose'.", "Gladly: e.")
    with torch.no_grad():
        alone = sequence_logprob(model, ids[None], mask[None])
        for pad_id, n_pad in ((tok.pad_id, 5), (3, 12), (tok.resp_id, 1)):
            padded = torch.cat([ids, torch.full((n_pad,), pad_id)])[None]
            padded_mask = torch.cat([mask, torch.zeros(n_pad, dtype=torch.bool)])[None]
            assert torch.allclose(sequence_logprob(model, padded, padded_mask), alone, atol=1e-6)


def test_sequence_logprob_errors(tok):
    model = tiny_gpt(tok.vocab_size)
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
    with pytest.raises(ValueError, match="2 positions"):
        sequence_logprob(model, ids[:, :1], mask[:, :1])


# -- dpo_loss and reward_metrics ------------------------------------------------------------


def test_loss_is_ln2_when_policy_equals_reference(tok, task_words):
    model = tiny_gpt(tok.vocab_size)
    reference = frozen_reference(model)
    ds = PreferenceDataset(tok, make_preference_pairs(8, task_words, seed=0))
    ids, mask = ds.batch(torch.arange(8))
    policy_logps = sequence_logprob(model, ids, mask)
    with torch.no_grad():
        reference_logps = sequence_logprob(reference, ids, mask)
    loss, chosen, rejected = dpo_loss(policy_logps[:8], policy_logps[8:], reference_logps[:8], reference_logps[8:], 0.1)
    assert loss.item() == pytest.approx(LN2, abs=1e-6)
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
    metrics = reward_metrics(chosen, rejected, pc, pr)
    assert metrics == pytest.approx({
        "accuracy": 0.5,  # pair 1's chosen reward 0.25 > -0.25; pair 2's -0.5 < 0.5
        "margin": ((0.25 + 0.25) + (-0.5 - 0.5)) / 2,
        "chosen_reward": (0.25 - 0.5) / 2,
        "rejected_reward": (-0.25 + 0.5) / 2,
        "logp_accuracy": 0.5,  # pair 1: -1 > -2; pair 2: -3 < -1
    })


def test_dpo_loss_errors():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(x, x, x, x, 0.0)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(x, x, x, x, math.inf)
    with pytest.raises(TypeError, match="beta"):
        dpo_loss(x, x, x, x, True)
    with pytest.raises(ValueError, match="shape"):
        dpo_loss(x, torch.zeros(2), x, x, 0.1)
    with pytest.raises(ValueError, match="shape"):
        dpo_loss(*(torch.zeros(2, 2),) * 4, 0.1)


def test_a_gradient_step_prefers_the_chosen_response(tok, task_words):
    policy = tiny_gpt(tok.vocab_size)
    reference = frozen_reference(policy)
    ds = PreferenceDataset(tok, make_preference_pairs(4, task_words, seed=1))
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


# -- reference and dataset ------------------------------------------------------------------


def test_frozen_reference_is_an_independent_frozen_copy():
    model = tiny_gpt(20).train()
    reference = frozen_reference(model)
    assert not reference.training and model.training
    assert not any(p.requires_grad for p in reference.parameters())
    assert all(p.requires_grad for p in model.parameters())
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)
    assert not torch.equal(model.lm_head.weight, reference.lm_head.weight)


def test_preference_dataset(tok, task_words):
    pairs = make_preference_pairs(6, task_words, seed=0)
    ds = PreferenceDataset(tok, pairs, block_size=64)
    assert len(ds) == 6 and ds.kinds == [p.kind for p in pairs] and len(ds.tensors) == 4
    ids, mask = ds.batch(torch.tensor([1, 4]))
    assert ids.shape == mask.shape and ids.shape[0] == 4
    c_ids, c_mask = tok.render(pairs[1].instruction, pairs[1].chosen)
    assert torch.equal(ids[0, : len(c_ids)], c_ids) and torch.equal(mask[0, : len(c_ids)], c_mask)
    r_ids, _ = tok.render(pairs[4].instruction, pairs[4].rejected)
    assert torch.equal(ids[3, : len(r_ids)], r_ids) and not mask[3, len(r_ids):].any()
    assert mask[:, -1].any()  # cut after the block's last response token
    with pytest.raises(ValueError, match="empty"):
        PreferenceDataset(tok, [])
    with pytest.raises(ValueError, match="block_size"):
        PreferenceDataset(tok, pairs, block_size=10)


def test_preference_dataset_protocol(tok, task_words):
    ds = PreferenceDataset(tok, make_preference_pairs(10, task_words, seed=0))
    blocks = list(ds.batches(4))
    assert [ids.shape[0] for ids, _ in blocks] == [8, 8, 4]  # chosen and rejected of 4, 4 and 2 pairs
    seen = torch.cat([ids[: len(ids) // 2, 1] for ids, _ in blocks])  # first instruction token of each chosen
    assert torch.equal(seen, ds.chosen_ids[:, 1])  # every pair once, in order
    a = ds.sample(5, torch.Generator().manual_seed(3))
    b = ds.sample(5, torch.Generator().manual_seed(3))
    assert a[0].shape[0] == 10 and all(torch.equal(x, y) for x, y in zip(a, b))


# -- the objective ----------------------------------------------------------------------------


def test_dpo_objective_against_unbatched_log_probabilities(tok, task_words):
    """The objective scores a padded block of chosen + rejected; recompute pair by pair, unpadded."""
    policy, other = tiny_gpt(tok.vocab_size, seed=0), tiny_gpt(tok.vocab_size, seed=1)
    reference = frozen_reference(other)
    pairs = make_preference_pairs(6, task_words, seed=5)
    ds = PreferenceDataset(tok, pairs)
    batch = ds.batch(torch.arange(6))
    policy.eval()
    loss, metrics = DPOObjective(reference, beta=0.3)(policy, batch)
    pc = torch.tensor([_logp_alone(policy, tok, p.instruction, p.chosen) for p in pairs])
    pr = torch.tensor([_logp_alone(policy, tok, p.instruction, p.rejected) for p in pairs])
    rc = torch.tensor([_logp_alone(reference, tok, p.instruction, p.chosen) for p in pairs])
    rr = torch.tensor([_logp_alone(reference, tok, p.instruction, p.rejected) for p in pairs])
    z = 0.3 * ((pc - rc) - (pr - rr))
    assert loss.item() == pytest.approx(-F.logsigmoid(z).mean().item(), abs=1e-4)
    assert metrics["accuracy"] == pytest.approx((z > 0).double().mean().item())
    assert metrics["margin"] == pytest.approx(z.mean().item(), abs=1e-4)
    assert metrics["logp_accuracy"] == pytest.approx((pc > pr).double().mean().item())
    assert metrics["count"] == 6 and metrics["tokens"] == batch[0].numel()
    loss.backward()  # gradients reach the policy only
    assert all(p.grad is not None for p in policy.parameters())
    assert all(p.grad is None for p in reference.parameters())


def test_reference_logps_are_computed_once_per_batch_and_equal_a_fresh_pass(tok, task_words):
    reference = frozen_reference(tiny_gpt(tok.vocab_size, seed=1))
    ds = PreferenceDataset(tok, make_preference_pairs(8, task_words, seed=5))
    objective = DPOObjective(reference, beta=0.5)
    calls = []
    reference.register_forward_hook(lambda *args: calls.append(1))
    first_block, other_block = ds.batch(torch.arange(4)), ds.batch(torch.arange(4, 8))
    first = objective.reference_logps(*first_block)
    again = objective.reference_logps(*ds.batch(torch.arange(4)))  # equal tensors, new objects
    assert len(calls) == 1 and torch.equal(first, again)
    torch.testing.assert_close(first, sequence_logprob(reference, *first_block), rtol=0, atol=0)
    other = objective.reference_logps(*other_block)
    assert len(calls) == 3 and not torch.equal(other, first)  # 3: the fresh pass above ran too


def test_dpo_objective_refuses_a_trainable_reference_and_bad_beta(tok):
    model = tiny_gpt(tok.vocab_size)
    with pytest.raises(ValueError, match="frozen"):
        DPOObjective(model, beta=0.1)
    with pytest.raises(ValueError, match="beta"):
        DPOObjective(frozen_reference(model), beta=0.0)
    with pytest.raises(TypeError, match="beta"):
        DPOObjective(frozen_reference(model), beta="0.1")


def test_dpo_config():
    assert DPOConfig().beta == 0.1 and DPOConfig(beta=1).beta == 1.0
    assert DPOConfig(**DPOConfig(0.3).to_dict()) == DPOConfig(0.3) and DPOConfig(0.3).to_dict() == {"beta": 0.3}
    with pytest.raises(ValueError, match="beta"):
        DPOConfig(beta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        DPOConfig(beta=math.nan)
    with pytest.raises(TypeError, match="beta"):
        DPOConfig(beta=None)


# -- DPO through the one training loop -----------------------------------------------------------


@pytest.fixture(scope="module")
def pair_sets(tok, task_words):
    return (PreferenceDataset(tok, make_preference_pairs(64, task_words, seed=0)),
            PreferenceDataset(tok, make_preference_pairs(24, task_words, seed=1, split="heldout")))


DPO_TRAIN = dict(max_steps=25, batch_size=8, lr=3e-3, warmup_steps=2, eval_interval=10, eval_batches=None,
                 eval_train=False, eval_batch_size=16, num_threads=1)


@pytest.fixture(scope="module")
def dpo_runs(tok, pair_sets):
    """Two DPO runs from the same SFT stand-in and seed: (result, policy, reference) each."""
    train_set, val_set = pair_sets
    runs = []
    for _ in range(2):
        policy = tiny_gpt(tok.vocab_size)
        reference = frozen_reference(policy)
        result = train(policy, DPOObjective(reference, 0.5), train_set, val_set, TrainConfig(**DPO_TRAIN),
                       progress=False)
        runs.append((result, policy, reference))
    return runs


def test_dpo_step_zero_is_ln2_on_the_held_out_pairs(dpo_runs):
    result = dpo_runs[0][0]
    assert result.steps == [0, 10, 20, 25]
    assert result.val["loss"][0] == pytest.approx(LN2, abs=1e-5)  # policy == reference before any update
    assert result.val["accuracy"][0] == 0.0 and result.val["margin"][0] == pytest.approx(0.0, abs=1e-6)
    assert result.batch_loss[0] == pytest.approx(LN2, abs=1e-5)  # the first minibatch, before the first step


def test_dpo_step_zero_is_ln2_with_random_estimates_too(tok, pair_sets):
    train_set, val_set = pair_sets
    policy = tiny_gpt(tok.vocab_size, seed=9)
    cfg = TrainConfig(**{**DPO_TRAIN, "max_steps": 1, "warmup_steps": 0, "eval_batches": 2, "eval_train": True})
    result = train(policy, DPOObjective(frozen_reference(policy), 2.0), train_set, val_set, cfg, progress=False)
    assert result.train["loss"][0] == pytest.approx(LN2, abs=1e-5)
    assert result.val["loss"][0] == pytest.approx(LN2, abs=1e-5)


def test_dpo_training_is_seeded(dpo_runs):
    (a, _, _), (b, _, _) = dpo_runs
    assert a.batch_loss == b.batch_loss and a.batch == b.batch
    assert a.val == b.val and a.final_val == b.final_val


def test_dpo_learns_the_preferences(dpo_runs, pair_sets):
    result, policy, reference = dpo_runs[0]
    _, val_set = pair_sets
    assert set(result.batch) == {"loss", "accuracy", "margin", "chosen_reward", "rejected_reward", "logp_accuracy"}
    assert len(result.batch["margin"]) == len(result.lr) == 25
    assert result.batch_loss[-1] < LN2 and result.val["margin"][-1] > 0
    assert result.final_val["accuracy"] > 0.5 and result.final_val["count"] == len(val_set)
    assert result.tokens_per_second > 0
    # The loop's final evaluation (count-weighted over blocks) agrees with preference_metrics (whole set).
    final = preference_metrics(policy, reference, val_set, beta=0.5)
    for key in ("loss", "accuracy", "margin", "chosen_reward", "rejected_reward", "logp_accuracy"):
        assert final[key] == pytest.approx(result.final_val[key], abs=1e-5), key
    assert result.final_val == pytest.approx(evaluate(policy, val_set, DPOObjective(reference, 0.5), batch_size=5))
    pc, pr = dataset_logprobs(policy, val_set)
    assert pc.shape == pr.shape == (24,)
    assert drift(policy, reference, val_set)["token_kl_nats"] > 0


# -- held-out measurements ------------------------------------------------------------------------


def test_metrics_and_drift_at_the_start(tok, task_words):
    model = tiny_gpt(tok.vocab_size)
    reference = frozen_reference(model)
    pairs = make_preference_pairs(12, task_words, seed=2)
    ds = PreferenceDataset(tok, pairs)
    m = preference_metrics(model, reference, ds, beta=0.1)
    assert m["loss"] == pytest.approx(LN2, abs=1e-6)
    assert m["accuracy"] == 0.0 and m["margin"] == pytest.approx(0.0, abs=1e-6)  # every margin is 0
    # logp_accuracy: the share of pairs whose chosen response the model itself finds likelier
    model.eval()
    expected = sum(_logp_alone(model, tok, p.instruction, p.chosen) > _logp_alone(model, tok, p.instruction, p.rejected)
                   for p in pairs) / len(pairs)
    assert m["logp_accuracy"] == pytest.approx(expected)
    assert m["accuracy_by_kind"] == {k: 0.0 for k in T.PAIR_KINDS}
    d = drift(model, reference, ds)
    assert d == pytest.approx({"token_kl_nats": 0.0, "chosen_log_ratio": 0.0, "rejected_log_ratio": 0.0}, abs=1e-6)


def test_accuracy_by_kind_against_pair_by_pair_rewards(tok, task_words):
    policy, reference = tiny_gpt(tok.vocab_size, seed=0).eval(), frozen_reference(tiny_gpt(tok.vocab_size, seed=1))
    pairs = make_preference_pairs(16, task_words, seed=3)
    m = preference_metrics(policy, reference, PreferenceDataset(tok, pairs), beta=0.7)
    wins: dict[str, list[bool]] = {}
    for p in pairs:
        margin = ((_logp_alone(policy, tok, p.instruction, p.chosen) - _logp_alone(reference, tok, p.instruction, p.chosen))
                  - (_logp_alone(policy, tok, p.instruction, p.rejected)
                     - _logp_alone(reference, tok, p.instruction, p.rejected)))
        wins.setdefault(p.kind, []).append(margin > 0)
    assert m["accuracy_by_kind"] == pytest.approx({k: sum(v) / len(v) for k, v in wins.items()})
    assert m["accuracy"] == pytest.approx(sum(sum(v) for v in wins.values()) / len(pairs))


def test_drift_token_kl_against_kl_div(tok, task_words):
    """token_kl_nats: the mean over teacher-forced response positions of KL(pi || pi_ref),
    recomputed pair by pair without padding with torch's kl_div (log_target=True)."""
    policy = tiny_gpt(tok.vocab_size, seed=0).train()  # drift must score in eval mode
    with torch.no_grad():
        policy.lm_head.weight.mul_(30.0)  # far from the reference, so the KL is not tiny
    reference = frozen_reference(tiny_gpt(tok.vocab_size, seed=1))
    pairs = make_preference_pairs(8, task_words, seed=4)
    d = drift(policy, reference, PreferenceDataset(tok, pairs))
    assert policy.training  # restored
    policy.eval()
    kls, chosen_ratio, rejected_ratio = [], [], []
    for p in pairs:
        for response, ratios in ((p.chosen, chosen_ratio), (p.rejected, rejected_ratio)):
            ids, mask = tok.render(p.instruction, response)
            with torch.no_grad():
                logp = policy(ids[None, :-1])[0][0].double().log_softmax(-1)  # (T-1, V): predicts ids[1:]
                logq = reference(ids[None, :-1])[0][0].double().log_softmax(-1)
            # kl_div(input, target) = sum target.exp() * (target - input): KL(target || input)
            kl = F.kl_div(logq, logp, reduction="none", log_target=True).sum(-1)  # (T-1,)
            kls.extend(kl[mask[1:]].tolist())
            ratios.append(_logp_alone(policy, tok, p.instruction, response)
                          - _logp_alone(reference, tok, p.instruction, response))
    assert d["token_kl_nats"] == pytest.approx(sum(kls) / len(kls), rel=1e-4)
    assert d["token_kl_nats"] > 0.5
    assert d["chosen_log_ratio"] == pytest.approx(sum(chosen_ratio) / len(pairs), abs=1e-4)
    assert d["rejected_log_ratio"] == pytest.approx(sum(rejected_ratio) / len(pairs), abs=1e-4)


def test_drift_scores_a_reference_in_train_mode_in_eval_mode(tok, task_words):
    """A reference not made by frozen_reference (train mode, dropout on) is scored without dropout."""
    policy = tiny_gpt(tok.vocab_size, seed=0)
    reference = tiny_gpt(tok.vocab_size, seed=1, dropout=0.5).requires_grad_(False)
    data = PreferenceDataset(tok, make_preference_pairs(6, task_words, seed=2))
    in_train_mode = drift(policy, reference.train(), data)
    assert reference.training  # restored
    assert in_train_mode == drift(policy, reference.eval(), data)


def test_a_dpo_variant_overrides_only_the_loss_or_the_reference(tok, task_words):
    """IPO-like and reference-free variants: one overridden method each, same batch handling."""
    policy = tiny_gpt(tok.vocab_size, seed=0)
    reference = frozen_reference(tiny_gpt(tok.vocab_size, seed=1))
    batch = PreferenceDataset(tok, make_preference_pairs(6, task_words, seed=3)).batches(6).__next__()

    class SquaredMargin(DPOObjective):
        def loss(self, pc, pr, rc, rr):
            margin = (pc - rc) - (pr - rr)
            return ((margin - 1.0) ** 2).mean(), {}

    class NoReference(DPOObjective):
        def reference_logps(self, ids, mask):
            return torch.zeros(ids.shape[0])

    ids, mask = batch
    logps = sequence_logprob(policy, ids, mask).detach()
    ref = sequence_logprob(reference, ids, mask)
    loss, metrics = SquaredMargin(reference, 0.5)(policy, batch)
    want = (((logps[:6] - ref[:6]) - (logps[6:] - ref[6:]) - 1.0) ** 2).mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-5) and metrics == {"count": 6, "tokens": ids.numel()}
    loss, metrics = NoReference(reference, 0.5)(policy, batch)
    want, _, _ = dpo_loss(logps[:6], logps[6:], torch.zeros(6), torch.zeros(6), 0.5)
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
