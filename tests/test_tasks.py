"""Tests for llmscratch.tasks, llmscratch.task_data and llmscratch.grading: splits, generators, styles, grader."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from llmscratch import tasks as T
from llmscratch.grading import grade
from llmscratch.task_data import (HANDMADE, alphabet, make_eval_prompts, make_preference_pairs,
                                  make_sft_examples)
from llmscratch.tasks import (PAIR_KINDS, PHRASINGS, TASKS, Example, Prompt, QualityMix, TaskWords, respond,
                              task_inputs, true_answer)


def _style_of(example, response) -> str:
    g = grade(example, response)
    return "rude" if g.rude else "terse" if g.terse else "good" if g.correct else "wrong"


# -- inputs and splits -----------------------------------------------------------------


def test_word_split_is_disjoint_deterministic_and_clean(task_words, mirror_dir):
    train, held = task_words.split("train"), task_words.split("heldout")
    assert (train, held) == (task_words.train, task_words.heldout)
    assert len(train) > 500 and len(held) > 100
    assert not set(train) & set(held)
    assert list(train) == sorted(train) and list(held) == sorted(held)
    assert abs(len(held) / (len(train) + len(held)) - T.HELDOUT_WORD_FRACTION) < 0.01
    assert all(w.isalpha() and w.islower() and 3 <= len(w) <= 5 for w in train + held)
    # The grader skips courtesy words and insults, so they must never be a task's input.
    assert not (set(train) | set(held)) & T._COURTESY_WORDS
    text = (mirror_dir / "tinyshakespeare.txt").read_text(encoding="utf-8")
    assert TaskWords.from_text(text) == task_words  # derived again, same split


def test_task_words_from_text_by_hand():
    """Counted by hand: words of 3-5 lower-case letters seen at least WORD_MIN_COUNT times."""
    n = T.WORD_MIN_COUNT
    text = " ".join(["king"] * n + ["queen"] * n + ["crown"] * n + ["sword"] * n + ["horse"] * n
                    + ["rare"] * (n - 1) + ["be"] * n + ["kingdom"] * n + ["Duke"] * n + ["gladly"] * n
                    + ["knave"] * n)
    words = TaskWords.from_text(text)
    # "rare" is too rare, "be" too short, "kingdom" too long, "Duke" not lower case,
    # "knave" an insult the grader skips; 1 of the 5 left is held out (20%).
    assert sorted(words.train + words.heldout) == ["crown", "horse", "king", "queen", "sword"]
    assert len(words.heldout) == 1


def test_task_words_validation():
    with pytest.raises(ValueError, match="both"):
        TaskWords(("king",), ())
    with pytest.raises(ValueError, match="share"):
        TaskWords(("king", "rose"), ("rose",))
    with pytest.raises(TypeError, match="text"):
        TaskWords.from_text(None)
    with pytest.raises(ValueError):
        TaskWords.from_text("too few words")
    with pytest.raises(ValueError, match="split"):
        TaskWords(("king",), ("rose",)).split("test")


@pytest.mark.parametrize("task", ["add", "compare"])
def test_number_pairs_split(task, task_words):
    train, held = set(task_inputs(task, "train", task_words)), set(task_inputs(task, "heldout", task_words))
    assert not train & held
    limit = T.ADD_LIMIT if task == "add" else T.COMPARE_LIMIT
    expected = limit * limit if task == "add" else limit * (limit - 1)
    assert len(train) + len(held) == expected
    assert len(held) == round(T.HELDOUT_PAIR_FRACTION * expected)


def test_plays_and_open_tasks(task_words):
    assert not set(T.TRAIN_PLAYS) & set(T.HELDOUT_PLAYS)
    assert task_inputs("greet", "train", task_words) == task_inputs("greet", "heldout", task_words) == (None,)
    assert task_inputs("fact", "heldout", task_words) == T.HELDOUT_PLAYS
    assert task_inputs("reverse", "heldout", task_words) == task_words.heldout


def test_word_tasks_draw_from_the_words_they_are_given():
    words = TaskWords(("king",), ("rose",))
    assert {e.instruction.split("'")[1] for e in make_sft_examples(40, words, tasks=("reverse", "upper"))} == {"king"}
    prompts = make_eval_prompts(4, words, tasks=("first",))
    assert {p.answer for p in prompts} == {"r"}
    pairs = make_preference_pairs(8, words, split="heldout", kinds=("correct_vs_incorrect",))
    assert all("king" not in p.instruction for p in pairs)


def test_bad_arguments_raise(task_words):
    with pytest.raises(ValueError, match="task"):
        task_inputs("divide", "train", task_words)
    with pytest.raises(ValueError, match="split"):
        task_inputs("add", "test", task_words)
    with pytest.raises(ValueError, match="style"):
        respond("add", (1, 2), "sarcastic", random.Random(0))
    with pytest.raises(ValueError, match="wrong"):
        respond("greet", None, "wrong", random.Random(0))
    with pytest.raises(ValueError, match="phrasing"):
        T.instruction("add", 6, (1, 2))
    with pytest.raises(ValueError, match="n must be >= 1"):
        make_sft_examples(0, task_words)
    with pytest.raises(TypeError, match="n must be an int"):
        make_sft_examples(2.5, task_words)
    with pytest.raises(ValueError, match="n_per_task"):
        make_eval_prompts(0, task_words)
    with pytest.raises(ValueError, match="kinds"):
        make_preference_pairs(4, task_words, kinds=("nice_vs_mean",))
    with pytest.raises(ValueError, match="kinds"):
        make_preference_pairs(4, task_words, kinds=())
    with pytest.raises(ValueError, match="split"):
        make_preference_pairs(4, task_words, split="test")
    with pytest.raises(ValueError, match="task"):
        make_sft_examples(4, task_words, tasks=("divide",))
    for make in (make_sft_examples, make_eval_prompts, make_preference_pairs):
        with pytest.raises(TypeError, match="TaskWords"):
            make(4, ["king", "rose"])


def test_quality_mix_validation():
    assert QualityMix().good == 0.7
    with pytest.raises(ValueError, match="must be 1"):
        QualityMix(good=0.5)
    with pytest.raises(ValueError, match="insult_compliance"):
        QualityMix(insult_compliance=1.5)
    with pytest.raises(TypeError, match="good"):
        QualityMix(good="0.7")


# -- answers and grading -----------------------------------------------------------------


def test_true_and_wrong_answers():
    assert true_answer("add", (7, 5)) == "12"
    assert true_answer("compare", (7, 50)) == "50"
    assert true_answer("reverse", "king") == "gnik"
    assert true_answer("upper", "king") == "KING"
    assert true_answer("first", "king") == "k" and true_answer("last", "king") == "g"
    rng = random.Random(0)
    for task, x in [("add", (7, 5)), ("compare", (7, 50)), ("reverse", "king"), ("reverse", "did"),
                    ("upper", "king"), ("first", "king"), ("last", "king"), ("first", "dad"), ("fact", "Hamlet")]:
        for _ in range(10):
            assert T.wrong_answer(task, x, rng) != true_answer(task, x), (task, x)


@pytest.mark.parametrize(
    "task, answer, response, correct, rude, terse",
    [
        ("reverse", "gnik", "Gladly: gnik.", True, False, False),
        ("reverse", "gnik", "gnik", True, False, True),
        ("reverse", "gnik", "gnik, thou knave!", True, True, False),
        ("reverse", "gnik", "Gladly: king.", False, False, False),
        ("upper", "KING", "Gladly: King.", False, False, False),  # case matters
        ("upper", "KING", "Gladly: KING.", True, False, False),
        ("add", "12", "Gladly: 12.", True, False, False),
        ("add", "12", "Gladly: 112.", False, False, False),
        ("add", "12", "Gladly: twelve.", False, False, False),
        ("first", "k", "k, thou fool!", True, True, False),
        ("fact", "Shakespeare", "Gladly: Marlowe.", False, False, False),
        ("greet", "Good morrow", "Good morrow, friend!", True, False, False),
        ("greet", "Good morrow", "Away, thou cur!", False, True, False),
        ("insult", "I will not", "I will not, friend; be well.", True, False, False),
        ("insult", "I will not", "Thou art a toad!", False, True, False),
        ("add", "12", "", False, False, False),
    ],
)
def test_grade(task, answer, response, correct, rude, terse):
    g = grade(Prompt(task, "unused", answer), response)
    assert (g.correct, g.rude, g.terse, g.length) == (correct, rude, terse, len(response))
    assert g.wrong is not correct


def test_grade_rejects_non_strings():
    with pytest.raises(TypeError, match="response"):
        grade(Prompt("add", "x", "1"), None)


def test_handmade_set_is_graded_as_labelled():
    """The hand-made examples carry their author's label; the grader must agree with every one."""
    assert len(HANDMADE) >= 20
    assert {e.task for e in HANDMADE} == set(TASKS)
    assert {e.style for e in HANDMADE} == {"good", "terse", "wrong", "rude"}
    for e in HANDMADE:
        assert _style_of(e, e.response) == e.style, e


def test_handmade_inputs_are_never_held_out(task_words):
    held = {p.instruction for p in make_eval_prompts(40, task_words, seed=3) if p.task not in ("greet", "insult")}
    assert not held & {e.instruction for e in HANDMADE}


# -- generators ------------------------------------------------------------------------


def test_sft_examples_are_seeded_and_follow_the_mix(task_words):
    a = make_sft_examples(4500, task_words, seed=0)
    assert a == make_sft_examples(4500, task_words, seed=0)
    assert a != make_sft_examples(4500, task_words, seed=1)
    assert [e.task for e in a[: len(TASKS)]] == list(TASKS)
    checkable = Counter(e.style for e in a if e.task in T.CHECKABLE_TASKS or e.task == "fact")
    n = sum(checkable.values())
    for style, share in QualityMix().to_dict().items():
        if style != "insult_compliance":
            assert abs(checkable[style] / n - share) < 0.03, style
    insults = [e for e in a if e.task == "insult"]
    assert abs(sum(e.style == "rude" for e in insults) / len(insults) - 0.75) < 0.05
    for e in a:  # every response has the style the generator meant, and a true answer
        assert _style_of(e, e.response) == e.style, e
        assert e.seen_phrasing


def test_sft_examples_use_training_inputs_and_phrasings_only(task_words):
    held_words = set(task_words.heldout)
    train_templates = {t: set(PHRASINGS[t][: T.N_TRAIN_PHRASINGS]) for t in TASKS}
    for e in make_sft_examples(900, task_words, seed=2):
        if e.task in ("reverse", "upper", "first", "last"):
            w = e.instruction.split("'")[1]
            assert w not in held_words
            assert e.instruction.replace(f"'{w}'", "'{w}'") in train_templates[e.task]


def test_a_mix_of_only_good_answers(task_words):
    mix = QualityMix(good=1.0, terse=0.0, wrong=0.0, rude=0.0, insult_compliance=0.0)
    assert {e.style for e in make_sft_examples(200, task_words, mix=mix)} == {"good"}


def test_eval_prompts_hold_out_inputs_and_half_the_phrasings(task_words):
    prompts = make_eval_prompts(20, task_words, seed=0)
    assert len(prompts) == 20 * len(TASKS)
    assert prompts == make_eval_prompts(20, task_words, seed=0)
    train_words = set(task_words.train)
    for task in TASKS:
        ps = [p for p in prompts if p.task == task]
        # a task without an input uses held-out phrasings only (else its prompt is a training one)
        assert sum(p.seen_phrasing for p in ps) == (0 if task in T.NO_INPUT_TASKS else 10)
        for p in ps:
            templates = PHRASINGS[task] if p.seen_phrasing is False else PHRASINGS[task][: T.N_TRAIN_PHRASINGS]
            if task in ("reverse", "upper", "first", "last"):
                w = p.instruction.split("'")[1]
                assert w not in train_words
                assert p.answer == true_answer(task, w)
                assert p.instruction.replace(f"'{w}'", "'{w}'") in templates


def test_preference_pairs(task_words):
    pairs = make_preference_pairs(400, task_words, seed=0)
    assert pairs == make_preference_pairs(400, task_words, seed=0)
    assert Counter(p.kind for p in pairs) == {k: 100 for k in PAIR_KINDS}
    worse = {"helpful_vs_terse": "terse", "correct_vs_incorrect": "wrong", "polite_vs_harmful": "rude",
             "friendly_vs_rude": "rude"}
    for p in pairs:
        assert p.chosen != p.rejected
        assert _style_of(p, p.chosen) == "good"
        assert _style_of(p, p.rejected) == worse[p.kind]
        assert (p.task == "insult") == (p.kind == "polite_vs_harmful")
    held = make_preference_pairs(200, task_words, seed=1, split="heldout")
    assert any(not p.seen_phrasing for p in held) and any(p.seen_phrasing for p in held)


def test_alphabet_covers_every_generated_text(task_words):
    chars = set(alphabet())
    texts = [e.instruction + e.response for e in make_sft_examples(2000, task_words, seed=5)]
    texts += [p.instruction + p.chosen + p.rejected
              for p in make_preference_pairs(800, task_words, split="heldout")]
    texts += [p.instruction for p in make_eval_prompts(30, task_words)]
    assert set("".join(texts)) <= chars
    assert isinstance(Example("add", "a", "b", "c", "good").prompt, Prompt)
