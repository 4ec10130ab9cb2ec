"""Character vocabularies: the map between characters and integer token ids.

Taught in chapter 1 (names) and reused in chapter 2 (Tiny Shakespeare). A language
model never sees characters, only integers; :class:`CharVocab` is the only place in
the book where that translation happens for character-level models.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .validate import check_id_list


class CharVocab:
    """A character vocabulary with ``stoi`` (string to index) and ``itos`` (index to string).

    Args:
        chars: the characters, in id order. Each must be a single character and appear
            once.

    Example:
        >>> v = CharVocab.from_text("hello", boundary=".")
        >>> v.itos
        ['.', 'e', 'h', 'l', 'o']
        >>> v.encode("hole"), v.decode([2, 4, 3, 1])
        ([2, 4, 3, 1], 'hole')

    Raises:
        TypeError: if ``chars`` is not a str or a sequence of str.
        ValueError: if ``chars`` is empty, holds a duplicate or a string that is not
            exactly one character long.
    """

    def __init__(self, chars: Sequence[str]) -> None:
        if isinstance(chars, (bytes, bytearray)) or not isinstance(chars, Iterable):
            raise TypeError(f"chars must be a str or a sequence of single characters, got {type(chars).__name__}")
        chars = list(chars)
        if not chars:
            raise ValueError("chars must hold at least one character")
        for ch in chars:
            if not isinstance(ch, str):
                raise TypeError(f"chars must hold single characters (str), got {type(ch).__name__} {ch!r}")
            if len(ch) != 1:
                raise ValueError(f"chars must be single characters, got {ch!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("chars must not repeat a character")
        self.itos: list[str] = chars
        self.stoi: dict[str, int] = {ch: i for i, ch in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str | Iterable[str], *, boundary: str | None = None) -> CharVocab:
        """The sorted set of characters in ``text``, with an optional ``boundary`` token at id 0.

        ``boundary`` is the start/end-of-sequence token (``"."`` for names in chapter 1);
        it must not occur in the text itself.

        Raises:
            TypeError: if ``text`` is neither a str nor an iterable of str, or ``boundary``
                is not a str.
            ValueError: if the text is empty or contains the boundary character, or
                ``boundary`` is not one character.
        """
        if boundary is not None:
            if not isinstance(boundary, str):
                raise TypeError(f"boundary must be a str, got {type(boundary).__name__}")
            if len(boundary) != 1:
                raise ValueError(f"boundary must be a single character, got {boundary!r}")
        if not isinstance(text, str):
            if isinstance(text, (bytes, bytearray)) or not isinstance(text, Iterable):
                raise TypeError(f"text must be a str or an iterable of str, got {type(text).__name__}")
            text = list(text)
            if not all(isinstance(t, str) for t in text):
                raise TypeError("text must be a str or an iterable of str")
            text = "".join(text)
        chars = sorted(set(text))
        if not chars:
            raise ValueError("text is empty: there is no character to build a vocabulary from")
        if boundary is not None:
            if boundary in chars:
                raise ValueError(f"boundary token {boundary!r} occurs in the text itself")
            chars = [boundary, *chars]
        return cls(chars)

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens, written :math:`V` in the text."""
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """Map a string to token ids.

        Raises:
            TypeError: if ``text`` is not a str.
            ValueError: naming the first character that is not in the vocabulary.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        try:
            return [self.stoi[ch] for ch in text]
        except KeyError as exc:
            raise ValueError(
                f"character {exc.args[0]!r} is not in the vocabulary "
                f"({self.vocab_size} characters: {''.join(self.itos)!r})"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Map token ids back to a string.

        Args:
            ids: a list, tuple or range of ints, or a 1-D integer tensor.

        Raises:
            TypeError: for a float or bool id, a float tensor, or a str.
            ValueError: for an id outside ``[0, vocab_size)``, or a tensor that is not 1-D.
        """
        itos = self.itos
        return "".join(itos[i] for i in check_id_list("ids", ids, self.vocab_size))

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"CharVocab(vocab_size={self.vocab_size}, chars={''.join(self.itos)!r})"
