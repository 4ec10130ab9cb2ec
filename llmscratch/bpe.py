"""Byte-pair encoding over characters: the tokenizer that chapter 3 builds first.

The chapter follows Karpathy's "Let's build the GPT Tokenizer" (and his minbpe) in four steps:

1. `get_stats` counts adjacent pairs and `merge` replaces one pair by a new id.
2. `train_naive` is the slow first trainer: recount every pair, merge the most frequent, repeat.
3. `learn_merges` is the same algorithm made fast: it counts the pairs once and then updates the
   counts only around each merged occurrence (a linked list over the tokens, the positions of every
   pair, and a priority queue with lazy deletion).
4. `CharBPETokenizer` wraps the merges: train, encode, decode, save, load.

BPE began as a compression algorithm (Gage 1994, "A New Algorithm for Data Compression",
C Users Journal 12(2)); Sennrich, Haddow & Birch (2016, "Neural Machine Translation of Rare
Words with Subword Units", ACL) turned it into a way to learn a subword vocabulary. GPT-2's
byte-level variant, with regex pre-tokenization and special tokens, is `llmscratch.byte_bpe`.
Steps 1 and 3 (and `apply_merges`, used to encode) are the merge algorithm of
`llmscratch.merges`, which both tokenizers share; they are re-exported here.

Conventions (the naive and the fast trainer follow them exactly, so their merges are equal):

- The base vocabulary is the distinct characters of the training text, sorted by code point:
  ids ``0 .. n-1``. Merge ``i`` creates id ``n + i``; special tokens come after the merges.
- Pairs are counted with overlaps ("aaa" holds the pair (a, a) twice, as `get_stats` counts) and
  merged left to right without overlap ("aaaa" -> "ZZ", "aaa" -> "Za"), as `merge` does.
- Ties: among pairs with the same count, the smallest ``(left id, right id)`` wins. On the
  Wikipedia example "aaabdaaabac" this picks "ab" over "Za" at the second merge, as Wikipedia does.
- Training runs on the raw text, without a regex pre-split (as the series does on Shakespeare),
  so merges may cross spaces and newlines. It stops early, with fewer merges, when no adjacent
  pair is left (e.g. the text is a single character long).
- Encoding applies the merges by rank, lowest first, as minbpe does; it uses the same linked
  list, so a whole book encodes in O(n log n) rather than O(n * merges).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from .merges import (  # noqa: F401  (re-exported: `from llmscratch.bpe import get_stats, merge` keeps working)
    Pair,
    _check_pair,
    apply_merges,
    get_stats,
    learn_merges,
    merge,
)
from .special_tokens import split_on_special
from .validate import check_id_list, check_path

FORMAT_VERSION = "llmscratch-bpe v1"


# --- 2. The naive trainer: the slow first version -----------------------------------------------


def train_naive(text: str, vocab_size: int) -> CharBPETokenizer:
    """Train character-level BPE by recounting every pair after every merge (teaching
    reference).

    Costs O(len(text)) per merge. `CharBPETokenizer.train` gives the same merges,
    faster.

    Raises:
        TypeError: `text` is not a str or `vocab_size` not an int.
        ValueError: `vocab_size` is smaller than the number of distinct characters.
    """
    chars = sorted(set(_check_text(text)))
    _check_vocab_size(vocab_size, len(chars))
    stoi = {ch: i for i, ch in enumerate(chars)}
    ids = [stoi[ch] for ch in text]
    merges = []
    for new_id in range(len(chars), vocab_size):
        stats = get_stats(ids)
        if not stats:
            break  # nothing left to merge
        # most frequent; ties: smallest ids
        pair = min(stats, key=lambda p: (-stats[p], p))
        ids = merge(ids, pair, new_id)
        merges.append(pair)
    return CharBPETokenizer(chars, merges)

# --- 4. The tokenizer ----------------------------------------------------------------------------


class CharBPETokenizer:
    """Character-level BPE: base characters, ordered merges, optional special tokens.

    Everything else (`vocab`, the id of each merge, the special token ids) is derived here, so a
    tokenizer built from `load` encodes exactly as the one that was saved.

    Args:
        chars: the base characters (distinct, single characters); ``chars[i]`` has id ``i``.
        merges: merged pairs in order; merge ``i`` creates id ``len(chars) + i``.
        special_tokens: strings that get the ids after the merges, in order.

    Raises:
        TypeError: `chars` or `special_tokens` is not a str or a sequence of str (a single
            str passed as `special_tokens` would be read as its characters), or a merge is
            not a pair of ints.
        ValueError: repeated or multi-character `chars`, a merge that uses an id not yet defined,
            or a repeated or empty special token.
    """

    def __init__(
        self,
        chars: Iterable[str],
        merges: Iterable[Pair],
        special_tokens: Sequence[str] = (),
    ):
        if isinstance(chars, (bytes, bytearray)) or not isinstance(chars, Iterable):
            raise TypeError(f"chars must be a str or an iterable of single characters, got {type(chars).__name__}")
        self.chars = list(chars)
        if any(not isinstance(ch, str) for ch in self.chars):
            raise TypeError("chars must hold single characters (str)")
        if any(len(ch) != 1 for ch in self.chars):
            raise ValueError("chars must be single characters")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("chars must be distinct")
        self.vocab: dict[int, str] = dict(enumerate(self.chars))
        self.merges: dict[Pair, int] = {}  # pair -> new id; insertion order is the rank
        if isinstance(merges, (str, bytes)) or not isinstance(merges, Iterable):
            raise TypeError(f"merges must be an iterable of (left id, right id) pairs, got {type(merges).__name__}")
        special_tokens = _check_special_tokens(special_tokens)
        for n, pair in enumerate(merges):
            a, b = _check_pair(f"merges[{n}]", pair)
            if a not in self.vocab or b not in self.vocab:
                raise ValueError(f"merge ({a}, {b}) uses an id not defined before it")
            new_id = len(self.vocab)
            self.merges[(a, b)] = new_id
            self.vocab[new_id] = self.vocab[a] + self.vocab[b]
        if len(set(special_tokens)) != len(special_tokens) or "" in special_tokens:
            raise ValueError("special_tokens must be distinct non-empty strings")
        self.special_tokens = {s: len(self.vocab) + i for i, s in enumerate(special_tokens)}
        self.vocab.update({i: s for s, i in self.special_tokens.items()})
        self._stoi = {ch: i for i, ch in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        """Number of ids: characters + merges + special tokens."""
        return len(self.vocab)

    @classmethod
    def train(
        cls, text: str, vocab_size: int, *, special_tokens: Sequence[str] = ()
    ) -> CharBPETokenizer:
        """Learn merges on `text` until `vocab_size` ids (characters + merges + special tokens).

        Special tokens in `text` are cut out first, so no merge spans them. Stops early, with a
        smaller vocabulary, when no adjacent pair is left.

        Raises:
            TypeError: `text` is not a str, `vocab_size` not an int, or `special_tokens`
                not a sequence of str.
            ValueError: `vocab_size` is smaller than characters + special tokens.
        """
        special_tokens = _check_special_tokens(special_tokens)
        specials = {s: i for i, s in enumerate(special_tokens)}  # ids are placeholders here
        parts = split_on_special(_check_text(text), specials, "all")
        segments = [p for p in parts if isinstance(p, str)]
        chars = sorted(set().union(*segments))
        _check_vocab_size(vocab_size, len(chars) + len(special_tokens))
        stoi = {ch: i for i, ch in enumerate(chars)}
        words = [[stoi[ch] for ch in segment] for segment in segments]
        num_merges = vocab_size - len(chars) - len(special_tokens)
        merges = learn_merges(words, num_merges, first_id=len(chars))
        return cls(chars, merges, special_tokens)

    def encode(
        self, text: str, *, allowed_special: str | set[str] = "none_raise"
    ) -> list[int]:
        """Text -> token ids (see `split_on_special` for `allowed_special`).

        Raises:
            ValueError: `text` holds a character the tokenizer never saw (named in the
                message), or a special token that is not allowed.
        """
        ids: list[int] = []
        for part in split_on_special(
            _check_text(text), self.special_tokens, allowed_special
        ):
            if isinstance(part, int):
                ids.append(part)
                continue
            try:
                chars = [self._stoi[ch] for ch in part]
            except KeyError as err:
                ch = err.args[0]
                raise ValueError(
                    f"character {ch!r} (U+{ord(ch):04X}) is not in the tokenizer's "
                    "vocabulary"
                ) from None
            ids.extend(apply_merges(chars, self.merges))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids -> text.

        Args:
            ids: a list, tuple or range of ints, or a 1-D integer tensor.

        Raises:
            TypeError: for a float or bool id, a float tensor, or a str.
            ValueError: for an id outside ``[0, vocab_size)``, or a tensor that is not
                1-D.
        """
        vocab = self.vocab
        return "".join(vocab[i] for i in check_id_list("ids", ids, self.vocab_size))

    def save(self, path: str | Path) -> None:
        """Write a readable text file: a version line, the characters, the special tokens, then
        one merge per line (``left right`` and, after a tab, the merged text as a comment)."""
        lines = [
            FORMAT_VERSION,
            "chars " + json.dumps("".join(self.chars)),
            "special " + json.dumps(list(self.special_tokens)),
            f"merges {len(self.merges)}",
        ]
        for (a, b), new_id in self.merges.items():
            lines.append(f"{a} {b}\t# {json.dumps(self.vocab[new_id])}")
        Path(check_path("path", path)).write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CharBPETokenizer:
        """Read a file written by `save` and rebuild everything derived from it.

        Raises:
            ValueError: the first line is not ``llmscratch-bpe v1``, or the file is malformed.
        """
        lines = Path(check_path("path", path)).read_text(encoding="utf-8").split("\n")
        if lines[0] != FORMAT_VERSION:
            raise ValueError(f"{path}: first line must be {FORMAT_VERSION!r}, got {lines[0]!r}")
        try:
            chars = json.loads(_field(lines[1], "chars"))
            special = json.loads(_field(lines[2], "special"))
            num_merges = int(_field(lines[3], "merges"))
            merge_lines = lines[4 : 4 + num_merges]
            merges = [(int(line.split()[0]), int(line.split()[1])) for line in merge_lines]
        except (IndexError, ValueError) as err:
            raise ValueError(f"{path}: malformed tokenizer file ({err})") from None
        if len(merges) != num_merges:
            raise ValueError(f"{path}: expected {num_merges} merges, found {len(merges)}")
        return cls(chars, merges, special)


def _field(line: str, name: str) -> str:
    key, _, value = line.partition(" ")
    if key != name:
        raise ValueError(f"expected a line starting with {name!r}, got {line[:40]!r}")
    return value

def _check_special_tokens(special_tokens: object) -> tuple[str, ...]:
    if isinstance(special_tokens, (str, bytes)) or not isinstance(special_tokens, Iterable):
        raise TypeError(f"special_tokens must be a sequence of str, got {type(special_tokens).__name__}")
    special_tokens = tuple(special_tokens)
    for s in special_tokens:
        if not isinstance(s, str):
            raise TypeError(f"special_tokens must hold str, got {type(s).__name__} {s!r}")
    return special_tokens


def _check_text(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text


def _check_vocab_size(vocab_size: int, minimum: int) -> None:
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
    if vocab_size < minimum:
        raise ValueError(
            f"vocab_size must be >= {minimum} (the base vocabulary and special tokens), "
            f"got {vocab_size}"
        )
