"""Tests for llmscratch.windows: examples, splits without leakage, one-pass batches."""

from __future__ import annotations

import pytest
import torch

from llmscratch.data import load_indian_names
from llmscratch.lm import IGNORE_INDEX
from llmscratch.vocab import CharVocab
from llmscratch.windows import (
    TokenStream,
    WindowDataset,
    name_windows,
    split_by_name,
    split_by_position,
)


@pytest.fixture(scope="module")
def names(mirror_dir, tmp_path_factory) -> list[str]:
    """The cleaned Indian names (6,466 of them), read from the offline mirror."""
    names, _ = load_indian_names(mirror=mirror_dir, cache_dir=tmp_path_factory.mktemp("cache"))
    return names


# -- name_windows -------------------------------------------------------------------


def test_name_windows_emma_block3_is_the_documented_example():
    v = CharVocab.from_text("emma", boundary=".")  # . a e m -> 0 1 2 3
    X, Y = name_windows([v.encode("emma")], block_size=3)
    contexts = [v.decode(row) for row in X.tolist()]
    targets = v.decode(Y.tolist())
    assert list(zip(contexts, targets)) == [
        ("...", "e"),
        ("..e", "m"),
        (".em", "m"),
        ("emm", "a"),
        ("mma", "."),
    ]
    assert X.dtype == Y.dtype == torch.int64
    assert X.shape == (5, 3) and Y.shape == (5,)


def test_name_windows_block1_gives_bigrams():
    X, Y = name_windows([[5, 6]], block_size=1, boundary_id=0)
    assert X.tolist() == [[0], [5], [6]]
    assert Y.tolist() == [5, 6, 0]


def test_name_windows_matches_naive_loop_on_real_names(names):
    v = CharVocab.from_text(names, boundary=".")
    words = [v.encode(n) for n in names[:300]]
    for block_size in (1, 3, 8):
        X, Y = name_windows(words, block_size)
        xs, ys = [], []
        for w in words:
            context = [0] * block_size
            for ch in w + [0]:
                xs.append(list(context))
                ys.append(ch)
                context = context[1:] + [ch]
        assert X.tolist() == xs and Y.tolist() == ys


def test_name_windows_counts_are_chars_plus_one_per_word(names):
    v = CharVocab.from_text(names, boundary=".")
    words = [v.encode(n) for n in names]
    X, Y = name_windows(words, block_size=4)
    expected = sum(len(n) + 1 for n in names)
    assert X.shape == (expected, 4) and Y.shape == (expected,)
    assert int((Y == 0).sum()) == len(names)  # one end token per name


@pytest.mark.parametrize("block_size", [0, -3])
def test_name_windows_rejects_small_block_size(block_size):
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        name_windows([[1, 2]], block_size)


@pytest.mark.parametrize("block_size", [2.0, "3", True, None])
def test_name_windows_rejects_non_int_block_size(block_size):
    with pytest.raises(TypeError, match="block_size must be an int"):
        name_windows([[1, 2]], block_size)


def test_name_windows_rejects_no_words():
    with pytest.raises(ValueError, match="words is empty"):
        name_windows([], 3)


# -- split_by_name ------------------------------------------------------------------


def test_split_by_name_has_no_leakage(names):
    train, val, test = split_by_name(names, seed=42)
    s_train, s_val, s_test = set(train), set(val), set(test)
    assert not (s_train & s_val) and not (s_train & s_test) and not (s_val & s_test)
    assert s_train | s_val | s_test == set(names)
    assert len(train) + len(val) + len(test) == len(names)
    n = len(names)
    assert abs(len(train) - 0.8 * n) <= 1
    assert abs(len(val) - 0.1 * n) <= 1
    assert abs(len(test) - 0.1 * n) <= 1


def test_split_by_name_seeding(names):
    assert split_by_name(names, seed=1) == split_by_name(names, seed=1)
    assert split_by_name(names, seed=1) != split_by_name(names, seed=2)
    # the input is not modified
    before = list(names)
    split_by_name(names, seed=3)
    assert names == before


def test_split_by_name_custom_fractions():
    splits = split_by_name([f"n{i}" for i in range(10)], (0.5, 0.5), seed=0)
    assert [len(s) for s in splits] == [5, 5]


@pytest.mark.parametrize(
    "fractions",
    [(0.8, 0.1), (0.8, 0.1, 0.2), (1.1, -0.1), (0.0, 1.0), (), (0.5, 0.5, 0.0)],
)
def test_split_by_name_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions must be positive and sum to 1"):
        split_by_name(["a", "b", "c", "d"], fractions)


def test_split_by_name_rejects_too_few_names():
    with pytest.raises(ValueError, match="too few"):
        split_by_name(["a", "b"])


# -- split_by_position --------------------------------------------------------------


@pytest.mark.parametrize("n, fraction", [(100, 0.9), (101, 0.9), (7, 0.5), (1000, 0.25)])
def test_split_by_position_sizes_and_contiguity(n, fraction):
    ids = torch.arange(n)
    train, val = split_by_position(ids, fraction)
    assert len(train) == int(fraction * n) and len(train) + len(val) == n
    assert torch.equal(torch.cat([train, val]), ids)  # contiguous: train is the head, val the tail


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_split_by_position_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="train_fraction must be in"):
        split_by_position(torch.arange(10), fraction)


def test_split_by_position_rejects_too_short():
    with pytest.raises(ValueError, match="too short"):
        split_by_position(torch.arange(5), 0.1)


# -- WindowDataset ------------------------------------------------------------------


def test_window_dataset_sample_and_batches():
    X = torch.arange(30).reshape(10, 3)
    Y = torch.arange(10)
    ds = WindowDataset(X, Y)
    assert len(ds) == ds.num_targets == 10 and ds.block_size == 3
    x, y = ds.sample(7, torch.Generator().manual_seed(0))
    assert x.shape == (7, 3) and y.shape == (7,)
    assert torch.equal(x[:, 0] // 3, y)  # rows stay paired with their targets
    x2, y2 = ds.sample(7, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    seen = torch.cat([y for _, y in ds.batches(4)])
    assert seen.tolist() == list(range(10))
    assert [len(y) for _, y in ds.batches(4)] == [4, 4, 2]


def test_window_dataset_rejects_empty_and_bad_shapes():
    with pytest.raises(ValueError, match="empty"):
        WindowDataset(torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="expected X"):
        WindowDataset(torch.zeros(4, 3, dtype=torch.long), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="expected X"):
        WindowDataset(torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long))


# -- TokenStream --------------------------------------------------------------------


def test_token_stream_sample_shapes_and_alignment():
    ids = torch.arange(50)
    g = torch.Generator().manual_seed(0)
    last = TokenStream(ids, 8, targets="last")
    x, y = last.sample(5, g)
    assert x.shape == (5, 8) and y.shape == (5,)
    assert torch.equal(y, x[:, -1] + 1)  # y is the token right after the window
    assert int(x.max()) <= 48
    every = TokenStream(ids, 8, targets="all")
    x, y = every.sample(5, g)
    assert x.shape == (5, 8) and y.shape == (5, 8)
    assert torch.equal(y, x + 1)  # the target at every position is the next token
    assert int(y.max()) <= 49


def _targets_seen(stream: TokenStream, batch_size: int) -> list[int]:
    """Positions (in ``stream.ids``) of every non-ignored target of one ``batches`` pass."""
    seen = []
    for x, y in stream.batches(batch_size):
        assert x.shape[1] == stream.block_size
        assert x.shape[0] <= batch_size
        y = y.reshape(-1)
        seen.extend(int(t) for t in y[y != IGNORE_INDEX])
    return seen


@pytest.mark.parametrize("T", [1, 3, 8])
@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_token_stream_batches_visit_every_target_once(T, batch_size):
    # every remainder of n mod T: lengths that are and are not multiples of T
    for n in range(T + 1, 4 * T + 3):
        ids = torch.arange(n)  # token value == position, so targets name their positions
        last = TokenStream(ids, T, targets="last")
        seen = _targets_seen(last, batch_size)
        assert sorted(seen) == list(range(T, n)), n
        assert last.num_targets == len(seen)
        every = TokenStream(ids, T, targets="all")
        seen = _targets_seen(every, batch_size)
        assert sorted(seen) == list(range(1, n)), n
        assert every.num_targets == len(seen)


@pytest.mark.parametrize("targets", ["last", "all"])
def test_token_stream_len_is_the_number_of_window_starts(targets):
    """len(stream) windows, one per start 0 .. N - T - 1: sample() draws every one and no other."""
    stream = TokenStream(torch.arange(12), 4, targets=targets)
    assert len(stream) == 12 - 4
    x, _ = stream.sample(2000, torch.Generator().manual_seed(0))
    assert set(x[:, 0].tolist()) == set(range(len(stream)))


def test_token_stream_all_batches_pair_inputs_with_next_tokens():
    ids = torch.arange(21)
    for x, y in TokenStream(ids, 4, targets="all").batches(2):
        keep = y != IGNORE_INDEX
        assert torch.equal(y[keep], (x + 1)[keep])


def test_token_stream_validation():
    with pytest.raises(ValueError, match="longer than block_size"):
        TokenStream(torch.arange(8), 8)
    with pytest.raises(ValueError, match="longer than block_size"):
        TokenStream(torch.arange(20).reshape(2, 10), 3)
    with pytest.raises(ValueError, match="targets must be"):
        TokenStream(torch.arange(20), 3, targets="first")
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        TokenStream(torch.arange(20), 0)
    with pytest.raises(TypeError, match="block_size must be an int"):
        TokenStream(torch.arange(20), 3.0)
