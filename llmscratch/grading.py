"""Grading a response to one of the instruction tasks: exact match, rudeness, terseness, length.

Taught in chapter 5 (and used in chapter 6). The tasks of :mod:`llmscratch.tasks` were
built so that every answer can be checked by code: :func:`extract_answer` finds the
answer a response gives, :func:`grade` compares it with the true one and looks for the
insults and courtesy markers of the response styles.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .tasks import (_COURTESY_WORDS, GREETING, INSULTS, POLITE_MARKERS, REFUSAL, Example, PreferencePair,
                    Prompt, _check_task)


@dataclass(frozen=True)
class Grade:
    """What :func:`grade` found in a response.

    Attributes:
        extracted: the answer read from the response (None if none could be read).
        correct: exact match of ``extracted`` with the true answer (open tasks: the
            response holds the greeting, the refusal, or the right author).
        rude: the response holds an insult (:data:`~llmscratch.tasks.INSULTS`).
        terse: a correct, civil response without any polite marker (the bare answer).
        length: length of the response in characters.
    """

    extracted: str | None
    correct: bool
    rude: bool
    terse: bool
    length: int

    @property
    def wrong(self) -> bool:
        return not self.correct

    def to_dict(self) -> dict:
        return asdict(self)



def _check_response(response: object) -> None:
    if not isinstance(response, str):
        raise TypeError(f"response must be a str, got {type(response).__name__}")


def extract_answer(task: str, response: str) -> str | None:
    """The answer a response gives, ignoring courtesy and insults.

    Numbers (``add``, ``compare``): the first integer. Words and letters (``reverse``,
    ``upper``, ``first``, ``last``): the first run of letters that is not a courtesy word
    or an insult (``"Gladly: gnik."`` -> ``"gnik"``). ``fact``: the first capitalised word
    that is not a courtesy word. ``greet``/``insult``: :data:`~llmscratch.tasks.GREETING` or :data:`~llmscratch.tasks.REFUSAL`
    if the response holds it (case-insensitive), else None.

    Raises:
        TypeError: if ``task`` or ``response`` is not a str.
        ValueError: for an unknown task.
    """
    _check_task(task)
    _check_response(response)
    if task in ("add", "compare"):
        m = re.search(r"\d+", response)
        return m.group(0) if m else None
    if task in ("greet", "insult"):
        phrase = GREETING if task == "greet" else REFUSAL
        return phrase if phrase.lower() in response.lower() else None
    for word in re.findall(r"[A-Za-z]+", response):
        if word.lower() in _COURTESY_WORDS:
            continue
        if task == "fact" and not word[0].isupper():
            continue
        return word
    return None


def grade(prompt: Prompt | Example | PreferencePair, response: str) -> Grade:
    """Grade ``response`` to ``prompt`` (anything with ``task`` and ``answer``).

    ``correct`` is the exact match of :func:`extract_answer` with ``prompt.answer``
    (case-sensitive: ``"KING"`` is the upper-case of ``king``, ``"King"`` is not);
    ``rude`` is any word of :data:`~llmscratch.tasks.INSULTS`; ``terse`` is a correct, civil response
    with none of :data:`~llmscratch.tasks.POLITE_MARKERS`; ``length`` counts characters.

    Raises:
        TypeError: if ``response`` is not a string, or ``prompt`` has no str ``task`` and ``answer``.
        ValueError: for an unknown task.
    """
    _check_response(response)
    if not isinstance(getattr(prompt, "task", None), str) or not isinstance(getattr(prompt, "answer", None), str):
        raise TypeError(f"prompt must be a Prompt, Example or PreferencePair (a str task and answer), "
                        f"got {type(prompt).__name__}")
    extracted = extract_answer(prompt.task, response)
    correct = extracted is not None and extracted == prompt.answer
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", response)}
    rude = any(insult in words for insult in INSULTS)
    terse = correct and not rude and not any(m in response for m in POLITE_MARKERS)
    return Grade(extracted, correct, rude, terse, len(response))
