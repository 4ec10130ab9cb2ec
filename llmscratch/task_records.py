"""The records of the instruction tasks: prompts, SFT examples, preference pairs, the data mix.

Taught in chapter 5 (supervised fine-tuning) and chapter 6 (DPO). The frozen dataclasses
that carry the task family of :mod:`llmscratch.tasks` through the pipeline: a
:class:`Prompt` (an instruction and its true answer, for evaluation), an :class:`Example`
(an instruction-response pair for SFT), a :class:`PreferencePair` (one prompt, a chosen and a
rejected response, for DPO), and :class:`QualityMix` (the shares of the response styles in
generated SFT data), with the names they are checked against: :data:`TASKS`,
:data:`STYLES` and :data:`PAIR_KINDS`. All of them are re-exported by :mod:`llmscratch.tasks`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .validate import check_choice, check_float


TASKS = ("add", "compare", "reverse", "upper", "first", "last", "greet", "insult", "fact")
CHECKABLE_TASKS = ("add", "compare", "reverse", "upper", "first", "last")
OPEN_TASKS = ("greet", "insult", "fact")
STYLES = ("good", "terse", "wrong", "rude")
PAIR_KINDS = ("helpful_vs_terse", "correct_vs_incorrect", "polite_vs_harmful", "friendly_vs_rude")


@dataclass(frozen=True)
class Prompt:
    """An instruction with its true answer, for evaluation.

    Attributes:
        task: one of :data:`TASKS`.
        instruction: the text after ``### Instruction:``.
        answer: the true answer (for ``greet``/``insult``: the phrase a correct response
            holds, :data:`~llmscratch.tasks.GREETING` or :data:`~llmscratch.tasks.REFUSAL`).
        seen_phrasing: whether the instruction's template is one of the training phrasings.
    """

    task: str
    instruction: str
    answer: str
    seen_phrasing: bool = True

    def __post_init__(self) -> None:
        _check_record(self, ("instruction", "answer"))

    def to_dict(self) -> dict:
        return asdict(self)


def _check_record(record: object, str_fields: tuple[str, ...]) -> None:
    """The checks of a Prompt, Example or PreferencePair: a known task, str fields, a bool flag."""
    _check_task(record.task)
    for name in str_fields:
        if not isinstance(getattr(record, name), str):
            raise TypeError(f"{name} must be a str, got {type(getattr(record, name)).__name__}")
    if not isinstance(record.seen_phrasing, bool):
        raise TypeError(f"seen_phrasing must be a bool, got {type(record.seen_phrasing).__name__}")


class _HasPrompt:
    """The :class:`Prompt` part of an :class:`Example` or a :class:`PreferencePair`."""

    @property
    def prompt(self) -> Prompt:
        return Prompt(self.task, self.instruction, self.answer, self.seen_phrasing)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Example(_HasPrompt):
    """An instruction-response pair for supervised fine-tuning.

    Attributes: those of :class:`Prompt`, plus ``response`` and ``style`` (one of
    :data:`STYLES`; the style the generator meant, which :func:`grade` recovers).
    """

    task: str
    instruction: str
    response: str
    answer: str
    style: str
    seen_phrasing: bool = True

    def __post_init__(self) -> None:
        _check_record(self, ("instruction", "response", "answer"))
        _check_str_choice("style", self.style, STYLES)


@dataclass(frozen=True)
class PreferencePair(_HasPrompt):
    """One prompt with a preferred (``chosen``) and a dispreferred (``rejected``) response.

    ``kind`` is one of :data:`PAIR_KINDS`.
    """

    task: str
    instruction: str
    chosen: str
    rejected: str
    kind: str
    answer: str
    seen_phrasing: bool = True

    def __post_init__(self) -> None:
        _check_record(self, ("instruction", "chosen", "rejected", "answer"))
        _check_str_choice("kind", self.kind, PAIR_KINDS)


@dataclass(frozen=True)
class QualityMix:
    """Shares of the response styles in generated SFT data (they must sum to 1).

    ``insult_compliance`` is separate: the share of requests to be rude that the data
    answers with an insult (the rest are refused), as scraped conversations often
    comply. Tasks without a wrong answer (``greet``, ``insult``) give the ``wrong`` share
    to ``good``.

    Raises:
        TypeError: for a share that is not a number.
        ValueError: for a negative or non-finite share, shares not summing to 1, or
            ``insult_compliance`` outside [0, 1].
    """

    good: float = 0.7
    terse: float = 0.1
    wrong: float = 0.1
    rude: float = 0.1
    insult_compliance: float = 0.75

    def __post_init__(self) -> None:
        for f in fields(self):
            check_float(f.name, getattr(self, f.name), minimum=0.0, maximum=1.0)
        total = self.good + self.terse + self.wrong + self.rude
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"good + terse + wrong + rude must be 1, got {total}")

    def to_dict(self) -> dict:
        return asdict(self)


def _check_str_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {choices}, got {type(value).__name__} {value!r}")
    check_choice(name, value, choices)


def _check_task(task: str) -> None:
    _check_str_choice("task", task, TASKS)
