"""The chat template and its tokenizer: instructions, responses and special tokens.

Taught in chapter 5. An assistant's training examples and prompts are rendered in a
template: after ``### Instruction:`` comes a request, after ``### Response:`` an
answer, then ``<|endoftext|>``, where generation stops. The template is the Alpaca one
(Taori et al. 2023) without its preamble. Each of the three markers is one *special
token*, a single id outside the character vocabulary.

:class:`AssistantTokenizer` holds the vocabulary (the chapter 4 characters, the
characters the tasks need, the special tokens); :meth:`AssistantTokenizer.render`
gives ``(ids, loss_mask)`` for one example, the mask marking the tokens whose loss
counts (the response and the end token); :func:`alpaca_text` writes a real
instruction record in the same template.
"""

from __future__ import annotations

import re

import torch

from .task_data import alphabet
from .vocab import CharVocab

INSTRUCTION = "### Instruction:\n"
RESPONSE = "\n\n### Response:\n"
END_OF_TEXT = "<|endoftext|>"
SPECIAL_TOKENS = (INSTRUCTION, RESPONSE, END_OF_TEXT)


class AssistantTokenizer:
    """Characters plus three special tokens, each a single id.

    Ids ``0 .. base.vocab_size - 1`` are the chapter 4 characters, unchanged, so the
    pretrained rows keep their meaning; then come the characters of ``extra_chars`` that
    ``base`` lacks (sorted), then :data:`SPECIAL_TOKENS`: ``"### Instruction:\\n"``,
    ``"\\n\\n### Response:\\n"`` and ``"<|endoftext|>"``. A special token as one id keeps
    examples short (the template costs 3 tokens, not 46 characters) and cannot be
    confused with the same characters typed in a request.

    Padding reuses the end-of-text id (``pad_id == eot_id``): padded positions are never
    targets and, the model being causal, never seen by a real token.

    Args:
        base: the chapter 4 :class:`~llmscratch.vocab.CharVocab`.
        extra_chars: characters to add if missing (default: :func:`llmscratch.task_data.alphabet`).

    Raises:
        TypeError: if ``base`` is not a CharVocab.
    """

    def __init__(self, base: CharVocab, extra_chars: str | None = None) -> None:
        if not isinstance(base, CharVocab):
            raise TypeError(f"base must be a CharVocab, got {type(base).__name__}")
        extra_chars = alphabet() if extra_chars is None else extra_chars
        added = sorted(set(extra_chars) - set(base.itos))
        self.chars = CharVocab([*base.itos, *added])
        self.base_vocab_size = base.vocab_size
        self.added_chars = "".join(added)
        n = self.chars.vocab_size
        self.inst_id, self.resp_id, self.eot_id = n, n + 1, n + 2
        self.pad_id = self.eot_id
        self._special_ids = {INSTRUCTION: self.inst_id, RESPONSE: self.resp_id, END_OF_TEXT: self.eot_id}
        self._split = re.compile("(" + "|".join(re.escape(s) for s in SPECIAL_TOKENS) + ")")

    @property
    def vocab_size(self) -> int:
        """Characters plus the three special tokens (78 for the book's assistant)."""
        return self.chars.vocab_size + len(SPECIAL_TOKENS)

    @property
    def special_ids(self) -> tuple[int, int, int]:
        """``(inst_id, resp_id, eot_id)``."""
        return self.inst_id, self.resp_id, self.eot_id

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; each occurrence of a special token's string becomes its id.

        Raises:
            ValueError: naming a character outside the vocabulary.
        """
        ids: list[int] = []
        for piece in self._split.split(text):
            if piece in self._special_ids:
                ids.append(self._special_ids[piece])
            elif piece:
                ids.extend(self.chars.encode(piece))
        return ids

    def decode(self, ids) -> str:
        """The text of ``ids`` (special tokens written out).

        Raises:
            ValueError: for an id outside ``[0, vocab_size)``.
        """
        names = {v: k for k, v in self._special_ids.items()}
        out = []
        for i in ids:
            i = int(i)
            if i in names:
                out.append(names[i])
            elif 0 <= i < self.chars.vocab_size:
                out.append(self.chars.itos[i])
            else:
                raise ValueError(f"token id {i} is outside [0, {self.vocab_size})")
        return "".join(out)

    def _check_text(self, name: str, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"{name} must be a str, got {type(text).__name__}")
        for special in SPECIAL_TOKENS:
            if special in text:
                raise ValueError(f"{name} must not contain the special token {special!r}")

    def render_prompt(self, instruction: str) -> torch.Tensor:
        """``[INST] instruction [RESP]``: what the model sees before it answers, ``(L,)`` int64.

        Raises:
            TypeError/ValueError: for a non-string, a special token inside the text, or a
                character outside the vocabulary.
        """
        self._check_text("instruction", instruction)
        return torch.tensor([self.inst_id, *self.chars.encode(instruction), self.resp_id], dtype=torch.long)

    def render(self, instruction: str, response: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One training example: ``[INST] instruction [RESP] response [EOT]``.

        Returns:
            ``(ids, loss_mask)``, both ``(L,)``: int64 ids and a bool mask that is True on
            the response tokens and the end token (the tokens the model must learn to
            produce), False on the template and the instruction.

        Raises:
            TypeError/ValueError: as :meth:`render_prompt`, for either text.
        """
        self._check_text("response", response)
        prompt = self.render_prompt(instruction)
        answer = torch.tensor([*self.chars.encode(response), self.eot_id], dtype=torch.long)
        ids = torch.cat([prompt, answer])
        mask = torch.cat([torch.zeros(len(prompt), dtype=torch.bool), torch.ones(len(answer), dtype=torch.bool)])
        return ids, mask

    def __repr__(self) -> str:
        return (f"AssistantTokenizer(vocab_size={self.vocab_size}, base={self.base_vocab_size}, "
                f"added={self.added_chars!r}, specials={SPECIAL_TOKENS!r})")


def alpaca_text(record: dict) -> str:
    """An ``instruction``/``input``/``output`` record in the Alpaca template (Taori et al. 2023),
    with an ``### Input:`` section only when the input is not empty."""
    text = INSTRUCTION + record["instruction"]
    if record.get("input"):
        text += "\n\n### Input:\n" + record["input"]
    return text + RESPONSE + record["output"]


