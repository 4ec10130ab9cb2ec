"""Tests for llmscratch.sft: tokenizer, renderer, vocabulary extension, dataset, generation, metrics."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
import torch
from torch import nn

from llmscratch import sft
from llmscratch import tasks as T
from llmscratch.gpt import GPT, GPTConfig
from llmscratch.sft import (END_OF_TEXT, EVAL_SAMPLES, INSTRUCTION, RESPONSE, AssistantTokenizer, Generation,
                            SFTDataset, extend_vocab, generate_responses, paired_difference, sample_responses,
                            summarise, text_loss)
from llmscratch.tasks import HANDMADE, Prompt, grade
from llmscratch.train import TrainConfig, evaluate, train
from llmscratch.vocab import CharVocab
from llmscratch.windows import IGNORE_INDEX, TokenStream

SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def tok() -> AssistantTokenizer:
    return AssistantTokenizer(CharVocab(list(SHAKESPEARE_CHARS)))


def _tiny_gpt(vocab_size: int, seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16, tie_weights=False)
    return GPT(dataclasses.replace(config, **kw))


# -- tokenizer and renderer ----------------------------------------------------------------


def test_tokenizer_keeps_old_ids_and_adds_what_the_tasks_need(tok):
    assert tok.base_vocab_size == 65
    assert tok.chars.itos[:65] == list(SHAKESPEARE_CHARS)
    assert tok.added_chars == "+012456789"  # Tiny Shakespeare has the digit 3 only
    assert tok.vocab_size == 65 + 10 + 3
    assert tok.special_ids == (75, 76, 77) and tok.pad_id == tok.eot_id
    text = INSTRUCTION + "Add 12 and 7." + RESPONSE + "Gladly: 19." + END_OF_TEXT
    ids = tok.encode(text)
    assert ids.count(tok.inst_id) == ids.count(tok.resp_id) == ids.count(tok.eot_id) == 1
    assert tok.decode(ids) == text
    assert len(ids) == len("Add 12 and 7.") + len("Gladly: 19.") + 3  # each special token is one id
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("Zoë")
    with pytest.raises(ValueError, match="outside"):
        tok.decode([tok.vocab_size])
    with pytest.raises(TypeError, match="CharVocab"):
        AssistantTokenizer("abc")


def test_render_masks_the_response_and_end_token_only(tok):
    ids, mask = tok.render("Reverse 'king'.", "Gladly: gnik.")
    prompt = tok.render_prompt("Reverse 'king'.")
    assert torch.equal(ids[: len(prompt)], prompt)
    assert ids[0] == tok.inst_id and prompt[-1] == tok.resp_id and ids[-1] == tok.eot_id
    assert mask.dtype == torch.bool and mask.shape == ids.shape
    assert not mask[: len(prompt)].any() and mask[len(prompt):].all()
    assert tok.decode(ids[mask]) == "Gladly: gnik." + END_OF_TEXT
    with pytest.raises(ValueError, match="special token"):
        tok.render("Say " + END_OF_TEXT, "no")
    with pytest.raises(ValueError, match="special token"):
        tok.render("Hi", "a" + RESPONSE)
    with pytest.raises(TypeError, match="instruction"):
        tok.render_prompt(3)


def test_every_task_example_fits_the_context(tok):
    """The longest instruction of every task with its longest response fits 64 tokens."""
    longest_insult = max(T.INSULTS, key=len)
    rng = random.Random(0)
    worst = 0
    for task in T.TASKS:
        for split in ("train", "heldout"):
            inputs = sorted(T.task_inputs(task, split), key=lambda x: len(str(x)))
            for x in inputs[-30:]:  # the longest inputs (all of them is slow: 8,000 number pairs)
                for k in range(len(T.PHRASINGS[task])):
                    instruction = T.instruction(task, k, x)
                    for style in T.STYLES:
                        if style == "wrong" and task in ("greet", "insult"):
                            continue
                        response = T.respond(task, x, style, rng)
                        for insult in T.INSULTS:
                            response = response.replace(insult, longest_insult)
                        worst = max(worst, len(tok.render(instruction, response)[0]))
    assert worst <= 64


# -- extend_vocab --------------------------------------------------------------------------


@pytest.mark.parametrize("tie", [False, True])
def test_extend_vocab_keeps_old_logits_and_means_new_rows(tok, tie):
    old = _tiny_gpt(65, tie_weights=tie)
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
    # The parameters are copies: training the new model leaves the old one alone.
    with torch.no_grad():
        new.transformer.h[0].attn.c_attn.weight.add_(1.0)
    assert not torch.equal(new.transformer.h[0].attn.c_attn.weight, old.transformer.h[0].attn.c_attn.weight)


def test_extend_vocab_errors():
    old = _tiny_gpt(65)
    with pytest.raises(ValueError, match="new_vocab_size"):
        extend_vocab(old, 64)
    with pytest.raises(TypeError, match="new_vocab_size"):
        extend_vocab(old, 70.0)
    with pytest.raises(TypeError, match="GPT"):
        extend_vocab(nn.Linear(2, 2), 70)
    assert extend_vocab(old, 65).config == old.config


# -- the dataset -----------------------------------------------------------------------------


def _examples(n: int, seed: int = 0):
    return T.make_sft_examples(n, seed=seed)


def test_dataset_targets_only_the_response(tok):
    examples = _examples(20)
    ds = SFTDataset.from_examples(tok, examples, block_size=64)
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


def test_dataset_errors(tok):
    with pytest.raises(ValueError, match="loss_on"):
        SFTDataset.from_examples(tok, _examples(2), loss_on="prompt")
    with pytest.raises(ValueError, match="empty"):
        SFTDataset([], pad_id=0)
    with pytest.raises(ValueError, match="block_size"):
        SFTDataset.from_examples(tok, _examples(9), block_size=20)
    ids, mask = tok.render("Hi", "Ho")
    with pytest.raises(ValueError, match="shape"):
        SFTDataset([(ids, mask[:-1])], pad_id=0)


def test_padding_never_reaches_the_loss(tok):
    """An example's loss is the same alone and in a batch padded for a much longer example."""
    model = _tiny_gpt(tok.vocab_size)
    short = T.Example("first", "Which letter starts 'cat'?", "Gladly: c.", "c", "good")
    long = T.Example("insult", "Say something rude to me.", "I will not, friend; be well.", "I will not", "good")
    alone = SFTDataset.from_examples(tok, [short])
    padded = SFTDataset.from_examples(tok, [short, long])
    assert padded.X.shape[1] > alone.X.shape[1]
    with torch.no_grad():
        _, loss_alone = model(alone.X, alone.Y)
        logits, _ = model(padded.X)
        row = torch.nn.functional.cross_entropy(logits[0], padded.Y[0], ignore_index=IGNORE_INDEX)
        # Another padding token changes nothing either: the model is causal.
        x = padded.X.clone()
        x[0][padded.Y[0] == IGNORE_INDEX] = 5
        x[0][: alone.X.shape[1]] = padded.X[0][: alone.X.shape[1]]
        row2 = torch.nn.functional.cross_entropy(model(x)[0][0], padded.Y[0], ignore_index=IGNORE_INDEX)
    assert torch.allclose(loss_alone, row, atol=1e-6) and torch.allclose(row, row2, atol=1e-6)


def test_dataset_protocol_and_train(tok):
    train_set = SFTDataset.from_examples(tok, _examples(300, seed=0), block_size=64)
    val_set = SFTDataset.from_examples(tok, T.make_sft_examples(45, seed=1, split="heldout"), block_size=64)
    g = torch.Generator().manual_seed(0)
    x, y = train_set.sample(8, g)
    assert x.shape == y.shape and x.shape[0] == 8 and x.is_contiguous()
    assert (y[:, -1] != IGNORE_INDEX).any()  # the batch is cut after its last target
    seen = sum(int((yb != IGNORE_INDEX).sum()) for _, yb in val_set.batches(16))
    assert seen == val_set.num_targets
    assert len(train_set.tensors) == 2

    config = TrainConfig(max_steps=30, batch_size=16, lr=1e-2, warmup_steps=3, eval_interval=15, eval_batches=2)
    results = []
    for _ in range(2):
        model = _tiny_gpt(tok.vocab_size)
        results.append(train(model, train_set, val_set, config, progress=False))
    assert results[0].batch_loss == results[1].batch_loss  # seeded
    assert results[0].val_loss[-1] < results[0].val_loss[0]
    assert math.isfinite(results[0].final_val_loss)


# -- generation and metrics ----------------------------------------------------------------


class ScriptedLM(nn.Module):
    """Answers every prompt with the same token ids (then repeats the last one)."""

    def __init__(self, vocab_size: int, script: list[int], resp_id: int) -> None:
        super().__init__()
        self.config = GPTConfig(vocab_size=vocab_size, block_size=64, n_layer=1, n_head=1, n_embd=4)
        self.script = script
        self.resp_id = resp_id

    def forward(self, idx, targets=None):
        B, T = idx.shape
        # The answer starts after the response token; find where it is.
        start = int((idx[0] == self.resp_id).nonzero()[0]) + 1
        step = min(T - start, len(self.script) - 1)
        logits = torch.zeros(B, T, self.config.vocab_size)
        logits[:, -1, self.script[step]] = 10.0
        return logits, None


def _scripted(tok, text: str, *, end: bool = True) -> ScriptedLM:
    ids = tok.encode(text) + ([tok.eot_id] if end else [])
    return ScriptedLM(tok.vocab_size, ids, tok.resp_id)


def test_generate_responses_checks_the_format(tok):
    prompts = [Prompt("reverse", "Reverse 'king'.", "gnik", True), Prompt("add", "Add 1 and 2.", "3", False)]
    gens = generate_responses(_scripted(tok, "Gladly: gnik."), tok, prompts)
    assert [g.response for g in gens] == ["Gladly: gnik."] * 2
    assert all(g.well_formed for g in gens) and [g.correct for g in gens] == [True, False]
    assert gens[0].n_tokens == len("Gladly: gnik.") + 1 and [g.prompt_index for g in gens] == [0, 1]
    # No end token within the limit: not well formed, and never counted correct.
    gens = generate_responses(_scripted(tok, "Gladly: gnik.", end=False), tok, prompts, max_new_tokens=20)
    assert not gens[0].well_formed and not gens[0].correct and gens[0].n_tokens == 20
    assert gens[0].response.startswith("Gladly: gnik.")
    # Another special token before the end: not well formed.
    bad = _scripted(tok, "Gladly: gnik.")
    bad.script = [tok.resp_id] + bad.script
    assert not generate_responses(bad, tok, prompts)[0].well_formed
    # The response never runs past the context.
    long_prompt = Prompt("add", "What is " + "very " * 9 + "much?", "1")  # 60 tokens rendered
    gen = generate_responses(_scripted(tok, "x" * 60, end=False), tok, [long_prompt])[0]
    assert len(tok.render_prompt(long_prompt.instruction)) + gen.n_tokens == 64


def test_generate_responses_is_seeded_and_orders_samples(tok):
    model = _tiny_gpt(tok.vocab_size)
    prompts = T.make_eval_prompts(2, seed=0)
    a = generate_responses(model, tok, prompts, greedy=False, samples=3, seed=7, max_new_tokens=8)
    b = generate_responses(model, tok, prompts, greedy=False, samples=3, seed=7, max_new_tokens=8)
    c = generate_responses(model, tok, prompts, greedy=False, samples=3, seed=8, max_new_tokens=8)
    assert [g.response for g in a] == [g.response for g in b] != [g.response for g in c]
    assert [g.prompt for g in a] == [p for p in prompts for _ in range(3)]
    with pytest.raises(ValueError, match="samples"):
        generate_responses(model, tok, prompts, greedy=True, samples=2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_responses(model, tok, prompts, max_new_tokens=0)


def test_sample_responses_is_the_books_sampling_protocol(tok):
    model = _tiny_gpt(tok.vocab_size)
    prompts = T.make_eval_prompts(2, seed=0)
    got = sample_responses(model, tok, prompts)
    want = generate_responses(model, tok, prompts, greedy=False, samples=EVAL_SAMPLES, temperature=1.0, seed=0)
    assert EVAL_SAMPLES >= 2 and len(got) == EVAL_SAMPLES * len(prompts)
    assert [(g.prompt, g.response) for g in got] == [(g.prompt, g.response) for g in want]


def _gen(example: T.Example, response: str, well_formed: bool = True, index: int = 0) -> Generation:
    return Generation(example.prompt, response, well_formed, len(response) + 1, grade(example, response), index)


def test_summarise_and_paired_difference():
    gens = [_gen(e, e.response, index=i) for i, e in enumerate(HANDMADE)]
    gens[0] = _gen(HANDMADE[0], HANDMADE[0].response, well_formed=False, index=0)  # a good answer that never stopped
    s = summarise(gens)
    n = len(HANDMADE)
    styles = [e.style for e in HANDMADE]
    assert s["n"] == n
    assert s["format_adherence"] == pytest.approx((n - 1) / n)
    correct = sum(st in ("good", "terse") or (st == "rude" and e.task != "insult" and e.task != "greet")
                  for st, e in zip(styles, HANDMADE)) - 1
    assert s["exact_match"] == pytest.approx(correct / n)
    assert s["rude_rate"] == pytest.approx(styles.count("rude") / n)
    assert s["wrong_rate"] == pytest.approx(1 - s["exact_match"])
    assert s["terse_rate"] == pytest.approx(styles.count("terse") / n)
    assert s["by_task"]["add"]["n"] == 3
    with pytest.raises(ValueError, match="empty"):
        summarise([])

    good = [_gen(e, "Gladly: " + e.answer + ".", index=i) for i, e in enumerate(HANDMADE[:4])]
    rude = [_gen(e, e.answer + ", thou cur!", index=i) for i, e in enumerate(HANDMADE[:4])]
    d = paired_difference(rude, good)
    assert (d["before"], d["after"], d["difference"], d["n_prompts"]) == (1.0, 0.0, -1.0, 4)
    assert d["standard_error"] == 0.0
    assert paired_difference(good, rude, measure="wrong")["difference"] == 0.0
    with pytest.raises(ValueError, match="same prompts"):
        paired_difference(good, rude[::-1])
    with pytest.raises(ValueError, match="measure"):
        paired_difference(good, rude, measure="slow")


def test_text_loss(tok):
    old = _tiny_gpt(65, seed=3)
    ids = torch.randint(0, 65, (700,))
    assert text_loss(old, ids) == pytest.approx(evaluate(old, TokenStream(ids, 64, targets="all")), rel=1e-6)
    new = extend_vocab(old, tok.vocab_size)
    # Over the old characters only, the extended model is the old model.
    assert text_loss(new, ids, vocab_limit=65) == pytest.approx(text_loss(old, ids), rel=1e-6)
    assert text_loss(new, ids) > text_loss(old, ids)  # the new tokens take some probability
    with pytest.raises(ValueError, match="vocab_limit"):
        text_loss(new, ids, vocab_limit=0)


def test_instruction_data_stats(tok):
    records = [{"instruction": "Say hi.", "input": "", "output": "Hi."},
               {"instruction": "Translate.", "input": "Bonjour", "output": "Hello, and welcome to the café!"}]
    s = sft.instruction_data_stats(records, tokenizer=tok, block_size=64)
    assert s["n_examples"] == 2 and s["n_with_input"] == 1 and s["keys"] == ["input", "instruction", "output"]
    assert s["chars"]["instruction"]["max"] == len("Translate.")
    assert s["n_fit_block"] == 1 and s["n_encodable"] == 1  # é is not in the vocabulary
    assert sft.alpaca_text(records[1]).count("### Input:") == 1 and "### Input" not in sft.alpaca_text(records[0])
    real = sft.instruction_data_stats()
    assert real["n_examples"] == 1100 and real["n_fit_block"] == 0


def test_configs():
    data, optim = sft.sft_configs()
    assert optim.lr < 6e-3  # below the pretraining peak
    assert data.n_train >= optim.max_steps * optim.batch_size  # each example seen at most once
    data.n_train = 1
    assert sft.sft_configs()[0].n_train != 1
    with pytest.raises(ValueError, match="loss_on"):
        sft.SFTConfig(loss_on="prompt")
    with pytest.raises(ValueError, match="n_train"):
        sft.SFTConfig(n_train=0)
    assert sft.SFTConfig(mix={"good": 1.0, "terse": 0.0, "wrong": 0.0, "rude": 0.0}).mix.good == 1.0
