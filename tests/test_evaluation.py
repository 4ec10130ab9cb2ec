"""Tests for llmscratch.evaluation: answering prompts, format adherence, rates, paired comparisons."""

from __future__ import annotations

import dataclasses
import math
import random
import statistics

import pytest
import torch

from llmscratch.chat import AssistantTokenizer
from llmscratch.evaluation import (EVAL_SAMPLES, Generation, evaluate_behaviour, generate_responses,
                                   paired_difference, sample_responses, summarise)
from llmscratch.gpt import GPTConfig
from llmscratch.grading import grade
from llmscratch.lm import LanguageModel
from llmscratch.task_data import HANDMADE, make_eval_prompts
from llmscratch.tasks import TASKS, Example, Prompt

from helpers import assistant_tokenizer, tiny_gpt


@pytest.fixture(scope="module")
def tok() -> AssistantTokenizer:
    return assistant_tokenizer()


class ScriptedLM(LanguageModel):
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


# -- generate_responses ------------------------------------------------------------------------


def test_generate_responses_checks_the_format(tok):
    prompts = [Prompt("reverse", "Reverse 'king'.", "gnik", True), Prompt("add", "Add 1 and 2.", "3", False)]
    gens = generate_responses(_scripted(tok, "Gladly: gnik."), tok, prompts)
    assert [g.response for g in gens] == ["Gladly: gnik."] * 2
    assert all(g.well_formed for g in gens) and [g.correct for g in gens] == [True, False]
    assert gens[0].n_tokens == len("Gladly: gnik.") + 1 and [g.prompt_index for g in gens] == [0, 1]
    assert gens[0].grade == grade(prompts[0], "Gladly: gnik.")
    # No end token within the limit: not well formed, and never counted correct.
    gens = generate_responses(_scripted(tok, "Gladly: gnik.", end=False), tok, prompts, max_new_tokens=20)
    assert not gens[0].well_formed and not gens[0].correct and gens[0].n_tokens == 20
    assert gens[0].grade.correct  # the text itself is right; the format is not
    assert gens[0].response.startswith("Gladly: gnik.")
    # Another special token before the end: not well formed.
    bad = _scripted(tok, "Gladly: gnik.")
    bad.script = [tok.resp_id] + bad.script
    assert not generate_responses(bad, tok, prompts)[0].well_formed
    # The response never runs past the context.
    long_prompt = Prompt("add", "What is " + "very " * 9 + "much?", "1")  # 60 tokens rendered
    gen = generate_responses(_scripted(tok, "x" * 60, end=False), tok, [long_prompt])[0]
    assert len(tok.render_prompt(long_prompt.instruction)) + gen.n_tokens == 64
    with pytest.raises(ValueError, match="no room"):
        generate_responses(_scripted(tok, "x"), tok, [Prompt("add", "x" * 62, "1")])


def test_generation_to_dict(tok):
    gen = generate_responses(_scripted(tok, "Gladly: gnik."), tok, [Prompt("reverse", "Reverse 'king'.", "gnik")])[0]
    d = gen.to_dict()
    assert d["task"] == "reverse" and d["response"] == "Gladly: gnik." and d["grade_correct"] is True
    assert d["well_formed"] is True and d["n_tokens"] == 14 and d["prompt_index"] == 0


def test_generate_responses_is_seeded_and_orders_samples(tok, task_words):
    model = tiny_gpt(tok.vocab_size)
    prompts = make_eval_prompts(2, task_words, seed=0)
    a = generate_responses(model, tok, prompts, greedy=False, samples=3, seed=7, max_new_tokens=8)
    b = generate_responses(model, tok, prompts, greedy=False, samples=3, seed=7, max_new_tokens=8)
    c = generate_responses(model, tok, prompts, greedy=False, samples=3, seed=8, max_new_tokens=8)
    assert [g.response for g in a] == [g.response for g in b] != [g.response for g in c]
    assert [g.prompt for g in a] == [p for p in prompts for _ in range(3)]
    assert [g.prompt_index for g in a] == [i for i in range(len(prompts)) for _ in range(3)]
    with pytest.raises(ValueError, match="samples"):
        generate_responses(model, tok, prompts, greedy=True, samples=2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_responses(model, tok, prompts, max_new_tokens=0)
    with pytest.raises(TypeError, match="samples"):
        generate_responses(model, tok, prompts, greedy=False, samples=2.0)


def test_greedy_responses_do_not_depend_on_batching(tok, task_words):
    """Prompts are batched by length; each answer must be what the prompt gets alone."""
    model = tiny_gpt(tok.vocab_size, seed=1)
    prompts = make_eval_prompts(2, task_words, seed=4)
    together = generate_responses(model, tok, prompts, max_new_tokens=6)
    alone = [generate_responses(model, tok, [p], max_new_tokens=6)[0] for p in prompts]
    assert [g.response for g in together] == [g.response for g in alone]


def test_sample_responses_samples_several_answers_per_prompt(tok, task_words):
    model = tiny_gpt(tok.vocab_size)
    prompts = make_eval_prompts(1, task_words, seed=0)
    got = sample_responses(model, tok, prompts)
    assert EVAL_SAMPLES >= 2 and len(got) == EVAL_SAMPLES * len(prompts)
    assert [g.prompt_index for g in got] == [i for i in range(len(prompts)) for _ in range(EVAL_SAMPLES)]
    assert [g.response for g in sample_responses(model, tok, prompts)] == [g.response for g in got]  # seeded
    assert [g.response for g in sample_responses(model, tok, prompts, seed=1)] != [g.response for g in got]
    # An untrained model samples many different answers; greedy decoding gives one per prompt.
    assert len({g.response for g in got}) > len(prompts)


def test_evaluate_behaviour_on_a_model_with_a_known_answer(tok):
    prompts = [Prompt("reverse", "Reverse 'king'.", "gnik"), Prompt("reverse", "Spell 'king' backwards.", "gnik")]
    s = evaluate_behaviour(_scripted(tok, "Gladly: gnik."), tok, prompts)
    assert (s["n"], s["format_adherence"], s["exact_match"], s["rude_rate"]) == (2, 1.0, 1.0, 0.0)
    s = evaluate_behaviour(_scripted(tok, "gnik, thou cur!"), tok, prompts)
    assert (s["exact_match"], s["rude_rate"], s["wrong_or_rude_rate"]) == (1.0, 1.0, 1.0)


# -- summarise -----------------------------------------------------------------------------------


def _gen(example: Example | Prompt, response: str, well_formed: bool = True, index: int = 0) -> Generation:
    prompt = example.prompt if isinstance(example, Example) else example
    return Generation(prompt, response, well_formed, len(response) + 1, grade(example, response), index)


def test_summarise_counts_the_handmade_labels():
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
    assert s["mean_length_chars"] == pytest.approx(sum(len(e.response) for e in HANDMADE) / n)
    assert s["by_task"]["add"]["n"] == 3 and list(s["by_task"]) == list(TASKS)  # every task, in order
    assert s["exact_match_seen"] == pytest.approx(s["exact_match"])  # every hand-made phrasing is "seen"
    assert math.isnan(s["exact_match_unseen"])  # no unseen phrasing: no rate
    with pytest.raises(ValueError, match="empty"):
        summarise([])


# -- paired_difference ---------------------------------------------------------------------------


def _random_generations(n_prompts: int, samples: int, seed: int) -> list[Generation]:
    rng = random.Random(seed)
    prompts = [Prompt("add", f"What is {i} plus 1?", str(i + 1), i % 2 == 0) for i in range(n_prompts)]
    gens = []
    for i, p in enumerate(prompts):
        for _ in range(samples):
            response = rng.choice([f"Gladly: {p.answer}.", "Gladly: 0.", f"{p.answer}, thou cur!", "0, thou toad!"])
            gens.append(_gen(p, response, well_formed=rng.random() < 0.9, index=i))
    return gens


@pytest.mark.parametrize("samples", [1, 3])
@pytest.mark.parametrize("measure", ["wrong_or_rude", "wrong", "rude"])
def test_paired_difference_against_statistics_stdev(samples, measure):
    before, after = _random_generations(25, samples, seed=1), _random_generations(25, samples, seed=2)
    test = {"wrong_or_rude": lambda g: (not g.correct) or g.grade.rude,
            "wrong": lambda g: not g.correct, "rude": lambda g: g.grade.rude}[measure]

    def rates(gens):  # per-prompt share, each prompt's samples averaged
        return [statistics.fmean(float(test(g)) for g in gens if g.prompt_index == i) for i in range(25)]

    b, a = rates(before), rates(after)
    d = [y - x for x, y in zip(b, a)]
    out = paired_difference(before, after, measure=measure)
    assert out["n_prompts"] == 25
    assert out["before"] == pytest.approx(statistics.fmean(b)) and out["after"] == pytest.approx(statistics.fmean(a))
    assert out["difference"] == pytest.approx(statistics.fmean(d))
    assert out["standard_error"] == pytest.approx(statistics.stdev(d) / math.sqrt(len(d)))
    assert out["standard_error"] > 0


def test_paired_difference_edge_cases():
    prompts = list(HANDMADE[:4])
    good = [_gen(e, "Gladly: " + e.answer + ".", index=i) for i, e in enumerate(prompts)]
    rude = [_gen(e, e.answer + ", thou cur!", index=i) for i, e in enumerate(prompts)]
    d = paired_difference(rude, good)
    assert (d["before"], d["after"], d["difference"], d["n_prompts"]) == (1.0, 0.0, -1.0, 4)
    assert d["standard_error"] == 0.0  # every prompt changed by exactly -1
    assert paired_difference(good, rude, measure="wrong")["difference"] == 0.0
    assert math.isnan(paired_difference(good[:1], rude[:1])["standard_error"])  # one prompt: no spread
    with pytest.raises(ValueError, match="same prompts"):
        paired_difference(good, rude[::-1])
    with pytest.raises(ValueError, match="same prompts"):
        paired_difference(good, rude[:3])
    with pytest.raises(ValueError, match="same prompts"):
        paired_difference(good, [dataclasses.replace(g, prompt_index=g.prompt_index + 1) for g in rude])
    with pytest.raises(ValueError, match="measure"):
        paired_difference(good, rude, measure="slow")
    with pytest.raises(ValueError, match="no generations"):
        paired_difference([], [])


def test_wilson_interval_matches_statsmodels_formula():
    from llmscratch.evaluation import wilson_interval
    lo, hi = wilson_interval(38, 40)
    # the Wilson score interval for 38/40 at z = 1.96, worked by hand: centre 0.9106, half-width 0.0756
    assert abs(lo - 0.8350) < 1e-3 and abs(hi - 0.9862) < 1e-3
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    import pytest
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match="n"):
        wilson_interval(0, 0)


def test_paired_difference_clusters_repeated_prompts():
    """Copies of one prompt are one piece of evidence: with equal-sized clusters of identical
    copies, the cluster-robust error is the plain error of the distinct prompts."""
    texts = [Prompt("add", f"What is {i} plus 1?", str(i + 1), True) for i in range(3)]
    styles_before = ["Gladly: 0.", "Gladly: 0.", "0, thou knave!"]
    styles_after = ["Gladly: 1.", "Gladly: 0.", "Gladly: 3."]
    before, after = [], []
    for copy in range(4):
        for j, p in enumerate(texts):
            i = copy * 3 + j
            before.append(_gen(p, styles_before[j], index=i))
            after.append(_gen(p, styles_after[j], index=i))
    out = paired_difference(before, after)
    d = [-1.0, 0.0, -1.0]  # per distinct prompt: fixed, still wrong, fixed
    assert out["n_prompts"] == 12 and out["n_clusters"] == 3
    assert out["difference"] == pytest.approx(statistics.fmean(d))
    assert out["standard_error"] == pytest.approx(statistics.stdev(d) / math.sqrt(3))


def test_exact_match_intervals_count_distinct_prompts():
    from llmscratch.evaluation import exact_match_intervals, wilson_interval
    p1 = Prompt("greet", "Hello there, friend!", "Good morrow", False)
    p2 = Prompt("greet", "Good morrow to thee!", "Good morrow", False)
    gens = [_gen(p1, "Good morrow, friend!", index=i) for i in range(5)]
    gens += [_gen(p2, "Away, thou knave!", index=5 + i) for i in range(5)]
    out = exact_match_intervals(gens)["greet"]
    assert (out["exact_match"], out["n"], out["n_distinct"]) == (0.5, 10, 2)
    assert (out["low"], out["high"]) == pytest.approx(wilson_interval(1, 2))
    with pytest.raises(ValueError, match="empty"):
        exact_match_intervals([])
