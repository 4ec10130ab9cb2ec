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

import heapq
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .special_tokens import split_on_special

FORMAT_VERSION = "llmscratch-bpe v1"

Pair = tuple[int, int]


# --- 1. The two helpers -----------------------------------------------------------------------


def get_stats(ids: Sequence[int]) -> Counter[Pair]:
    """Count every adjacent pair of ids (overlapping pairs included).

    >>> get_stats([1, 2, 3, 1, 2])
    Counter({(1, 2): 2, (2, 3): 1, (3, 1): 1})
    """
    return Counter(zip(ids, ids[1:]))


def merge(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace each occurrence of `pair` in `ids` by `new_id`, left to right, without overlap.

    >>> merge([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    >>> merge([7, 7, 7], (7, 7), 8)
    [8, 7]
    """
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


# --- 2. The naive trainer: the slow first version -----------------------------------------------


def train_naive(text: str, vocab_size: int) -> CharBPETokenizer:
    """Train character-level BPE by recounting every pair after every merge (teaching reference).

    Costs O(len(text)) per merge. `CharBPETokenizer.train` gives the same merges, faster.

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
        pair = min(stats, key=lambda p: (-stats[p], p))  # most frequent; ties: smallest ids
        ids = merge(ids, pair, new_id)
        merges.append(pair)
    return CharBPETokenizer(chars, merges)


# --- 3. The fast trainer: incremental pair counts ----------------------------------------------


class _PairIndex:
    """Token sequences as one doubly linked list, with each pair's weighted count and positions.

    A position is an index into the concatenated input. Merging a pair keeps its left position
    (which takes the new id) and unlinks the right one (its token becomes -1). The position lists
    in `where` may hold stale entries, where the pair has since been destroyed; `merge`
    checks every entry before using it. No pair spans two words.
    """

    def __init__(self, words: Iterable[Sequence[int]], weights: Iterable[int]):
        self.tokens: list[int] = []  # token id at each position, -1 once merged away
        self.prev: list[int] = []  # previous live position in the same word, or -1
        self.next: list[int] = []  # next live position in the same word, or -1
        self.weight: list[int] = []  # how often the word holding this position occurs
        self.starts: list[int] = []  # first position of each non-empty word
        self.counts: defaultdict[Pair, int] = defaultdict(int)  # pair -> weighted occurrences
        self.where: defaultdict[Pair, list[int]] = defaultdict(list)  # pair -> left positions
        for word, w in zip(words, weights):
            word, start = list(word), len(self.tokens)
            if not word:
                continue
            self.starts.append(start)
            self.tokens.extend(word)
            self.weight.extend([w] * len(word))
            self.prev.extend(range(start - 1, start + len(word) - 1))
            self.next.extend(range(start + 1, start + len(word) + 1))
            self.prev[start], self.next[-1] = -1, -1
            for i, pair in enumerate(zip(word, word[1:]), start):
                self.counts[pair] += w
                self.where[pair].append(i)

    def _remove(self, pair: Pair, w: int) -> None:
        count = self.counts[pair] - w
        if count:
            self.counts[pair] = count
        else:  # no occurrence left: forget the pair and its (now stale) positions
            del self.counts[pair]
            self.where.pop(pair, None)

    def merge(self, pair: Pair, new_id: int) -> set[Pair]:
        """Replace `pair` by `new_id` everywhere, left to right; return the pairs this created."""
        a, b = pair
        tokens, prev, next_ = self.tokens, self.prev, self.next
        counts, where = self.counts, self.where
        created = set()
        for p in sorted(where.pop(pair, ())):
            q = next_[p]
            if tokens[p] != a or q < 0 or tokens[q] != b:
                continue  # stale entry, or consumed by the previous occurrence ("aaa")
            w, left, right = self.weight[p], prev[p], next_[q]
            self._remove(pair, w)
            if left >= 0:
                self._remove((tokens[left], a), w)
            if right >= 0:
                self._remove((b, tokens[right]), w)
            tokens[p], tokens[q] = new_id, -1  # p takes the new id, q leaves the list
            next_[p] = right
            if right >= 0:
                prev[right] = p
                new_pair = (new_id, tokens[right])
                counts[new_pair] += w
                where[new_pair].append(p)
                created.add(new_pair)
            if left >= 0:
                new_pair = (tokens[left], new_id)
                counts[new_pair] += w
                where[new_pair].append(left)
                created.add(new_pair)
        return created

    def words(self) -> list[list[int]]:
        """The current token ids of each non-empty word, in input order."""
        out = []
        for p in self.starts:
            word = []
            while p >= 0:
                word.append(self.tokens[p])
                p = self.next[p]
            out.append(word)
        return out


def learn_merges(
    words: Sequence[Sequence[int]],
    num_merges: int,
    first_id: int,
    weights: Sequence[int] | None = None,
) -> list[Pair]:
    """Learn up to `num_merges` BPE merges over `words`, updating pair counts incrementally.

    Same result as `train_naive` (most frequent pair first, ties to the smallest ids, overlaps
    merged left to right), but each merge costs time proportional to its occurrences plus
    O(log P) heap operations, instead of a recount of the whole corpus. Counts live in a dict;
    a max-heap holds ``(-count, pair)`` entries that may be stale (counts only fall for existing
    pairs), so a popped entry whose count is out of date is pushed back with its true count.

    Args:
        words: sequences of token ids; no pair is counted across two words.
        num_merges: at most this many merges (fewer if no pair is left).
        first_id: the id of the first new token; merge ``i`` creates ``first_id + i``.
        weights: how often each word occurs (default 1 each); counts are weighted by it.

    Returns:
        The merged pairs, in order.
    """
    if weights is None:
        weights = [1] * len(words)
    if len(weights) != len(words):
        raise ValueError(f"weights has {len(weights)} entries but words has {len(words)}")
    index = _PairIndex(words, weights)
    heap = [(-count, pair) for pair, count in index.counts.items()]
    heapq.heapify(heap)
    merges: list[Pair] = []
    while heap and len(merges) < num_merges:
        neg_count, pair = heapq.heappop(heap)
        count = index.counts.get(pair, 0)
        if count == 0:
            continue  # the pair is gone
        if count != -neg_count:
            heapq.heappush(heap, (-count, pair))  # stale: reinsert with the true count
            continue
        for new_pair in index.merge(pair, first_id + len(merges)):
            if new_pair in index.counts:  # it may have vanished again within the same merge
                heapq.heappush(heap, (-index.counts[new_pair], new_pair))
        merges.append(pair)
    return merges


def apply_merges(ids: Sequence[int], merges: Mapping[Pair, int]) -> list[int]:
    """Encode `ids` with trained `merges` (pair -> new id): lowest new id (rank) first, as minbpe.

    Equal to looping ``pair = min(get_stats(ids), key=rank); ids = merge(ids, pair, rank)``
    until no pair has a rank, but in O(n log n) on the linked list of `_PairIndex`.
    """
    index = _PairIndex([ids], [1])
    heap = [(merges[p], p) for p in index.counts if p in merges]
    heapq.heapify(heap)
    while heap:
        new_id, pair = heapq.heappop(heap)
        if pair in index.counts:
            for new_pair in index.merge(pair, new_id):
                if new_pair in merges:
                    heapq.heappush(heap, (merges[new_pair], new_pair))
    return index.words()[0] if index.starts else []


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
        ValueError: repeated or multi-character `chars`, a merge that uses an id not yet defined,
            or a repeated or empty special token.
    """

    def __init__(
        self,
        chars: Iterable[str],
        merges: Iterable[Pair],
        special_tokens: Sequence[str] = (),
    ):
        self.chars = list(chars)
        if any(not isinstance(ch, str) or len(ch) != 1 for ch in self.chars):
            raise ValueError("chars must be single characters")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("chars must be distinct")
        self.vocab: dict[int, str] = dict(enumerate(self.chars))
        self.merges: dict[Pair, int] = {}  # pair -> new id; insertion order is the rank
        for a, b in merges:
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
            TypeError: `text` is not a str or `vocab_size` not an int.
            ValueError: `vocab_size` is smaller than characters + special tokens.
        """
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

    def encode(self, text: str, *, allowed_special: str | set[str] = "none_raise") -> list[int]:
        """Text -> token ids (see `split_on_special` for `allowed_special`).

        Raises:
            ValueError: `text` holds a character the tokenizer never saw (named in the
                message), or a special token that is not allowed.
        """
        ids: list[int] = []
        for part in split_on_special(_check_text(text), self.special_tokens, allowed_special):
            if isinstance(part, int):
                ids.append(part)
                continue
            try:
                chars = [self._stoi[ch] for ch in part]
            except KeyError as err:
                ch = err.args[0]
                raise ValueError(
                    f"character {ch!r} (U+{ord(ch):04X}) is not in the tokenizer's vocabulary"
                ) from None
            ids.extend(apply_merges(chars, self.merges))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids -> text. Raises ValueError for an id outside ``0 .. vocab_size - 1``."""
        try:
            return "".join(self.vocab[i] for i in ids)
        except KeyError as err:
            bad = err.args[0]
            raise ValueError(f"token id {bad!r} is not in 0..{self.vocab_size - 1}") from None

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
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CharBPETokenizer:
        """Read a file written by `save` and rebuild everything derived from it.

        Raises:
            ValueError: the first line is not ``llmscratch-bpe v1``, or the file is malformed.
        """
        lines = Path(path).read_text(encoding="utf-8").split("\n")
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
