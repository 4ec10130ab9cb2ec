"""Character vocabularies: the map between characters and integer token ids.

Taught in chapter 1 (names) and reused in chapter 2 (Tiny Shakespeare). A language
model never sees characters, only integers; :class:`CharVocab` is the only place in
the book where that translation happens for character-level models.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


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
        ValueError: if ``chars`` is empty, holds a duplicate or a string that is not
            exactly one character long.
    """

    def __init__(self, chars: Sequence[str]) -> None:
        chars = list(chars)
        if not chars:
            raise ValueError("chars must hold at least one character")
        for ch in chars:
            if not isinstance(ch, str) or len(ch) != 1:
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
            ValueError: if the text is empty or contains the boundary character.
        """
        if not isinstance(text, str):
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
            ValueError: naming the first character that is not in the vocabulary.
        """
        try:
            return [self.stoi[ch] for ch in text]
        except KeyError as exc:
            raise ValueError(
                f"character {exc.args[0]!r} is not in the vocabulary "
                f"({self.vocab_size} characters: {''.join(self.itos)!r})"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Map token ids back to a string.

        Raises:
            ValueError: for an id outside ``[0, vocab_size)``.
        """
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside [0, {self.vocab_size})")
            out.append(self.itos[i])
        return "".join(out)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"CharVocab(vocab_size={self.vocab_size}, chars={''.join(self.itos)!r})"
