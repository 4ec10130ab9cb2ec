"""Tests for llmscratch.sft: vocabulary extension, the masked dataset, forgetting, instruction-data stats."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llmscratch import sft
from llmscratch import tasks as T
from llmscratch.chat import AssistantTokenizer
from llmscratch.gpt import GPT
from llmscratch.lm import IGNORE_INDEX
from llmscratch.objectives import next_token_loss
from llmscratch.sft import SFTDataset, extend_vocab, text_loss
from llmscratch.task_data import make_sft_examples
from llmscratch.train import TrainConfig, train

from helpers import assistant_tokenizer, tiny_gpt


@pytest.fixture(scope="module")
def tok() -> AssistantTokenizer:
    return assistant_tokenizer()


# -- extend_vocab --------------------------------------------------------------------------


@pytest.mark.parametrize("tie", [False, True])
def test_extend_vocab_keeps_old_logits_and_means_new_rows(tok, tie):
    old = tiny_gpt(65, tie_weights=tie)
    state = torch.get_rng_state()
    new = extend_vocab(old, tok.vocab_size)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is untouched
    assert new.config.vocab_size == tok.vocab_size and new.config.tie_weights == tie
    x = torch.randint(0, 65, (3, 20))
    with torch.no_grad():
        old_logits, _ = old(x)
        new_logits, _ = new(x)
    assert torch.equal(new_logits[..., :65], old_logits)  # old tokens, old columns: unchanged
    for name in ("transformer.wte.weight", "lm_head.weight"):
        w_old, w_new = old.state_dict()[name], new.state_dict()[name]
        assert torch.equal(w_new[:65], w_old)
        assert torch.allclose(w_new[65:], w_old.mean(0).expand(tok.vocab_size - 65, -1))
    if tie:
        assert new.lm_head.weight is new.transformer.wte.weight
    # Jensen: k new tokens at the mean take at most k / (V + k) of the probability.
    k = tok.vocab_size - 65
    new_mass = new_logits.softmax(-1)[..., 65:].sum(-1)
    assert bool((new_mass <= k / (65 + k) + 1e-6).all())
    # ... so the KL divergence of the old tokens' distribution from the old model is at most ln(1 + k/V).
    p_old = old_logits.log_softmax(-1)
    p_new = new_logits.log_softmax(-1)[..., :65]  # log-probabilities of the old tokens in the new model
    kl = (p_old.exp() * (p_old - p_new)).sum(-1)
    assert bool((kl <= math.log(1 + k / 65) + 1e-6).all())
    # The parameters are copies: training the new model leaves the old one alone.
    with torch.no_grad():
        new.transformer.h[0].attn.c_attn.weight.add_(1.0)
    assert not torch.equal(new.transformer.h[0].attn.c_attn.weight, old.transformer.h[0].attn.c_attn.weight)


def test_extend_vocab_keeps_the_mode_and_errors():
    old = tiny_gpt(65).eval()
    assert not extend_vocab(old, 70).training and extend_vocab(old.train(), 70).training
    with pytest.raises(ValueError, match="new_vocab_size"):
        extend_vocab(old, 64)
    with pytest.raises(TypeError, match="new_vocab_size"):
        extend_vocab(old, 70.0)
    with pytest.raises(TypeError, match="GPT"):
        extend_vocab(nn.Linear(2, 2), 70)
    assert extend_vocab(old, 65).config == old.config


# -- the dataset -----------------------------------------------------------------------------


def test_dataset_targets_only_the_response(tok, task_words):
    examples = make_sft_examples(20, task_words)
    ds = SFTDataset.from_examples(tok, examples, block_size=64)
    assert len(ds) == 20
    for i, e in enumerate(examples):
        ids, mask = tok.render(e.instruction, e.response)
        L = len(ids)
        assert torch.equal(ds.X[i, : L - 1], ids[:-1])
        y = ds.Y[i]
        assert torch.equal(y[: L - 1][mask[1:]], ids[1:][mask[1:]])  # response targets are the next tokens
        assert (y[: L - 1][~mask[1:]] == IGNORE_INDEX).all()  # prompt: ignored
        assert (y[L - 1:] == IGNORE_INDEX).all() and (ds.X[i, L - 1:] == tok.pad_id).all()  # padding: ignored
    n_response = sum(int(tok.render(e.instruction, e.response)[1].sum()) for e in examples)
    assert ds.num_targets == n_response
    full = SFTDataset.from_examples(tok, examples, loss_on="all")
    assert full.num_targets == sum(len(tok.render(e.instruction, e.response)[0]) - 1 for e in examples)
    assert full.num_targets > ds.num_targets


def test_dataset_errors(tok, task_words):
    examples = make_sft_examples(9, task_words)
    with pytest.raises(ValueError, match="loss_on"):
        SFTDataset.from_examples(tok, examples[:2], loss_on="prompt")
    with pytest.raises(ValueError, match="empty"):
        SFTDataset([], pad_id=0)
    with pytest.raises(ValueError, match="block_size"):
        SFTDataset.from_examples(tok, examples, block_size=20)
    ids, mask = tok.render("Hi", "Ho")
    with pytest.raises(ValueError, match="shape"):
        SFTDataset([(ids, mask[:-1])], pad_id=0)
    with pytest.raises(ValueError, match="2 tokens"):
        SFTDataset([(ids[:1], mask[:1])], pad_id=0)


def test_padding_never_reaches_the_loss(tok):
    """An example's loss is the same alone and in a batch padded for a much longer example."""
    model = tiny_gpt(tok.vocab_size)
    short = T.Example("first", "Which letter starts 'cat'?", "Gladly: c.", "c", "good")
    long = T.Example("insult", "Say something rude to me.", "I will not, friend; be well.", "I will not", "good")
    alone = SFTDataset.from_examples(tok, [short])
    padded = SFTDataset.from_examples(tok, [short, long])
    assert padded.X.shape[1] > alone.X.shape[1]
    with torch.no_grad():
        _, loss_alone = model(alone.X, alone.Y)
        logits, _ = model(padded.X)
        row = F.cross_entropy(logits[0], padded.Y[0], ignore_index=IGNORE_INDEX)
        # Another padding token changes nothing either: the model is causal.
        x = padded.X.clone()
        x[0][padded.Y[0] == IGNORE_INDEX] = 5
        x[0][: alone.X.shape[1]] = padded.X[0][: alone.X.shape[1]]
        row2 = F.cross_entropy(model(x)[0][0], padded.Y[0], ignore_index=IGNORE_INDEX)
    assert torch.allclose(loss_alone, row, atol=1e-6) and torch.allclose(row, row2, atol=1e-6)


def test_dataset_protocol_and_train(tok, task_words):
    train_set = SFTDataset.from_examples(tok, make_sft_examples(300, task_words, seed=0), block_size=64)
    val_set = SFTDataset.from_examples(tok, make_sft_examples(45, task_words, seed=1, split="heldout"),
                                       block_size=64)
    assert len(train_set) == 300 and len(val_set) == 45
    g = torch.Generator().manual_seed(0)
    x, y = train_set.sample(8, g)
    assert x.shape == y.shape and x.shape[0] == 8 and x.is_contiguous()
    assert (y[:, -1] != IGNORE_INDEX).any()  # the batch is cut after its last target
    batches = list(val_set.batches(16))
    assert [len(xb) for xb, _ in batches] == [16, 16, 13]
    assert sum(int((yb != IGNORE_INDEX).sum()) for _, yb in batches) == val_set.num_targets
    assert len(train_set.tensors) == 2

    config = TrainConfig(max_steps=30, batch_size=16, lr=1e-2, warmup_steps=3, eval_interval=15, eval_batches=2,
                         num_threads=1)
    results = []
    for _ in range(2):
        model = tiny_gpt(tok.vocab_size)
        results.append(train(model, next_token_loss, train_set, val_set, config, progress=False))
    assert results[0].batch_loss == results[1].batch_loss  # seeded
    assert results[0].steps == [0, 15, 30]
    assert results[0].val_loss[-1] < results[0].val_loss[0]
    assert results[0].final_val["count"] == val_set.num_targets  # response tokens only
    assert math.isfinite(results[0].final_val_loss)


# -- text_loss --------------------------------------------------------------------------------


def _windows_nll(model: GPT, ids: torch.Tensor, limit: int | None = None) -> float:
    """Mean next-token NLL over windows of block_size laid end to end (len(ids) = k * T + 1)."""
    T = model.config.block_size
    assert (len(ids) - 1) % T == 0
    total, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(ids) - 1, T):
            logits = model(ids[None, s:s + T])[0][0].double()  # (T, V)
            if limit is not None:
                logits = logits[:, :limit]
            logp = logits.log_softmax(-1)
            target = ids[s + 1:s + T + 1]
            total -= logp[torch.arange(T), target].sum().item()
            n += T
    return total / n


def test_text_loss_against_windows_laid_end_to_end(tok):
    old = tiny_gpt(65, seed=3).eval()
    ids = torch.randint(0, 65, (64 * 11 + 1,), generator=torch.Generator().manual_seed(0))
    assert text_loss(old, ids) == pytest.approx(_windows_nll(old, ids), rel=1e-5)
    assert text_loss(old, ids, batch_size=3) == pytest.approx(_windows_nll(old, ids), rel=1e-5)
    assert text_loss(old, ids, max_batches=1, batch_size=2) == pytest.approx(_windows_nll(old, ids[:129]), rel=1e-5)
    new = extend_vocab(old, tok.vocab_size)
    assert text_loss(new, ids) == pytest.approx(_windows_nll(new, ids), rel=1e-5)
    assert text_loss(new, ids, vocab_limit=70) == pytest.approx(_windows_nll(new, ids, limit=70), rel=1e-5)
    # Over the old characters only, the extended model is the old model.
    assert text_loss(new, ids, vocab_limit=65) == pytest.approx(text_loss(old, ids), rel=1e-6)
    assert text_loss(new, ids) > text_loss(old, ids)  # the new tokens take some probability
    with pytest.raises(ValueError, match="vocab_limit"):
        text_loss(new, ids, vocab_limit=0)
    with pytest.raises(ValueError, match="vocab_limit"):
        text_loss(new, ids, vocab_limit=tok.vocab_size + 1)
    for bad in (2.5, True):
        with pytest.raises(TypeError, match="vocab_limit"):
            text_loss(new, ids, vocab_limit=bad)


# -- instruction_data_stats ------------------------------------------------------------------


def test_instruction_data_stats(tok):
    records = [{"instruction": "Say hi.", "input": "", "output": "Hi."},
               {"instruction": "Translate.", "input": "Bonjour", "output": "Hello, and welcome to the café!"}]
    s = sft.instruction_data_stats(records, tokenizer=tok, block_size=64)
    assert s["n_examples"] == 2 and s["n_with_input"] == 1 and s["keys"] == ["input", "instruction", "output"]
    assert s["chars"]["instruction"]["max"] == len("Translate.")
    assert s["chars"]["output"]["mean"] == pytest.approx((3 + 31) / 2)
    assert s["n_fit_block"] == 1 and s["n_encodable"] == 1  # é is not in the vocabulary
    assert sft.instruction_data_stats(records)["n_encodable"] is None
    with pytest.raises(ValueError, match="empty"):
        sft.instruction_data_stats([])
    real = sft.instruction_data_stats()
    assert real["n_examples"] == 1100 and real["n_fit_block"] == 0


def test_exact_match_probe_records_a_curve_and_leaves_training_unchanged(tok, task_words):
    """The probe of chapter 5's learning curve answers prompts in eval mode only: the
    losses and weights of a run with it equal those of a run with next_token_loss."""
    from llmscratch.recipes.instruct import ExactMatchProbe
    from llmscratch.task_data import make_eval_prompts

    train_set = SFTDataset.from_examples(tok, make_sft_examples(200, task_words, seed=0), block_size=64)
    val_set = SFTDataset.from_examples(tok, make_sft_examples(30, task_words, seed=1, split="heldout"),
                                       block_size=64)
    config = TrainConfig(max_steps=20, batch_size=8, lr=1e-2, warmup_steps=2, eval_interval=5, eval_batches=2,
                         num_threads=1)
    prompts = make_eval_prompts(2, task_words, seed=3, tasks=("first", "add"))
    plain, probed = tiny_gpt(tok.vocab_size), tiny_gpt(tok.vocab_size)
    r_plain = train(plain, next_token_loss, train_set, val_set, config, progress=False)
    probe = ExactMatchProbe(tok, prompts, every=10)
    r_probed = train(probed, probe, train_set, val_set, config, progress=False)
    assert r_plain.batch_loss == r_probed.batch_loss and r_plain.val_loss == r_probed.val_loss
    for a, b in zip(plain.state_dict().values(), probed.state_dict().values()):
        assert torch.equal(a, b)
    assert probe.steps == [0, 10, 20]
    assert set(probe.exact_match) == {"first", "add", "first/seen", "first/unseen", "add/seen", "add/unseen"}
    assert all(len(v) == 3 and all(0.0 <= x <= 1.0 for x in v) for v in probe.exact_match.values())
    with pytest.raises(ValueError, match="every"):
        ExactMatchProbe(tok, prompts, every=0)
