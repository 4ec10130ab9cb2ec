"""Sliding-window training examples, held-out splits and minibatches.

Taught in chapter 1 (windows over names, a split by name) and chapter 2 (windows over
one long text, a split by position); chapter 4 reuses :class:`TokenStream` with a
target at every position.

Both dataset classes follow the dataset protocol of :mod:`llmscratch.train`, which is
all the training loop and the evaluation rely on:

* ``sample(batch_size, generator) -> (x, y)``: a random minibatch;
* ``batches(batch_size) -> iterator of (x, y)``: one deterministic pass in which every
  held-out target is predicted exactly once;
* ``len(dataset)``: how many examples (windows) it holds; ``num_targets``: how many
  targets a pass predicts.

Shapes: ``x`` is ``(B, T)`` token ids with ``T = block_size``; ``y`` is ``(B,)`` when a
model predicts only the next token after the window (the MLP of chapters 1-2) and
``(B, T)`` when it predicts the next token at every position (the GPT of chapter 4).
Targets equal to ``IGNORE_INDEX`` are skipped by the loss.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch

from .lm import IGNORE_INDEX
from .validate import check_float, check_id_list, check_int, check_positive_int


def _check_int_tensor(name: str, t: torch.Tensor) -> None:
    """``t`` must be a tensor of an integer dtype (not bool, not float)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(t).__name__}")
    if t.dtype == torch.bool or t.dtype.is_floating_point or t.dtype.is_complex:
        raise TypeError(f"{name} must hold integer token ids, got dtype {t.dtype}")


def _check_batch_args(batch_size: int, generator: torch.Generator | None = None) -> None:
    check_positive_int("batch_size", batch_size)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def _check_words(words: object, boundary_id: object) -> list[list[int]]:
    """The checks of :func:`name_windows`: ``words`` as lists of int ids, none holding ``boundary_id``."""
    check_int("boundary_id", boundary_id, minimum=0)
    if isinstance(words, (str, bytes)) or not isinstance(words, Sequence):
        raise TypeError(f"words must be a list of encoded words, got {type(words).__name__}")
    if len(words) == 0:
        raise ValueError("words is empty: there is nothing to build windows from")
    out = []
    for n, word in enumerate(words):
        word = check_id_list(f"words[{n}]", word)
        if boundary_id in word:
            raise ValueError(f"words[{n}] contains boundary_id={boundary_id} (position "
                             f"{word.index(boundary_id)}); the boundary token may only frame a word")
        out.append(word)
    return out


def name_windows(
    words: Sequence[Sequence[int]], block_size: int, *, boundary_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (context, next character) pair in a list of encoded words.

    Each word is framed by the boundary token: the context starts as ``block_size``
    boundary tokens, and the last target is the boundary token that ends the word.
    For ``block_size=3`` the word ``emma`` gives five examples::

        ... -> e    ..e -> m    .em -> m    emm -> a    mma -> .

    Args:
        words: encoded words (lists, tuples or 1-D integer tensors of token ids >= 0),
            none of them containing ``boundary_id``.
        block_size: context length :math:`T` (the paper's :math:`n-1`), at least 1.
        boundary_id: id of the start/end token, >= 0.

    Returns:
        ``X`` of shape ``(N, block_size)`` and ``Y`` of shape ``(N,)``, both int64,
        where ``N`` is the number of characters plus one end token per word.

    Raises:
        TypeError: for a non-int ``block_size`` or ``boundary_id``, or a word that is
            not a sequence of int ids (a float, a bool, a str).
        ValueError: if ``block_size < 1``, there are no words, an id is negative, or a
            word contains ``boundary_id``.
    """
    check_positive_int("block_size", block_size)
    # each word as a list of int ids; refuses boundary_id inside a word
    words = _check_words(words, boundary_id)
    xs, ys = [], []
    for word in words:
        padded = torch.tensor([boundary_id] * block_size + word + [boundary_id])
        # Row t of the unfolded view is padded[t : t + block_size]: the context of
        # target t.
        xs.append(padded[:-1].unfold(0, block_size, 1))  # (len(word)+1, block_size)
        ys.append(padded[block_size:])  # (len(word)+1,)
    return torch.cat(xs).long(), torch.cat(ys).long()


def split_by_name(
    names: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1), *, seed: int = 0
) -> list[list[str]]:
    """Shuffle whole names into train/validation/test lists, so no name is in two splits.

    Splitting by name (not by window) matters: the windows of one name overlap, so a
    split by window would put most of a validation name's contexts in training too.

    Args:
        names: the (already de-duplicated) names.
        fractions: share of names per split; must be positive and sum to 1.
        seed: seed of the shuffle.

    Returns:
        One list per fraction, in order (by default ``[train, val, test]``).

    Raises:
        TypeError: for ``names`` that is a str, a fraction that is not a number, or a
            non-int ``seed``.
        ValueError: for bad fractions, or if a split would be empty.
    """
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise TypeError(f"names must be a sequence of str, got {type(names).__name__}")
    check_int("seed", seed)
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence):
        raise TypeError(f"fractions must be a sequence of numbers, got {type(fractions).__name__}")
    for i, f in enumerate(fractions):
        check_float(f"fractions[{i}]", f)
    if not fractions or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be positive and sum to 1, got {tuple(fractions)}")
    shuffled = list(names)
    random.Random(seed).shuffle(shuffled)
    n = len(shuffled)
    bounds = [0]
    for f in fractions[:-1]:
        bounds.append(bounds[-1] + round(f * n))
    bounds.append(n)
    splits = [shuffled[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    if any(len(s) == 0 for s in splits):
        raise ValueError(f"{n} names are too few for {len(fractions)} non-empty splits")
    return splits


def _check_split_args(ids: object, train_fraction: object) -> None:
    if isinstance(ids, torch.Tensor):
        _check_int_tensor("ids", ids)
        if ids.ndim != 1:
            raise ValueError(f"ids must be a 1-D sequence of token ids, got shape {tuple(ids.shape)}")
    elif isinstance(ids, (list, tuple)):
        check_id_list("ids", ids)
    else:
        raise TypeError(f"ids must be a 1-D integer tensor or a list of int ids, got {type(ids).__name__}")
    check_float("train_fraction", train_fraction, minimum=0.0, maximum=1.0, min_inclusive=False,
                max_inclusive=False)


def split_by_position(
    ids: torch.Tensor, train_fraction: float = 0.9
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split one long token sequence into a leading training part and a held-out tail.

    A split by position keeps the held-out text contiguous and unseen: a model cannot
    have memorised a sentence that sits only in the last 10% of the file.

    Args:
        ids: a 1-D integer tensor (or a list or tuple of int ids).
        train_fraction: the share of tokens in the training part, in (0, 1).

    Raises:
        TypeError: if ``ids`` is not an integer tensor or a sequence of int ids, or
            ``train_fraction`` not a number.
        ValueError: if ``ids`` is not 1-D, ``train_fraction`` is not in (0, 1) or a part
            would be empty.
    """
    _check_split_args(ids, train_fraction)
    n = int(train_fraction * len(ids))
    if n == 0 or n == len(ids):
        raise ValueError(f"ids ({len(ids)} tokens) is too short to split "
                         f"at train_fraction={train_fraction:g}")
    return ids[:n], ids[n:]


class WindowDataset:
    """A fixed set of examples ``X (N, T)``, ``Y (N,)``, e.g. from :func:`name_windows`.

    Raises:
        TypeError: if ``X`` or ``Y`` is not an integer tensor.
        ValueError: for shapes other than ``(N, T)`` and ``(N,)``, ``N == 0``, a negative
            id in ``X``, or a target that is neither >= 0 nor ``IGNORE_INDEX``.
    """

    def __init__(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        _check_int_tensor("X", X)
        _check_int_tensor("Y", Y)
        if X.ndim != 2 or Y.ndim != 1 or X.shape[0] != Y.shape[0]:
            raise ValueError(f"expected X (N, T) and Y (N,), got {tuple(X.shape)} and {tuple(Y.shape)}")
        if X.shape[0] == 0:
            raise ValueError("X and Y are empty: the dataset has no example")
        if X.numel() and int(X.min()) < 0:
            raise ValueError(f"X must hold token ids >= 0, got {int(X.min())}")
        if bool(((Y < 0) & (Y != IGNORE_INDEX)).any()):
            raise ValueError(f"Y must hold token ids >= 0 or {IGNORE_INDEX}, got {int(Y.min())}")
        self.X, self.Y = X, Y

    @property
    def block_size(self) -> int:
        return self.X.shape[1]

    @property
    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The data itself, ``(X, Y)``: what a cache key fingerprints."""
        return self.X, self.Y

    @property
    def num_targets(self) -> int:
        return self.Y.shape[0]

    def __len__(self) -> int:
        return self.X.shape[0]

    def sample(self, batch_size: int, generator: torch.Generator | None = None):
        """A random minibatch ``(x (B, T), y (B,))``, drawn with replacement."""
        _check_batch_args(batch_size, generator)
        ix = torch.randint(len(self), (batch_size,), generator=generator)
        return self.X[ix], self.Y[ix]

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every example once, in order (``batch_size`` is checked at the call)."""
        check_positive_int("batch_size", batch_size)
        return ((self.X[i : i + batch_size], self.Y[i : i + batch_size]) for i in range(0, len(self), batch_size))


class TokenStream:
    """Windows over one long sequence of token ids (chapter 2 onwards).

    Args:
        ids: 1-D tensor of an integer dtype (ids >= 0), the text encoded; kept as int64.
        block_size: context length :math:`T`.
        targets: ``"last"``: one target per window, the token after it (``y`` is
            ``(B,)``), for the MLP; ``"all"``: the next token at every position (``y`` is
            ``(B, T)``), for the transformer.

    Raises:
        TypeError: if ``ids`` is not a tensor of an integer dtype (a float tensor would
            be truncated) or ``block_size`` is not an int.
        ValueError: if the sequence is not longer than ``block_size``, holds a negative
            id, or ``targets`` is unknown.
    """

    def __init__(self, ids: torch.Tensor, block_size: int, *, targets: str = "last") -> None:
        check_positive_int("block_size", block_size)
        if targets not in ("last", "all"):
            raise ValueError(f"targets must be 'last' or 'all', got {targets!r}")
        _check_int_tensor("ids", ids)
        if ids.ndim != 1 or len(ids) <= block_size:
            raise ValueError(
                f"need a 1-D sequence longer than block_size={block_size}, got shape {tuple(ids.shape)}"
            )
        if int(ids.min()) < 0:
            raise ValueError(f"ids must hold token ids >= 0, got {int(ids.min())}")
        self.ids = ids.long()
        self.block_size = block_size
        self.targets = targets

    @property
    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The data itself, ``(ids,)``: what a cache key fingerprints."""
        return (self.ids,)

    @property
    def num_targets(self) -> int:
        # "last": tokens block_size .. N-1; "all": tokens 1 .. N-1 (see batches()).
        n = len(self.ids)
        return n - self.block_size if self.targets == "last" else n - 1

    def __len__(self) -> int:
        """The number of window start positions, ``N - block_size``."""
        return len(self.ids) - self.block_size

    def _windows(self, starts: torch.Tensor):
        T = self.block_size
        offsets = starts[:, None] + torch.arange(T)  # (B, T)
        x = self.ids[offsets]
        y = self.ids[starts + T] if self.targets == "last" else self.ids[offsets + 1]
        return x, y

    def sample(self, batch_size: int, generator: torch.Generator | None = None):
        """A minibatch of windows at random start positions."""
        _check_batch_args(batch_size, generator)
        starts = torch.randint(len(self.ids) - self.block_size, (batch_size,), generator=generator)
        return self._windows(starts)

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass in which every target is predicted once.

        ``"last"``: a window starts at every position, so each target sees a full
        context. ``"all"``: windows are laid end to end (stride ``T``), so token ``t``
        sees ``t mod T`` tokens of context, as in training; the final window is shifted
        back to end at the last token and its already-counted targets are set to
        ``IGNORE_INDEX``.

        Raises:
            TypeError, ValueError: at the call, for a ``batch_size`` that is not an int >= 1.
        """
        check_positive_int("batch_size", batch_size)
        return self._batches(batch_size)

    def _batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, T = len(self.ids), self.block_size
        if self.targets == "last":
            starts = torch.arange(n - T)
            for i in range(0, len(starts), batch_size):
                yield self._windows(starts[i : i + batch_size])
            return
        starts = list(range(0, n - T, T))
        covered = starts[-1] + T  # targets 1 .. covered are predicted by these windows
        tail = None
        if covered < n - 1:
            tail = n - 1 - T
        for i in range(0, len(starts), batch_size):
            yield self._windows(torch.tensor(starts[i : i + batch_size]))
        if tail is not None:
            x, y = self._windows(torch.tensor([tail]))
            y[:, : covered - tail] = IGNORE_INDEX  # those targets were counted already
            yield x, y
