"""Chapter 7: the SMS spam data, its splits, and the GPT classifier."""

import pytest
import torch
import torch.nn.functional as F

from llmscratch.classify import (ClassificationDataset, ClassificationObjective, ClassifierVocab, GPTClassifier,
                                 predict_proba, set_trainable)
from llmscratch.gpt import GPT, GPTConfig
from llmscratch.spam_data import load_sms_spam, majority_baseline, near_duplicate_key, spam_splits
from llmscratch.vocab import CharVocab

BASE = CharVocab(list(" abcdefghijklmnopqrstuvwxyz.!"))


def tiny_gpt(vocab_size=len(BASE.itos), seed=0, block_size=16):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=16))


@pytest.fixture(scope="module")
def splits():
    return spam_splits()


def test_the_corpus_is_deduplicated_and_the_splits_share_no_message(splits):
    frame, n_repeats, n_near = load_sms_spam()
    assert len(frame) + n_repeats + n_near == 5574 and frame["text"].is_unique
    assert (n_repeats, n_near) == (403, 84) and (splits.n_repeats, splits.n_near) == (403, 84)
    keys = frame["text"].map(near_duplicate_key)
    assert keys.is_unique
    parts = {"train": splits.train, "val": splits.val, "test": splits.test}
    texts = {name: set(p["text"]) for name, p in parts.items()}
    assert sum(map(len, texts.values())) == len(frame)  # a partition of the distinct texts
    assert not texts["train"] & texts["val"] and not texts["train"] & texts["test"]
    assert not texts["val"] & texts["test"]
    assert set(splits.balanced_test["text"]) <= texts["test"]
    # no near copy either: no two parts share a message's letters
    key_sets = {name: set(p["text"].map(near_duplicate_key)) for name, p in parts.items()}
    assert not key_sets["train"] & key_sets["val"] and not key_sets["train"] & key_sets["test"]
    assert not key_sets["val"] & key_sets["test"]


def test_near_duplicate_key_ignores_case_digits_spacing_and_punctuation():
    advert = "Win the newest \u201cHarry Potter\u201d! Call 09061 now, only \u00a31.50"
    assert near_duplicate_key(advert) == near_duplicate_key('WIN the newest "Harry Potter"! Call 0800 now, only 2.00')
    assert near_duplicate_key("Ok...") == near_duplicate_key("ok") == "ok"
    assert near_duplicate_key(":-)") == ":-)" and near_duplicate_key(":)") != near_duplicate_key(":-)")
    assert near_duplicate_key("Ok lar") != near_duplicate_key("Ok later")
    with pytest.raises(TypeError, match="text"):
        near_duplicate_key(3)


def test_splits_are_stratified_seeded_and_the_balanced_test_is_balanced(splits):
    shares = [p["label"].mean() for p in (splits.train, splits.val, splits.test)]
    assert max(shares) - min(shares) < 0.01
    assert splits.balanced_test["label"].sum() * 2 == len(splits.balanced_test)
    assert splits.balanced_test["label"].sum() == splits.test["label"].sum()
    again = spam_splits()
    assert again.test.equals(splits.test) and again.balanced_test.equals(splits.balanced_test)
    assert not spam_splits(seed=1).test.equals(splits.test)
    assert (majority_baseline(splits.train, splits.test) == 0).all()
    with pytest.raises(ValueError, match="test_fraction"):
        spam_splits(test_fraction=0.6)


def test_vocab_keeps_old_ids_adds_frequent_characters_and_maps_the_rest_to_unknown():
    vocab = ClassifierVocab(BASE, ["call 0800 now", "win 0800 £", "0"], min_count=2)
    assert vocab.added_chars == "08"  # '0' 5 times, '8' twice; '£' once stays unknown
    assert vocab.encode("ab") == BASE.encode("ab")
    assert vocab.encode("0£") == [len(BASE.itos), vocab.unk_id]
    assert vocab.vocab_size == len(BASE.itos) + 3 and vocab.pad_id == vocab.unk_id
    assert vocab.unknown_share(["£a"]) == 0.5
    with pytest.raises(TypeError, match="texts"):
        ClassifierVocab(BASE, "a text, not a list")


def test_dataset_truncates_pads_and_cuts_batches_to_the_longest_text():
    vocab = ClassifierVocab(BASE, ["hello"])
    ds = ClassificationDataset(vocab, ["hi", "a much longer text here"], [0, 1], block_size=8)
    assert ds.truncated == 1 and ds.lengths.tolist() == [2, 8] and ds.X.shape == (2, 8)
    assert (ds.X[0, 2:] == vocab.pad_id).all()
    x, lengths, owner, y = next(ds.batches(1))
    assert x.shape == (1, 2) and y.tolist() == [0] and owner.tolist() == [0]
    windows = ClassificationDataset(vocab, ["hi", "a much longer text here"], [0, 1], block_size=8, max_windows=2)
    assert windows.truncated == 1 and windows.lengths.tolist() == [2, 8, 8] and len(windows) == 2
    x, lengths, owner, y = next(windows.batches(2))
    assert x.shape == (3, 8) and owner.tolist() == [0, 1, 1] and y.tolist() == [0, 1]
    assert vocab.encode("a much longer te") == x[1:].flatten().tolist()  # the first 16 characters
    with pytest.raises(ValueError, match="equally long"):
        ClassificationDataset(vocab, ["a"], [0, 1], block_size=8)
    with pytest.raises(ValueError, match="empty"):
        ClassificationDataset(vocab, [""], [0], block_size=8)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_pooling_ignores_padding_and_matches_a_direct_computation(pooling):
    gpt = tiny_gpt()
    model = GPTClassifier(gpt, 2, pooling=pooling, vocab_size=gpt.config.vocab_size + 2).eval()
    ids = torch.randint(0, gpt.config.vocab_size, (3, 10))
    lengths = torch.tensor([10, 4, 1])
    out = model(ids, lengths)
    for b in range(3):  # each text alone, unpadded
        per_position = model.gpt(ids[b : b + 1, : lengths[b]])[0][0]  # (L, 2)
        want = per_position[-1] if pooling == "last" else per_position.mean(0)
        torch.testing.assert_close(out[b], want)
    noisy = ids.clone()
    noisy[1, 4:] = 0  # different padding, same text
    torch.testing.assert_close(model(noisy, lengths)[1], out[1])
    with pytest.raises(ValueError, match="lengths"):
        model(ids, torch.tensor([11, 1, 1]))


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_windows_pool_as_documented(pooling):
    gpt = tiny_gpt(block_size=8)
    model = GPTClassifier(gpt, 2, pooling=pooling).eval()
    ids = torch.randint(0, gpt.config.vocab_size, (3, 8))
    lengths, owner = torch.tensor([8, 3, 5]), torch.tensor([0, 0, 1])  # text 0: two windows
    out = model(ids, lengths, owner)
    per = [model.gpt(ids[w : w + 1, : lengths[w]])[0][0] for w in range(3)]  # (L_w, 2) each
    if pooling == "last":
        want0 = (per[0][-1] + per[1][-1]) / 2
    else:
        want0 = torch.cat([per[0], per[1]]).mean(0)  # every real position of both windows
    torch.testing.assert_close(out[0], want0)
    torch.testing.assert_close(out[1], per[2][-1] if pooling == "last" else per[2].mean(0))
    with pytest.raises(ValueError, match="owner"):
        model(ids, lengths, torch.tensor([0, 2, 2]))


def test_classifier_copies_the_gpt_and_set_trainable_counts_parameters():
    gpt = tiny_gpt()
    before = {k: v.clone() for k, v in gpt.state_dict().items()}
    model = GPTClassifier(gpt, 2)
    assert all(torch.equal(before[k], v) for k, v in gpt.state_dict().items())  # caller's model untouched
    head = 16 * 2 + 2
    assert set_trainable(model, "head") == head
    block = sum(p.numel() for p in model.gpt.transformer.h[1].parameters())
    ln_f = sum(p.numel() for p in model.gpt.transformer.ln_f.parameters())
    assert set_trainable(model, "last_block") == head + block + ln_f
    assert set_trainable(model, "all") == sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match="which"):
        set_trainable(model, "embeddings")


def test_objective_is_cross_entropy_weighted_as_torch_and_predict_proba_sums_to_one():
    vocab = ClassifierVocab(BASE, [])
    model = GPTClassifier(tiny_gpt(), 2, vocab_size=vocab.vocab_size).eval()
    ds = ClassificationDataset(vocab, ["spam spam", "hello", "win now!"], [1, 0, 1], block_size=16)
    batch = next(ds.batches(3))
    logits = model(batch[0], batch[1])
    loss, metrics = ClassificationObjective()(model, batch)
    torch.testing.assert_close(loss, F.cross_entropy(logits, batch[3]))
    weighted, _ = ClassificationObjective((1.0, 3.0))(model, batch)
    ce = F.cross_entropy(logits, batch[3], reduction="none")
    torch.testing.assert_close(weighted, (ce * torch.tensor([3.0, 1.0, 3.0])).sum() / 7.0)
    assert metrics["count"] == 3 and metrics["tokens"] == 9 + 5 + 8
    probs = predict_proba(model, ds)
    assert probs.shape == (3, 2)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))
    with pytest.raises(ValueError, match="class_weights"):
        ClassificationObjective((1.0, -1.0))
