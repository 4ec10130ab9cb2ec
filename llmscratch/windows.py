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
from .validate import check_positive_int


def name_windows(
    words: Sequence[Sequence[int]], block_size: int, *, boundary_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (context, next character) pair in a list of encoded words.

    Each word is framed by the boundary token: the context starts as ``block_size``
    boundary tokens, and the last target is the boundary token that ends the word.
    For ``block_size=3`` the word ``emma`` gives five examples::

        ... -> e    ..e -> m    .em -> m    emm -> a    mma -> .

    Args:
        words: encoded words (lists of token ids), none of them containing ``boundary_id``.
        block_size: context length :math:`T` (the paper's :math:`n-1`), at least 1.
        boundary_id: id of the start/end token.

    Returns:
        ``X`` of shape ``(N, block_size)`` and ``Y`` of shape ``(N,)``, both int64, where
        ``N`` is the number of characters plus one end token per word.

    Raises:
        ValueError: if ``block_size < 1`` or there are no words.
    """
    check_positive_int("block_size", block_size)
    if len(words) == 0:
        raise ValueError("words is empty: there is nothing to build windows from")
    xs, ys = [], []
    for word in words:
        padded = torch.tensor([boundary_id] * block_size + list(word) + [boundary_id])
        # Row t of the unfolded view is padded[t : t + block_size]: the context of target t.
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
        ValueError: for bad fractions, or if a split would be empty.
    """
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


def split_by_position(ids: torch.Tensor, train_fraction: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """Split one long token sequence into a leading training part and a held-out tail.

    A split by position keeps the held-out text contiguous and unseen: a model cannot
    have memorised a sentence that sits only in the last 10% of the file.

    Raises:
        ValueError: if ``train_fraction`` is not in (0, 1) or a part would be empty.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    n = int(train_fraction * len(ids))
    if n == 0 or n == len(ids):
        raise ValueError(f"a sequence of {len(ids)} tokens is too short to split")
    return ids[:n], ids[n:]


class WindowDataset:
    """A fixed set of examples ``X (N, T)``, ``Y (N,)``, e.g. from :func:`name_windows`."""

    def __init__(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        if X.ndim != 2 or Y.ndim != 1 or X.shape[0] != Y.shape[0]:
            raise ValueError(f"expected X (N, T) and Y (N,), got {tuple(X.shape)} and {tuple(Y.shape)}")
        if X.shape[0] == 0:
            raise ValueError("the dataset is empty")
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
        ix = torch.randint(len(self), (batch_size,), generator=generator)
        return self.X[ix], self.Y[ix]

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every example once, in order."""
        for i in range(0, len(self), batch_size):
            yield self.X[i : i + batch_size], self.Y[i : i + batch_size]


class TokenStream:
    """Windows over one long sequence of token ids (chapter 2 onwards).

    Args:
        ids: 1-D int tensor, the text encoded.
        block_size: context length :math:`T`.
        targets: ``"last"``: one target per window, the token after it (``y`` is
            ``(B,)``), for the MLP; ``"all"``: the next token at every position (``y`` is
            ``(B, T)``), for the transformer.

    Raises:
        ValueError: if the sequence is not longer than ``block_size`` or ``targets`` is
            unknown.
    """

    def __init__(self, ids: torch.Tensor, block_size: int, *, targets: str = "last") -> None:
        check_positive_int("block_size", block_size)
        if targets not in ("last", "all"):
            raise ValueError(f"targets must be 'last' or 'all', got {targets!r}")
        if ids.ndim != 1 or len(ids) <= block_size:
            raise ValueError(
                f"need a 1-D sequence longer than block_size={block_size}, got shape {tuple(ids.shape)}"
            )
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
        starts = torch.randint(len(self.ids) - self.block_size, (batch_size,), generator=generator)
        return self._windows(starts)

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass in which every target is predicted once.

        ``"last"``: a window starts at every position, so each target sees a full
        context. ``"all"``: windows are laid end to end (stride ``T``), so token ``t``
        sees ``t mod T`` tokens of context, as in training; the final window is shifted
        back to end at the last token and its already-counted targets are set to
        ``IGNORE_INDEX``.
        """
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
