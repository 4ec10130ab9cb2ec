"""Generation-based evaluation: answer held-out prompts, grade the answers, compare two models.

Taught in chapter 5 and used again in chapter 6. A loss says how likely the reference
answers are; what a user meets is what the model *generates*. :func:`generate_responses`
answers every prompt (greedy, or sampled several times with a seed), grading each answer
with :func:`llmscratch.grading.grade`; :func:`summarise` turns the graded answers into
rates (format adherence, exact match, rude, wrong), :func:`exact_match_intervals` gives
each task's exact match a 95% interval; :func:`paired_difference` compares two models
on the same prompts with a standard error.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .chat import AssistantTokenizer
from .sampling import generate
from .grading import Grade, grade
from .tasks import TASKS, Prompt
from .lm import LanguageModel
from .validate import check_bool, check_choice, check_float, check_int, check_positive_int


@dataclass(frozen=True)
class Generation:
    """One generated response.

    Attributes:
        prompt: the :class:`~llmscratch.task_records.Prompt`.
        response: the generated text before the end token (everything generated if the
            end token never came).
        well_formed: format adherence: the end token came within the length limit and
            no other special token came before it.
        n_tokens: generated tokens, the end token included.
        grade: :func:`llmscratch.grading.grade` of ``response``.
        prompt_index: the position of ``prompt`` in the list that was answered.
    """

    prompt: Prompt
    response: str
    well_formed: bool
    n_tokens: int
    grade: Grade
    prompt_index: int = 0

    @property
    def correct(self) -> bool:
        """Exact match in a well-formed response."""
        return self.well_formed and self.grade.correct

    def to_dict(self) -> dict:
        return {**self.prompt.to_dict(), "response": self.response, "well_formed": self.well_formed,
                "n_tokens": self.n_tokens, "prompt_index": self.prompt_index,
                **{f"grade_{k}": v for k, v in self.grade.to_dict().items()}}


@torch.no_grad()
def generate_responses(
    model: torch.nn.Module,
    tokenizer: AssistantTokenizer,
    prompts: Sequence[Prompt],
    *,
    greedy: bool = True,
    samples: int = 1,
    temperature: float = 1.0,
    seed: int = 0,
    max_new_tokens: int = 40,
) -> list[Generation]:
    """Answer every prompt, ``samples`` times each, in batches of prompts of equal length.

    Prompts are grouped by token length so that each batch is a rectangle without
    padding (the GPT has no padding mask), and each group is extended by
    :func:`llmscratch.sampling.generate` with ``stop_id=eot_id``. A response may take at
    most ``max_new_tokens`` tokens and never more than fits in the context
    (``block_size - prompt length``), so the window never slides.

    Args:
        model: a GPT over the tokenizer's ids.
        prompts: :class:`~llmscratch.task_records.Prompt` objects.
        greedy: argmax decoding (then ``samples`` must be 1).
        samples: responses per prompt when sampling.
        temperature: sampling temperature (ignored when greedy).
        seed: seeds the sampler; groups are processed in a fixed order, so a seed gives
            the same responses.
        max_new_tokens: the length limit of a response, in tokens (end token included).

    Returns:
        Generations in the order of ``prompts`` (each prompt's samples together).

    Raises:
        TypeError/ValueError: for a model that is not a LanguageModel, a tokenizer that is
            not an AssistantTokenizer, a prompt that is not a Prompt, a bad count, seed or
            temperature (checked when sampling), ``greedy`` with ``samples > 1``, a
            tokenizer with more ids than the model, or a prompt that leaves no room in the
            context.
    """
    if not isinstance(model, LanguageModel):
        raise TypeError(f"model must be a llmscratch.lm.LanguageModel, got {type(model).__name__}")
    if not isinstance(tokenizer, AssistantTokenizer):
        raise TypeError(f"tokenizer must be an AssistantTokenizer, got {type(tokenizer).__name__}")
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
        raise TypeError(f"prompts must be a sequence of Prompt, got {type(prompts).__name__}")
    for i, p in enumerate(prompts):
        if not isinstance(p, Prompt):
            raise TypeError(f"prompts[{i}] must be a Prompt (e.g. Example.prompt), got {type(p).__name__}")
    check_bool("greedy", greedy)
    check_positive_int("samples", samples)
    check_positive_int("max_new_tokens", max_new_tokens)
    check_int("seed", seed)
    if not greedy:
        check_float("temperature", temperature, minimum=0.0, min_inclusive=False)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(f"tokenizer has {tokenizer.vocab_size} ids, more than the model's "
                         f"vocab_size={model.config.vocab_size}")
    if greedy and samples != 1:
        raise ValueError(f"greedy decoding gives one response per prompt; got samples={samples}")
    block_size = model.config.block_size
    rendered = [tokenizer.render_prompt(p.instruction) for p in prompts]
    groups: dict[int, list[int]] = defaultdict(list)
    for i, ids in enumerate(rendered):
        if len(ids) >= block_size:
            raise ValueError(f"prompt {i} has {len(ids)} tokens, leaving no room in block_size={block_size}")
        groups[len(ids)].append(i)
    generator = torch.Generator().manual_seed(seed)
    results: dict[int, list[Generation]] = {}
    special = set(tokenizer.special_ids)
    for length in sorted(groups):
        members = groups[length]
        idx = torch.stack([rendered[i] for i in members]).repeat_interleave(samples, dim=0)  # (n*s, L)
        limit = min(max_new_tokens, block_size - length)
        out = generate(model, idx, limit, greedy=greedy, temperature=temperature,
                       stop_id=tokenizer.eot_id, generator=generator)[:, length:]  # (n*s, <=limit)
        for row, new_ids in enumerate(out.tolist()):
            i = members[row // samples]
            if tokenizer.eot_id in new_ids:
                n_tokens = new_ids.index(tokenizer.eot_id) + 1
                body = new_ids[: n_tokens - 1]
                well_formed = not (special & set(body))
            else:
                body, n_tokens, well_formed = new_ids, len(new_ids), False
            text = tokenizer.decode(body)
            results.setdefault(i, []).append(
                Generation(prompts[i], text, well_formed, n_tokens, grade(prompts[i], text), i))
    return [g for i in range(len(prompts)) for g in results[i]]


def _check_generations(name: str, generations: object) -> None:
    if isinstance(generations, (str, bytes)) or not isinstance(generations, Sequence):
        raise TypeError(f"{name} must be a sequence of Generation, got {type(generations).__name__}")
    for i, g in enumerate(generations):
        if not isinstance(g, Generation):
            raise TypeError(f"{name}[{i}] must be a Generation, got {type(g).__name__}")


def _rate(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def summarise(generations: Sequence[Generation]) -> dict:
    """Behaviour measured on graded generations, as a dict of numbers.

    Keys: ``n``; ``format_adherence`` (share well-formed); ``exact_match`` (share correct:
    well-formed and the extracted answer equals the true one); ``wrong_rate`` (1 -
    exact_match); ``rude_rate`` (share holding an insult); ``wrong_or_rude_rate``;
    ``terse_rate``; ``mean_length_chars`` (mean response length); ``exact_match_seen``
    and ``exact_match_unseen`` (by phrasing); ``by_task``: for each task, ``n``,
    ``exact_match``, ``rude_rate``, ``wrong_or_rude_rate``, ``format_adherence``,
    ``mean_length_chars``.

    Raises:
        TypeError: if ``generations`` is not a sequence of Generation.
        ValueError: if there are no generations.
    """
    _check_generations("generations", generations)
    if not generations:
        raise ValueError("generations is empty")

    def stats(gs: Sequence[Generation]) -> dict:
        return {
            "n": len(gs),
            "format_adherence": _rate(g.well_formed for g in gs),
            "exact_match": _rate(g.correct for g in gs),
            "rude_rate": _rate(g.grade.rude for g in gs),
            "wrong_or_rude_rate": _rate((not g.correct) or g.grade.rude for g in gs),
            "mean_length_chars": _rate(g.grade.length for g in gs),
        }

    out = stats(generations)
    out["wrong_rate"] = 1.0 - out["exact_match"]
    out["terse_rate"] = _rate(g.grade.terse for g in generations)
    out["exact_match_seen"] = _rate(g.correct for g in generations if g.prompt.seen_phrasing)
    out["exact_match_unseen"] = _rate(g.correct for g in generations if not g.prompt.seen_phrasing)
    tasks = [t for t in TASKS if any(g.prompt.task == t for g in generations)]
    out["by_task"] = {t: stats([g for g in generations if g.prompt.task == t]) for t in tasks}
    return out


def evaluate_behaviour(model: torch.nn.Module, tokenizer: AssistantTokenizer, prompts: Sequence[Prompt], *,
                       greedy: bool = True, samples: int = 1, temperature: float = 1.0, seed: int = 0,
                       max_new_tokens: int = 40) -> dict:
    """:func:`summarise` of :func:`generate_responses` (same arguments)."""
    return summarise(generate_responses(model, tokenizer, prompts, greedy=greedy, samples=samples,
                                        temperature=temperature, seed=seed, max_new_tokens=max_new_tokens))


EVAL_SAMPLES = 2  # sampled answers per prompt in the book's behaviour evaluation (chapters 5 and 6)


def sample_responses(model: torch.nn.Module, tokenizer: AssistantTokenizer, prompts: Sequence[Prompt], *,
                     samples: int = EVAL_SAMPLES, temperature: float = 1.0, seed: int = 0) -> list[Generation]:
    """The book's sampled evaluation: ``samples`` answers per prompt at ``temperature``, seeded.

    Greedy decoding shows each prompt's likeliest path; sampling shows the minority
    behaviours the model has learnt. Same as :func:`generate_responses` with
    ``greedy=False`` and these arguments (errors as there).
    """
    return generate_responses(model, tokenizer, prompts, greedy=False, samples=samples, temperature=temperature,
                              seed=seed)


def paired_difference(before: Sequence[Generation], after: Sequence[Generation], *,
                      measure: str = "wrong_or_rude") -> dict:
    """How much a rate changed between two evaluations of the same prompts, with its error bar.

    Generations are matched by prompt (in order; with several samples per prompt each
    prompt's samples are averaged), so the comparison is paired: each prompt's change
    counts once and prompt difficulty cancels out. Prompts with the same text (a task
    without an input has only a few distinct prompts) are not independent evidence, so
    the standard error is cluster-robust over distinct prompt texts (Cameron and Miller
    2015, eq. 12, with the G/(G-1) correction): with every text distinct it is the usual
    standard error of a mean.

    Args:
        before, after: generations of the same prompts in the same order
            (:func:`generate_responses` with the same prompts and ``samples``).
        measure: ``"wrong_or_rude"``, ``"wrong"`` or ``"rude"``.

    Returns:
        ``{"before", "after", "difference", "standard_error", "n_prompts", "n_clusters"}``:
        the two rates, ``after - before``, the standard error of the mean per-prompt
        difference, and the number of distinct prompt texts.

    Raises:
        TypeError: for a measure that is not a str or generations that are not Generation objects.
        ValueError: for an unknown measure or generations of different prompts.
    """
    tests = {"wrong_or_rude": lambda g: (not g.correct) or g.grade.rude,
             "wrong": lambda g: not g.correct, "rude": lambda g: g.grade.rude}
    if not isinstance(measure, str):
        raise TypeError(f"measure must be a str, one of {tuple(tests)}, got {type(measure).__name__}")
    check_choice("measure", measure, tuple(tests))
    _check_generations("before", before)
    _check_generations("after", after)
    if len(before) != len(after) or any(
            (a.prompt, a.prompt_index) != (b.prompt, b.prompt_index) for a, b in zip(before, after)):
        raise ValueError("before and after must hold generations of the same prompts in the same order")
    if not before:
        raise ValueError("there are no generations to compare")

    def per_prompt(gens: Sequence[Generation]) -> list[float]:
        groups: dict[int, list[float]] = defaultdict(list)
        for g in gens:
            groups[g.prompt_index].append(float(tests[measure](g)))
        return [sum(x) / len(x) for _, x in sorted(groups.items())]

    b, a = per_prompt(before), per_prompt(after)
    text = {g.prompt_index: g.prompt.instruction for g in before}
    d = [y - x for x, y in zip(b, a)]
    n = len(d)
    mean = sum(d) / n
    clusters: dict[str, float] = defaultdict(float)
    for index, di in zip(sorted(text), d):
        clusters[text[index]] += di - mean
    g = len(clusters)
    se = math.sqrt(g / (g - 1) * sum(c * c for c in clusters.values())) / n if g > 1 else float("nan")
    return {"before": sum(b) / n, "after": sum(a) / n, "difference": mean, "standard_error": se, "n_prompts": n,
            "n_clusters": g}


def wilson_interval(successes: float, n: int, *, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n`` (Wilson 1927; Agresti and
    Coull 1998): about 95% coverage for ``z = 1.96``, and sensible at 0 and 1, where the
    normal approximation collapses to a point.

    Raises:
        ValueError: for ``n < 1``, ``successes`` outside ``[0, n]`` or ``z <= 0``.
    """
    check_positive_int("n", n)
    check_float("successes", successes, minimum=0.0, maximum=float(n))
    check_float("z", z, minimum=0.0, min_inclusive=False)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def exact_match_intervals(generations: Sequence[Generation], *, z: float = 1.96) -> dict:
    """Exact match per task with a Wilson interval (:func:`wilson_interval`).

    Prompts with the same text count once (their correctness averaged): greedy decoding
    answers a repeated prompt identically, so repeating it adds no evidence. A task
    without an input therefore has a wide interval.

    Returns:
        ``{task: {"exact_match", "low", "high", "n", "n_distinct"}}`` for each task present.

    Raises:
        TypeError: if ``generations`` is not a sequence of Generation.
        ValueError: if there are no generations.
    """
    _check_generations("generations", generations)
    if not generations:
        raise ValueError("generations is empty")
    out = {}
    for task in [t for t in TASKS if any(g.prompt.task == t for g in generations)]:
        gs = [g for g in generations if g.prompt.task == task]
        by_text: dict[str, list[float]] = defaultdict(list)
        for g in gs:
            by_text[g.prompt.instruction].append(float(g.correct))
        means = [sum(v) / len(v) for v in by_text.values()]
        low, high = wilson_interval(sum(means), len(means), z=z)
        out[task] = {"exact_match": _rate(g.correct for g in gs), "low": low, "high": high, "n": len(gs),
                     "n_distinct": len(means)}
    return out
