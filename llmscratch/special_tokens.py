"""Special tokens in text: where they are, and whether text may turn into them.

Taught in chapter 3 (the GPT-2 tokenizer's ``<|endoftext|>``) and shared by the
tokenizers of :mod:`llmscratch.bpe` and :mod:`llmscratch.byte_bpe` and by chapter 5's
:class:`llmscratch.chat.AssistantTokenizer`. The rule is
tiktoken's: text becomes a special token's id only when the caller allows that token
explicitly, so text typed by a user cannot forge a control token by accident.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


def split_on_special(
    text: str, special_tokens: Mapping[str, int], allowed_special: str | set[str] = "none_raise"
) -> list[str | int]:
    """Cut `text` at the special tokens it may hold: ``[text, id, text, ...]`` (no empty texts).

    `allowed_special` mirrors tiktoken's ``encode`` arguments:

    - ``"all"``: every special token in the text becomes its id (tiktoken's
      ``allowed_special="all"``).
    - ``"none"``: special tokens are left as ordinary text (tiktoken ``disallowed_special=()``).
    - ``"none_raise"`` (default): as ``"none"``, but raise if the text holds one (tiktoken's
      default).
    - a set of special token strings: those become ids; any other one raises (tiktoken's
      ``allowed_special={...}``).

    Raises:
        ValueError: `text` holds a special token that is not allowed, or `allowed_special` is
            not one of the options above.
    """
    if allowed_special == "all":
        allowed = set(special_tokens)
    elif allowed_special in ("none", "none_raise"):
        allowed = set()
    elif isinstance(allowed_special, (set, frozenset)):
        unknown = set(allowed_special) - set(special_tokens)
        if unknown:
            raise ValueError(f"allowed_special holds unknown special tokens {sorted(unknown)}")
        allowed = set(allowed_special)
    else:
        raise ValueError(
            f"allowed_special must be 'all', 'none', 'none_raise' or a set, got {allowed_special!r}"
        )
    if allowed_special != "none":
        for token in special_tokens:
            if token not in allowed and token in text:
                raise ValueError(
                    f"text contains the special token {token!r}; pass allowed_special='all' to "
                    f"encode it as id {special_tokens[token]}, or 'none' to encode it as text"
                )
    if not allowed:
        return [text] if text else []
    alternatives = "|".join(re.escape(s) for s in sorted(allowed, key=len, reverse=True))
    parts: list[str | int] = []
    for i, piece in enumerate(re.split(f"({alternatives})", text)):
        if i % 2:
            parts.append(special_tokens[piece])
        elif piece:
            parts.append(piece)
    return parts
