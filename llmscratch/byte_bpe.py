"""Byte-level BPE in the style of GPT-2: the second half of chapter 3.

Radford et al. (2019, "Language Models are Unsupervised Multitask Learners", section 2.2
"Input Representation") run BPE (Sennrich et al. 2016; Gage 1994) on UTF-8 bytes instead of
characters: the 256 byte values are the base vocabulary, so every string can be encoded and no
token is ever unknown. Two more ideas make it GPT-2's tokenizer:

- Pre-tokenization: a regex (`GPT2_SPLIT_PATTERN`) first cuts the text into chunks (words with
  their leading space, numbers, punctuation runs, whitespace), and merges never cross a chunk.
  Chunks repeat a lot, so encoding caches the tokens of each chunk it has seen.
- Special tokens such as ``<|endoftext|>`` (id 50256) bypass BPE; `encode` only produces them
  when `allowed_special` allows it, and by default raises on them, like tiktoken.

The published GPT-2 vocabulary is a list of *ranks* (`gpt2.tiktoken`: one
``base64(token bytes) rank`` per line, 50,256 tokens). A chunk is encoded by repeatedly merging
the adjacent pair of parts whose concatenated bytes has the lowest rank (`bpe_by_rank`), which
reproduces tiktoken's GPT-2 encoding token for token. Decoding joins the bytes and decodes them
as UTF-8 with ``errors="replace"`` (as tiktoken does): a list of ids that cuts a multi-byte
character in half decodes to U+FFFD rather than raising.

`ByteBPETokenizer.train` learns new ranks with the incremental trainer of `llmscratch.merges`,
over the bytes of each distinct chunk weighted by how often the chunk occurs.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import regex

from llmscratch.bpe import _check_special_tokens, _check_text, _check_vocab_size
from llmscratch.merges import learn_merges
from llmscratch.special_tokens import split_on_special
from llmscratch.validate import check_id_list, check_path

GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_SPECIAL_TOKENS = {"<|endoftext|>": 50256}

_CACHE_LIMIT = 100_000  # chunks kept in the encode cache before it is emptied


def _check_piece(piece: object, ranks: object) -> bytes:
    if not isinstance(piece, (bytes, bytearray)):
        raise TypeError(f"piece must be bytes, got {type(piece).__name__}")
    if not isinstance(ranks, Mapping):
        raise TypeError(f"ranks must be a mapping from bytes to ids, got {type(ranks).__name__}")
    return bytes(piece)


def bpe_by_rank(piece: bytes, ranks: Mapping[bytes, int]) -> list[int]:
    """Encode one chunk: start from single bytes and repeatedly merge the adjacent pair
    whose concatenation has the lowest rank (the leftmost one on a tie), until no pair
    has a rank.

    >>> ranks = {bytes([i]): i for i in range(256)} | {b"ll": 256, b"he": 257}
    >>> bpe_by_rank(b"hello", ranks)
    [257, 256, 111]

    Raises:
        TypeError: if ``piece`` is not bytes or ``ranks`` not a mapping.
    """
    piece = _check_piece(piece, ranks)  # bytes(piece)
    parts = [piece[i : i + 1] for i in range(len(piece))]
    missing = float("inf")  # the rank of a pair that cannot merge
    pair_ranks = [ranks.get(a + b, missing) for a, b in zip(parts, parts[1:])]
    while pair_ranks:
        best = min(pair_ranks)
        if best == missing:
            break
        i = pair_ranks.index(best)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
        del pair_ranks[i]
        if i > 0:  # the pair ending at the merged part
            pair_ranks[i - 1] = ranks.get(parts[i - 1] + parts[i], missing)
        if i < len(pair_ranks):  # the pair starting at it
            pair_ranks[i] = ranks.get(parts[i] + parts[i + 1], missing)
    return [ranks[p] for p in parts]


class ByteBPETokenizer:
    """Byte-level BPE: ranks of byte strings, a split pattern and special tokens (tiktoken's model).

    Args:
        ranks: token bytes -> id; must hold all 256 single bytes. The id is also the merge rank.
        pattern: the pre-tokenization regex (`regex` syntax); GPT-2's by default.
        special_tokens: special token string -> id, ids distinct from those of `ranks`.

    Raises:
        TypeError: `ranks` is not a mapping of bytes to ints, `special_tokens` not a mapping
            of str to ints, or `pattern` not a str.
        ValueError: a single byte is missing from `ranks`, an id is negative, ids repeat, a
            special token is empty, or a special token's id collides with a rank.
    """

    def __init__(
        self,
        ranks: Mapping[bytes, int],
        *,
        pattern: str = GPT2_SPLIT_PATTERN,
        special_tokens: Mapping[str, int] | None = None,
    ):
        if not isinstance(ranks, Mapping):
            raise TypeError(f"ranks must be a mapping from bytes to int ids, got {type(ranks).__name__}")
        for token, i in ranks.items():
            if not isinstance(token, bytes):
                raise TypeError(f"ranks must map bytes to ids, got a key of type {type(token).__name__}: {token!r}")
            if isinstance(i, bool) or not isinstance(i, int):
                raise TypeError(f"ranks must map bytes to int ids, got {type(i).__name__} {i!r} for {token!r}")
            if i < 0:
                raise ValueError(f"ranks must hold ids >= 0, got {i} for {token!r}")
        if special_tokens is not None and not isinstance(special_tokens, Mapping):
            raise TypeError(f"special_tokens must be a mapping from str to int ids, got {type(special_tokens).__name__}")
        for token, i in (special_tokens or {}).items():
            if not isinstance(token, str):
                raise TypeError(f"special_tokens must map str to ids, got a key of type {type(token).__name__}")
            if not token:
                raise ValueError("special_tokens must not hold the empty string")
            if isinstance(i, bool) or not isinstance(i, int):
                raise TypeError(f"special_tokens must map str to int ids, got {type(i).__name__} {i!r} for {token!r}")
            if i < 0:
                raise ValueError(f"special_tokens must hold ids >= 0, got {i} for {token!r}")
        if not isinstance(pattern, str):
            raise TypeError(f"pattern must be a str (a regex), got {type(pattern).__name__}")
        self.ranks = dict(ranks)
        missing = [b for b in range(256) if bytes([b]) not in self.ranks]
        if missing:
            raise ValueError(f"ranks must hold all 256 single bytes; missing {missing[:8]}...")
        self.vocab: dict[int, bytes] = {i: token for token, i in self.ranks.items()}
        if len(self.vocab) != len(self.ranks):
            raise ValueError("ranks must give each token a distinct id")
        self.special_tokens = dict(special_tokens or {})
        for token, i in self.special_tokens.items():
            if i in self.vocab:
                raise ValueError(f"special token {token!r} has id {i}, already used by a rank")
            self.vocab[i] = token.encode("utf-8")
        self.pattern = pattern
        self._split = regex.compile(pattern)
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        """Number of ids: ranked tokens + special tokens (50,257 for GPT-2)."""
        return len(self.vocab)

    @classmethod
    def from_tiktoken_file(
        cls,
        path: str | Path,
        *,
        pattern: str = GPT2_SPLIT_PATTERN,
        special_tokens: Mapping[str, int] | None = None,
    ) -> ByteBPETokenizer:
        """Load ranks from a ``.tiktoken`` file (``base64(token bytes) rank`` per line).

        `special_tokens` defaults to GPT-2's ``{"<|endoftext|>": 50256}``.

        Raises:
            ValueError: a line is not ``base64 rank`` (the line number is given).
        """
        ranks = {}
        for number, line in enumerate(Path(check_path("path", path)).read_text(encoding="ascii").splitlines(), 1):
            if not line:
                continue
            try:
                token, rank = line.split()
                ranks[base64.b64decode(token, validate=True)] = int(rank)
            except ValueError:
                raise ValueError(
                    f"{path}, line {number}: expected 'base64 rank', got {line[:60]!r}"
                ) from None
        if special_tokens is None:
            special_tokens = GPT2_SPECIAL_TOKENS
        return cls(ranks, pattern=pattern, special_tokens=special_tokens)

    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        *,
        pattern: str = GPT2_SPLIT_PATTERN,
        special_tokens: Sequence[str] = (),
    ) -> ByteBPETokenizer:
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges on the chunks of `text`.

        Uses `llmscratch.merges.learn_merges` on the UTF-8 bytes of each distinct chunk, weighted
        by its count (most frequent pair first; ties to the smallest ids). Merge ``i`` gets rank
        ``256 + i``; special tokens get the ids after the merges. Stops early when no pair is
        left. Should two merges ever spell the same bytes (we have not seen it happen; HF
        tokenizers guards against it too), only the first gets a rank.

        Raises:
            TypeError: `text` or `pattern` is not a str, `vocab_size` not an int, or
                `special_tokens` not a sequence of str.
            ValueError: `vocab_size` < 256 + len(special_tokens).
        """
        _check_text(text)
        special_tokens = _check_special_tokens(special_tokens)
        if not isinstance(pattern, str):
            raise TypeError(f"pattern must be a str (a regex), got {type(pattern).__name__}")
        _check_vocab_size(vocab_size, 256 + len(special_tokens))
        split = regex.compile(pattern)
        placeholder_ids = {s: i for i, s in enumerate(special_tokens)}
        chunks: Counter[str] = Counter()
        for part in split_on_special(text, placeholder_ids, "all"):
            if isinstance(part, str):
                chunks.update(split.findall(part))
        words = [list(_utf8(chunk)) for chunk in chunks]
        num_merges = vocab_size - 256 - len(special_tokens)
        merges = learn_merges(words, num_merges, first_id=256, weights=list(chunks.values()))
        vocab = {i: bytes([i]) for i in range(256)}
        ranks = {token: i for i, token in vocab.items()}
        for new_id, (a, b) in enumerate(merges, 256):
            vocab[new_id] = vocab[a] + vocab[b]
            ranks.setdefault(vocab[new_id], new_id)
        first_special = 256 + len(merges)
        specials = {s: first_special + i for i, s in enumerate(special_tokens)}
        return cls(ranks, pattern=pattern, special_tokens=specials)

    def encode(self, text: str, *, allowed_special: str | set[str] = "none_raise") -> list[int]:
        """Text -> token ids, chunk by chunk with a cache.

        `allowed_special` is ``"none_raise"`` (default: raise if the text holds a special token,
        like tiktoken), ``"none"`` (encode special tokens as ordinary text, tiktoken's
        ``disallowed_special=()``), ``"all"``, or a set of allowed special tokens (see
        `llmscratch.special_tokens.split_on_special`). Lone surrogates, which UTF-8 cannot encode, become
        U+FFFD as in tiktoken.

        Raises:
            ValueError: the text holds a special token that is not allowed.
        """
        ids: list[int] = []
        for part in split_on_special(_check_text(text), self.special_tokens, allowed_special):
            if isinstance(part, int):
                ids.append(part)
            else:
                ids.extend(self._encode_ordinary(part))
        return ids

    def _encode_ordinary(self, text: str) -> list[int]:
        ids: list[int] = []
        cache = self._cache
        for chunk in self._split.findall(text):
            tokens = cache.get(chunk)
            if tokens is None:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                tokens = cache[chunk] = bpe_by_rank(_utf8(chunk), self.ranks)
            ids.extend(tokens)
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Token ids -> the bytes they stand for.

        Args:
            ids: a list, tuple or range of ints, or a 1-D integer tensor.

        Raises:
            TypeError: for a float or bool id, a float tensor, or a str.
            ValueError: for an id that is not in the vocabulary, or a tensor that is
                not 1-D.
        """
        vocab = self.vocab
        try:
            return b"".join(vocab[i] for i in check_id_list("ids", ids))
        except KeyError as err:
            raise ValueError(f"ids: token id {err.args[0]!r} is not in the vocabulary "
                             f"({self.vocab_size} ids)") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids -> text; invalid UTF-8 (e.g. half a character) becomes U+FFFD.

        Raises:
            TypeError, ValueError: as :meth:`decode_bytes`.
        """
        return self.decode_bytes(ids).decode("utf-8", errors="replace")


def _utf8(chunk: str) -> bytes:
    try:
        return chunk.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: replace them by U+FFFD, as tiktoken does
        return chunk.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")
