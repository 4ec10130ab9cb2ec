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

Special tokens cannot be forged from text. Only the template puts a special id in a
sequence (:meth:`~AssistantTokenizer.render` and
:meth:`~AssistantTokenizer.render_prompt` insert them as ids and refuse text holding
a marker's string); :meth:`~AssistantTokenizer.encode` follows tiktoken
(:func:`llmscratch.special_tokens.split_on_special`): it turns a marker's string into
its id only when the caller passes ``allowed_special``, and by default refuses text
holding one.
"""

from __future__ import annotations


import torch

from .special_tokens import split_on_special
from .task_data import alphabet
from .validate import check_id_list
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
    examples short (the template costs 3 tokens, not 46 characters).

    Text never becomes a special id by accident. The template inserts the markers as ids
    and refuses a request or a response that holds a marker's string; :meth:`encode`
    turns a marker's string into its id only when asked to (``allowed_special``) and by
    default refuses it. So the same characters typed in a request -- or spelled out
    character by character by the model, where the vocabulary holds them -- stay
    characters or are refused, never the id the model was trained to treat as a turn
    boundary. Decoded text does not tell the two apart (:meth:`decode` writes a special
    token out as its string); compare ids, not text, to find the markers.

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
        self._special_names = {i: s for s, i in self._special_ids.items()}

    @property
    def vocab_size(self) -> int:
        """Characters plus the three special tokens (78 for the book's assistant)."""
        return self.chars.vocab_size + len(SPECIAL_TOKENS)

    @property
    def special_ids(self) -> tuple[int, int, int]:
        """``(inst_id, resp_id, eot_id)``."""
        return self.inst_id, self.resp_id, self.eot_id

    def encode(self, text: str, *, allowed_special: str | set[str] = "none_raise") -> list[int]:
        """Token ids of ``text``: one per character, or per special token where allowed.

        ``allowed_special`` has tiktoken's meaning (see
        :func:`llmscratch.special_tokens.split_on_special`):

        - ``"none_raise"`` (default): text holding a special token's string raises, so no
          text -- typed by a user or decoded from a model's output -- can forge a marker.
        - ``"all"``: each special token's string becomes its id (for text you wrote).
        - a set of special token strings: those become ids, any other one raises.
        - ``"none"``: special token strings are ordinary characters (which the vocabulary
          must then hold: the book's lacks ``#``, ``<``, ``|`` and ``>``).

        Without ``"all"`` or a set, the result holds no special id.

        Raises:
            TypeError: ``text`` is not a str.
            ValueError: a special token not allowed, an invalid ``allowed_special``, or a
                character outside the vocabulary (named, with its index in ``text``).
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids: list[int] = []
        start = 0
        for part in split_on_special(text, self._special_ids, allowed_special):
            if isinstance(part, int):
                ids.append(part)
                start += len(self._special_names[part])
            else:
                ids.extend(self._encode_chars(part, "text", start))
                start += len(part)
        return ids

    def _encode_chars(self, piece: str, name: str, start: int = 0) -> list[int]:
        """Character ids of ``piece``, which starts at index ``start`` of the text ``name``."""
        stoi = self.chars.stoi
        for i, ch in enumerate(piece):
            if ch not in stoi:
                raise ValueError(
                    f"character {ch!r} at index {start + i} of {name} is not in the vocabulary "
                    f"({self.chars.vocab_size} characters: {''.join(self.chars.itos)!r})"
                )
        return [stoi[ch] for ch in piece]

    def decode(self, ids) -> str:
        """The text of ``ids``, each special token written out as its string.

        The text does not say which markers were ids and which were spelled out in
        characters (possible where the vocabulary holds ``#``, ``:`` and so on);
        :meth:`encode` therefore refuses it by default rather than guess.

        Args:
            ids: a list, tuple or range of ints or a 1-D integer tensor.

        Raises:
            TypeError: ``ids`` is not a sequence of ints (a float, a bool, a float tensor...).
            ValueError: an id outside ``[0, vocab_size)`` (named), or a tensor not 1-D.
        """
        names = self._special_names
        itos = self.chars.itos
        return "".join(names[i] if i in names else itos[i] for i in check_id_list("ids", ids, self.vocab_size))

    def _check_text(self, name: str, text: str) -> list[int]:
        """Character ids of the request or response ``text``, which must hold no marker."""
        if not isinstance(text, str):
            raise TypeError(f"{name} must be a str, got {type(text).__name__}")
        for special in SPECIAL_TOKENS:
            if special in text:
                raise ValueError(f"{name} must not contain the special token {special!r}")
        return self._encode_chars(text, name)

    def render_prompt(self, instruction: str) -> torch.Tensor:
        """``[INST] instruction [RESP]``: what the model sees before it answers, ``(L,)`` int64.

        The markers are ids put in by the template; the instruction is characters only.

        Raises:
            TypeError/ValueError: for a non-string, a special token inside the text, or a
                character outside the vocabulary (named, with its index).
        """
        chars = self._check_text("instruction", instruction)
        return torch.tensor([self.inst_id, *chars, self.resp_id], dtype=torch.long)

    def render(self, instruction: str, response: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One training example: ``[INST] instruction [RESP] response [EOT]``.

        Returns:
            ``(ids, loss_mask)``, both ``(L,)``: int64 ids and a bool mask that is True on
            the response tokens and the end token (the tokens the model must learn to
            produce), False on the template and the instruction.

        Raises:
            TypeError/ValueError: as :meth:`render_prompt`, for either text.
        """
        prompt = self.render_prompt(instruction)
        answer = torch.tensor([*self._check_text("response", response), self.eot_id], dtype=torch.long)
        ids = torch.cat([prompt, answer])
        mask = torch.cat([torch.zeros(len(prompt), dtype=torch.bool), torch.ones(len(answer), dtype=torch.bool)])
        return ids, mask

    def __repr__(self) -> str:
        return (f"AssistantTokenizer(vocab_size={self.vocab_size}, base={self.base_vocab_size}, "
                f"added={self.added_chars!r}, specials={SPECIAL_TOKENS!r})")


def alpaca_text(record: dict) -> str:
    """An ``instruction``/``input``/``output`` record in the Alpaca template (Taori et al. 2023),
    with an ``### Input:`` section only when the input is not empty.

    Raises:
        TypeError: if ``record`` is not a dict, or a field is not a str.
        ValueError: if ``instruction`` or ``output`` is missing.
    """
    if not isinstance(record, dict):
        raise TypeError(f"record must be a dict with instruction/input/output, got {type(record).__name__}")
    for key in ("instruction", "output"):
        if key not in record:
            raise ValueError(f"record has no {key!r} field (fields: {sorted(record)})")
    for key in ("instruction", "input", "output"):
        if key in record and not isinstance(record[key], str):
            raise TypeError(f"record[{key!r}] must be a str, got {type(record[key]).__name__}")
    text = INSTRUCTION + record["instruction"]
    if record.get("input"):
        text += "\n\n### Input:\n" + record["input"]
    return text + RESPONSE + record["output"]


