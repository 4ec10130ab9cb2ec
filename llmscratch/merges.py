"""The byte-pair merge algorithm: count pairs, merge one, learn and apply merges fast (chapter 3).

The core that both tokenizers of chapter 3 share (the character-level
`llmscratch.bpe.CharBPETokenizer` and GPT-2's byte-level `llmscratch.byte_bpe.ByteBPETokenizer`):

`get_stats` counts adjacent pairs and `merge` replaces one pair by a new id. `learn_merges` is
the fast trainer: it counts the pairs once and then updates the counts only around each merged
occurrence (a linked list over the tokens, the positions of every pair, and a priority queue with
lazy deletion). `apply_merges` encodes with trained merges on the same list.

The slow trainer `train_naive` and the tokenizer are in `llmscratch.bpe`, whose docstring
states the conventions (overlapping counts, left-to-right merges, ties to the smallest ids) that
these functions follow.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from .validate import check_int

Pair = tuple[int, int]


# --- 1. The two helpers -----------------------------------------------------------------------


def get_stats(ids: Sequence[int]) -> Counter[Pair]:
    """Count every adjacent pair of ids (overlapping pairs included).

    >>> get_stats([1, 2, 3, 1, 2])
    Counter({(1, 2): 2, (2, 3): 1, (3, 1): 1})

    Raises:
        TypeError: if ``ids`` is not a list or tuple (a str would count characters).
    """
    _check_id_seq("ids", ids)
    return Counter(zip(ids, ids[1:]))


def merge(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace each occurrence of `pair` in `ids` by `new_id`, left to right, without
    overlap.

    >>> merge([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    >>> merge([7, 7, 7], (7, 7), 8)
    [8, 7]

    Raises:
        TypeError: if ``ids`` is not a list or tuple, ``pair`` not a pair of ints, or
            ``new_id`` not an int.
        ValueError: if ``new_id`` is negative.
    """
    _check_merge_args(ids, pair, new_id)
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out

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
    """Learn up to `num_merges` BPE merges over `words`, updating pair counts
    incrementally.

    Same result as `train_naive` (most frequent pair first, ties to the smallest ids,
    overlaps merged left to right), but each merge costs time proportional to its
    occurrences plus O(log P) heap operations, instead of a recount of the whole corpus.
    Counts live in a dict; a max-heap holds ``(-count, pair)`` entries that may be stale
    (counts only fall for existing pairs), so a popped entry whose count is out of date
    is pushed back with its true count.

    Args:
        words: sequences of token ids; no pair is counted across two words.
        num_merges: at most this many merges (fewer if no pair is left).
        first_id: the id of the first new token; merge ``i`` creates ``first_id + i``.
        weights: how often each word occurs (default 1 each); counts are weighted by it.

    Returns:
        The merged pairs, in order.

    Raises:
        TypeError: for a non-int ``num_merges`` or ``first_id``, or ``words`` /
            ``weights`` that are not sequences (of sequences of ints, of ints).
        ValueError: for a negative ``num_merges`` or ``first_id``, a weight < 1, or
            ``weights`` of another length than ``words``.
    """
    weights = _check_learn_args(words, num_merges, first_id, weights)  # all 1 when None
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
            # it may have vanished again within the same merge
            if new_pair in index.counts:
                heapq.heappush(heap, (-index.counts[new_pair], new_pair))
        merges.append(pair)
    return merges


def apply_merges(ids: Sequence[int], merges: Mapping[Pair, int]) -> list[int]:
    """Encode `ids` with trained `merges` (pair -> new id): lowest new id (rank) first,
    as minbpe.

    Equal to looping
    ``pair = min(get_stats(ids), key=rank); ids = merge(ids, pair, rank)`` until no
    pair has a rank, but in O(n log n) on the linked list of `_PairIndex`.

    Raises:
        TypeError: if ``ids`` is not a list or tuple, or ``merges`` not a mapping.
    """
    _check_id_seq("ids", ids)
    if not isinstance(merges, Mapping):
        raise TypeError(
            "merges must be a mapping from pairs to new ids, "
            f"got {type(merges).__name__}"
        )
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

def _check_id_seq(name: str, ids: object) -> None:
    """A cheap check for the inner helpers: a list or tuple (elements are not checked)."""
    if not isinstance(ids, (list, tuple)):
        raise TypeError(f"{name} must be a list or tuple of int ids, got {type(ids).__name__}")


def _check_merge_args(ids: object, pair: object, new_id: object) -> None:
    _check_id_seq("ids", ids)
    _check_pair("pair", pair)
    check_int("new_id", new_id, minimum=0)


def _check_learn_args(words: object, num_merges: object, first_id: object, weights: object) -> Sequence[int]:
    """The checks of `learn_merges`; returns ``weights`` (all 1 if None)."""
    check_int("num_merges", num_merges, minimum=0)
    check_int("first_id", first_id, minimum=0)
    if isinstance(words, (str, bytes)) or not isinstance(words, Sequence):
        raise TypeError(f"words must be a sequence of sequences of ids, got {type(words).__name__}")
    if weights is None:
        return [1] * len(words)
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise TypeError(f"weights must be a sequence of ints, got {type(weights).__name__}")
    for i, w in enumerate(weights):
        check_int(f"weights[{i}]", w, minimum=1)
    if len(weights) != len(words):
        raise ValueError(f"weights has {len(weights)} entries but words has {len(words)}")
    return weights


def _check_pair(name: str, pair: object) -> Pair:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"{name} must be a pair (left id, right id), got {pair!r}")
    check_int(f"{name}[0]", pair[0], minimum=0)
    check_int(f"{name}[1]", pair[1], minimum=0)
    return pair[0], pair[1]

