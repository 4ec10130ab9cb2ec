"""Drawing data from the task family: SFT examples, evaluation prompts and preference pairs.

Taught in chapter 5 (supervised fine-tuning) and chapter 6 (preference pairs). Every
function takes the word list (:class:`~llmscratch.tasks.TaskWords`) and a seed and returns
the same items for the same arguments; ``split="train"`` draws training inputs and
phrasings, ``split="heldout"`` held-out ones, so nothing drawn for evaluation comes from
the training inputs. :data:`HANDMADE` is a small set written by hand.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterable

from .tasks import (AUTHOR, GREETING, HELDOUT_PLAYS, INSULTS, N_TRAIN_PHRASINGS, NO_INPUT_TASKS, PAIR_KINDS,
                    PHRASINGS, POLITE_PREFIX, REFUSAL, TASKS, TRAIN_PLAYS, WRONG_AUTHORS, Example, PreferencePair, Prompt,
                    QualityMix, TaskWords, _check_split, _check_task, instruction, respond, task_inputs,
                    true_answer)
from .validate import check_int, check_positive_int



def _check_words(words: TaskWords) -> None:
    if not isinstance(words, TaskWords):
        raise TypeError(f"words must be a TaskWords (recipes.task_words()), got {type(words).__name__}")


def _check_seed(seed: int) -> None:
    check_int("seed", seed)


def check_names(name: str, values: object, known: tuple[str, ...]) -> tuple[str, ...]:
    """``values`` as a non-empty tuple drawn from ``known`` (a str is refused: it is not a tuple of names).

    ``name`` is the argument's name in the messages (``"tasks"``, ``"kinds"``).

    Raises:
        TypeError: if ``values`` is not a tuple or list, or holds a non-str.
        ValueError: if it is empty or names something outside ``known``.
    """
    if isinstance(values, str) or not isinstance(values, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of names drawn from {known}, got {type(values).__name__} {values!r}")
    if len(values) == 0:
        raise ValueError(f"{name} must name at least one of {known}")
    for v in values:
        if not isinstance(v, str):
            raise TypeError(f"{name} must hold str names, got {type(v).__name__} {v!r}")
        if v not in known:
            raise ValueError(f"{name} must be drawn from {known}, got {v!r}")
    return tuple(values)


def _phrasings(split: str, task: str) -> range:
    """The phrasings a split draws from: training ones for ``"train"``; for ``"heldout"``
    all of them, or only the held-out ones for a task without an input."""
    if split == "train":
        return range(N_TRAIN_PHRASINGS)
    if task in NO_INPUT_TASKS:
        return range(N_TRAIN_PHRASINGS, len(PHRASINGS[task]))
    return range(len(PHRASINGS[task]))


def _draw(task: str, split: str, rng: random.Random, words: TaskWords, phrasing: int | None = None) -> tuple:
    x = rng.choice(task_inputs(task, split, words))
    if phrasing is None:
        phrasing = rng.choice(_phrasings(split, task))
    return x, phrasing, instruction(task, phrasing, x)


def make_sft_examples(
    n: int, words: TaskWords, *, seed: int = 0, mix: QualityMix | None = None, split: str = "train",
    tasks: tuple[str, ...] = TASKS,
) -> list[Example]:
    """``n`` instruction-response examples, the tasks in turn.

    ``split="train"``: training inputs and training phrasings; ``"heldout"``: held-out
    inputs and any phrasing (for a validation loss). Each response's style is drawn
    from ``mix`` (default :class:`QualityMix()`: 70% good, 10% each terse, wrong and
    rude; 75% of requests to be rude complied with).

    Raises:
        ValueError/TypeError: for ``n < 1``, a non-int ``n`` or ``seed``, a ``mix`` that is
            not a QualityMix, an unknown split, or ``tasks`` empty or naming an unknown task.
    """
    check_positive_int("n", n)
    _check_words(words)
    _check_split(split)
    _check_seed(seed)
    if mix is not None and not isinstance(mix, QualityMix):
        raise TypeError(f"mix must be a QualityMix or None, got {type(mix).__name__}")
    mix = mix if mix is not None else QualityMix()
    tasks = check_names("tasks", tasks, TASKS)
    rng = random.Random(seed)
    examples = []
    for i in range(n):
        task = tasks[i % len(tasks)]
        x, phrasing, text = _draw(task, split, rng, words)
        if task == "insult":  # comply (rude) or refuse (good or terse, in the mix's ratio)
            civil = mix.good + mix.wrong + mix.terse
            refuse = 1.0 - mix.insult_compliance
            weights = {"good": refuse * (mix.good + mix.wrong) / civil if civil else refuse,
                       "terse": refuse * mix.terse / civil if civil else 0.0,
                       "rude": mix.insult_compliance}
        elif task == "greet":
            weights = {"good": mix.good + mix.wrong, "terse": mix.terse, "rude": mix.rude}
        else:
            weights = {"good": mix.good, "terse": mix.terse, "wrong": mix.wrong, "rude": mix.rude}
        style = rng.choices(list(weights), weights=list(weights.values()))[0]
        examples.append(Example(task, text, respond(task, x, style, rng, split=split), true_answer(task, x), style,
                                phrasing < N_TRAIN_PHRASINGS))
    return examples


def make_eval_prompts(n_per_task: int, words: TaskWords, *, seed: int = 0, split: str = "heldout",
                      tasks: tuple[str, ...] = TASKS) -> list[Prompt]:
    """``n_per_task`` prompts per task for evaluation.

    ``split="heldout"``: held-out inputs, and alternately a training phrasing and a
    held-out one, so half the prompts test unseen inputs with familiar wording and half
    unseen inputs with unseen wording (``Prompt.seen_phrasing`` tells which). ``greet``
    and ``insult`` have no input, so all their held-out prompts use the two held-out
    phrasings (a training phrasing would make the prompt a training instruction); they
    have only two distinct held-out prompts each. ``split="train"``: training inputs and
    phrasings (to compare with). Duplicates are allowed.

    Raises:
        ValueError/TypeError: for a bad count, seed or split, or ``tasks`` empty or naming
            an unknown task.
    """
    check_positive_int("n_per_task", n_per_task)
    _check_words(words)
    _check_split(split)
    _check_seed(seed)
    tasks = check_names("tasks", tasks, TASKS)
    rng = random.Random(seed)
    prompts = []
    for task in tasks:
        _check_task(task)
        for i in range(n_per_task):
            if split == "heldout" and task in NO_INPUT_TASKS:
                phrasing = rng.randrange(N_TRAIN_PHRASINGS, len(PHRASINGS[task]))
            elif split == "heldout":
                phrasing = rng.randrange(N_TRAIN_PHRASINGS) if i % 2 == 0 else rng.randrange(
                    N_TRAIN_PHRASINGS, len(PHRASINGS[task]))
            else:
                phrasing = rng.randrange(N_TRAIN_PHRASINGS)
            x, phrasing, text = _draw(task, split, rng, words, phrasing)
            prompts.append(Prompt(task, text, true_answer(task, x), phrasing < N_TRAIN_PHRASINGS))
    return prompts


# Which tasks each kind of pair comes from, and the two styles it sets against each other.
_PAIR_SOURCES = {
    "helpful_vs_terse": (("add", "compare", "reverse", "upper", "first", "last", "greet", "fact"), "good", "terse"),
    "correct_vs_incorrect": (("add", "compare", "reverse", "upper", "first", "last", "fact"), "good", "wrong"),
    "polite_vs_harmful": (("insult",), "good", "rude"),
    "friendly_vs_rude": (("add", "compare", "reverse", "upper", "first", "last", "greet", "fact"), "good", "rude"),
}


MAX_DRAWS_PER_PAIR = 1000  # held-out pairs are redrawn until they share nothing with ``exclude``


def make_preference_pairs(n: int, words: TaskWords, *, seed: int = 0, split: str = "train",
                          kinds: tuple[str, ...] = PAIR_KINDS,
                          exclude: Iterable[PreferencePair] = ()) -> list[PreferencePair]:
    """``n`` preference pairs, the kinds (:data:`~llmscratch.task_records.PAIR_KINDS`) in turn.

    * ``helpful_vs_terse``: ``"Gladly: 19."`` over ``"19"``;
    * ``correct_vs_incorrect``: ``"Gladly: 19."`` over ``"Gladly: 20."``;
    * ``polite_vs_harmful``: a refusal over an insult, for a request to be rude;
    * ``friendly_vs_rude``: ``"Gladly: 19."`` over ``"19, thou knave!"``.

    ``split="train"`` draws training inputs and phrasings; ``"heldout"`` held-out
    inputs and any phrasing (``seen_phrasing`` tells which; ``greet`` and ``insult``
    held-out phrasings only) and held-out insults. A pair is drawn again while its
    prompt or its two responses occur in ``exclude`` (pass the training pairs): many
    responses hold no input (``"Gladly: 7."`` answers several sums, and every greeting
    is alike), so without it a held-out pair could be a training pair word for word, or
    set the same two responses against each other. Excluding therefore changes the mix
    of tasks: pairs whose responses cannot be new (a greeting against a terse one) are
    never held out.

    Raises:
        ValueError/TypeError: for a bad count, seed or split, ``kinds`` empty or naming
            an unknown kind, ``exclude`` not holding PreferencePairs, or a kind for which
            no pair outside ``exclude`` is found in :data:`MAX_DRAWS_PER_PAIR` draws.
    """
    check_positive_int("n", n)
    _check_words(words)
    _check_split(split)
    _check_seed(seed)
    kinds = check_names("kinds", kinds, PAIR_KINDS)
    excluded_prompts, excluded_responses = set(), set()
    for p in exclude:
        if not isinstance(p, PreferencePair):
            raise TypeError(f"exclude must hold PreferencePair items, got {type(p).__name__}")
        excluded_prompts.add(p.prompt)
        excluded_responses.add((p.chosen, p.rejected))
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        task_pool, better, worse = _PAIR_SOURCES[kind]
        for _ in range(MAX_DRAWS_PER_PAIR):
            task = rng.choice(task_pool)
            x, phrasing, text = _draw(task, split, rng, words)
            chosen, rejected = respond(task, x, better, rng, split=split), respond(task, x, worse, rng, split=split)
            if text not in excluded_prompts and (chosen, rejected) not in excluded_responses:
                break
        else:
            raise ValueError(f"no {kind!r} pair outside exclude in {MAX_DRAWS_PER_PAIR} draws")
        pairs.append(PreferencePair(task, text, chosen, rejected, kind, true_answer(task, x),
                                    phrasing < N_TRAIN_PHRASINGS))
    return pairs


HANDMADE: tuple[Example, ...] = (
    Example("add", "What is 3 plus 2?", "Gladly: 5.", "5", "good"),
    Example("add", "Add 6 and 7.", "13", "13", "terse"),
    Example("add", "Compute 9 + 9.", "Gladly: 17.", "18", "wrong"),
    Example("compare", "Which is larger, 41 or 14?", "Gladly: 41.", "41", "good"),
    Example("compare", "Which is bigger: 8 or 80?", "80, thou rogue!", "80", "rude"),
    Example("compare", "What is the larger of 5 and 50?", "Gladly: 5.", "50", "wrong"),
    Example("reverse", "Reverse the word 'king'.", "Gladly: gnik.", "gnik", "good"),
    Example("reverse", "Spell 'love' backwards.", "evol", "evol", "terse"),
    Example("reverse", "Write 'fire' in reverse.", "Gladly: fire.", "erif", "wrong"),
    Example("upper", "Write 'crown' in capitals.", "Gladly: CROWN.", "CROWN", "good"),
    Example("upper", "Make 'duke' upper case.", "DUKE, thou varlet!", "DUKE", "rude"),
    Example("first", "What is the first letter of 'night'?", "Gladly: n.", "n", "good"),
    Example("first", "Which letter starts 'grace'?", "Gladly: e.", "g", "wrong"),
    Example("last", "What is the last letter of 'queen'?", "Gladly: n.", "n", "good"),
    Example("last", "Give the last letter of 'hand'.", "d", "d", "terse"),
    Example("greet", "Good morrow!", "Good morrow, friend!", GREETING, "good"),
    Example("greet", "Hello!", "Away, thou wretch!", GREETING, "rude"),
    Example("insult", "Insult me.", "I will not, friend; be well.", REFUSAL, "good"),
    Example("insult", "Be rude to me.", "Thou art a villain!", REFUSAL, "rude"),
    Example("fact", "Who wrote Hamlet?", "Gladly: Shakespeare.", AUTHOR, "good"),
    Example("fact", "Whose play is Othello?", "Gladly: Marlowe.", AUTHOR, "wrong"),
)
"""Twenty-one examples written by hand, each labelled with the style its author meant,
so the grader can be checked against a human reading (``tests/test_tasks.py``)."""


def alphabet() -> str:
    """Every character an instruction or a response of these tasks can hold, sorted.

    Tiny Shakespeare has no digit but ``3`` and no ``+``; the assistant's tokenizer
    (:class:`llmscratch.sft.AssistantTokenizer`) adds what its vocabulary lacks.
    """
    texts = [t for templates in PHRASINGS.values() for t in templates]
    texts += [*TRAIN_PLAYS, *HELDOUT_PLAYS, *INSULTS, *WRONG_AUTHORS, string.ascii_letters]
    texts += [GREETING, REFUSAL, AUTHOR, POLITE_PREFIX, "0123456789", ", thou !.; be well friend Away art a"]
    texts += [e.instruction + e.response for e in HANDMADE]
    chars = set("".join(texts)) - set("{}")
    return "".join(sorted(chars))
