"""The reference runs of chapter 7: the chapter 4 GPT fine-tuned to tell spam from ham.

:func:`spam_data` splits the SMS Spam Collection (:mod:`llmscratch.spam_data`) and
encodes it with a :class:`~llmscratch.classify.ClassifierVocab` built on the training
split; :func:`spam_classifier` trains one :class:`~llmscratch.classify.GPTClassifier`
through the one training loop (:func:`llmscratch.train.train` with
:class:`~llmscratch.classify.ClassificationObjective`) and caches it
(:func:`llmscratch.checkpoint.train_or_load`), so the chapter's comparisons (what to
train, which pooling, pretrained or random weights) are read back, not retrained, and
chapter 8 starts from the same data and model.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from functools import lru_cache

import torch

from ..checkpoint import tensor_fingerprint, train_or_load
from ..classify import (POOLINGS, TRAINABLE, ClassificationDataset, ClassificationObjective, ClassifierVocab,
                        GPTClassifier, set_trainable)
from ..gpt import GPT
from ..spam_data import SpamSplits, spam_splits
from ..train import TrainConfig, train
from ..validate import check_bool, check_choice, check_int
from .pretrain import shakespeare_char_data, shakespeare_char_gpt, shakespeare_gpt_configs

INITS = ("pretrained", "random")


@dataclass
class ClassifierConfig:
    """One classifier of chapter 7.

    Attributes:
        trainable: ``"head"``, ``"last_block"`` or ``"all"`` (:func:`~llmscratch.classify.set_trainable`).
        pooling: ``"last"`` or ``"mean"`` (:class:`~llmscratch.classify.GPTClassifier`).
        init: ``"pretrained"`` (the chapter 4 weights) or ``"random"`` (the same
            architecture initialised as a fresh GPT, seeded ``seed``).
        balanced_loss: weight the cross-entropy by inverse class frequency.
        max_windows: windows of ``block_size`` characters read per message (1: the
            first ``block_size`` characters only; :class:`~llmscratch.classify.ClassificationDataset`).
        seed: seeds the head (and the body when ``init="random"``) and the minibatches.

    Raises:
        TypeError, ValueError: for an unknown choice, a non-bool flag or a negative seed.
    """

    trainable: str = "all"
    pooling: str = "mean"
    init: str = "pretrained"
    balanced_loss: bool = False
    max_windows: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("trainable", self.trainable, TRAINABLE)
        check_choice("pooling", self.pooling, POOLINGS)
        check_choice("init", self.init, INITS)
        check_bool("balanced_loss", self.balanced_loss)
        check_int("max_windows", self.max_windows, minimum=1)
        check_int("seed", self.seed, minimum=0)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def name(self) -> str:
        """A readable cache-entry name, e.g. ``spam-all-last-pretrained-s0``."""
        weighted = "-balanced" if self.balanced_loss else ""
        return f"spam-{self.trainable}-{self.pooling}-{self.init}{weighted}-w{self.max_windows}-s{self.seed}"


def classifier_train_config(seed: int = 0) -> TrainConfig:
    """The optimiser settings of every chapter 7 run (a fresh object each call)."""
    return TrainConfig(max_steps=300, batch_size=32, lr=3e-3, warmup_steps=20, weight_decay=0.1,
                       betas=(0.9, 0.99), grad_clip=1.0, eval_interval=50, eval_batches=8,
                       eval_batch_size=256, seed=seed, num_threads=2)


@dataclass(frozen=True)
class SpamData:
    """The splits, the vocabulary built on the training texts, and one dataset per split."""

    splits: SpamSplits
    vocab: ClassifierVocab
    train: ClassificationDataset
    val: ClassificationDataset
    test: ClassificationDataset
    balanced_test: ClassificationDataset


@lru_cache(maxsize=4)
def spam_data(max_windows: int = 1) -> SpamData:
    """The book's spam data: :func:`~llmscratch.spam_data.spam_splits` (seed 0), a
    :class:`~llmscratch.classify.ClassifierVocab` over the chapter 4 characters and the
    training texts, and texts read as up to ``max_windows`` windows of the chapter 4
    GPT's ``block_size`` characters."""
    splits = spam_splits()
    chars = shakespeare_char_data().vocab
    vocab = ClassifierVocab(chars, list(splits.train["text"]))
    block_size = shakespeare_gpt_configs(chars.vocab_size)[0].block_size  # the chapter 4 GPT's context

    def encode(frame):
        return ClassificationDataset(vocab, list(frame["text"]), list(frame["label"]), block_size=block_size,
                                     max_windows=max_windows)

    return SpamData(splits, vocab, encode(splits.train), encode(splits.val), encode(splits.test),
                    encode(splits.balanced_test))


def spam_classifier(
    config: ClassifierConfig | None = None,
    *,
    train_config: TrainConfig | None = None,
    base: GPT | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[GPTClassifier, dict]:
    """One spam classifier, trained on :func:`spam_data`'s training split (cached).

    Args:
        config: what to train (default: ``ClassifierConfig()``: everything, mean pooling,
            pretrained weights, the first window only).
        train_config: the optimiser (default: :func:`classifier_train_config` with the
            config's seed).
        base: the pretrained GPT (default: the chapter 4 model,
            :func:`~llmscratch.recipes.pretrain.shakespeare_char_gpt`); not modified.
        progress: show a progress bar.
        cache_dir: the checkpoint cache.

    Returns:
        ``(model, meta)``: the model in eval mode; ``meta["measurements"]`` holds the
        :class:`~llmscratch.train.TrainResult` fields (cross-entropy in nats per text,
        ``val["accuracy"]``), ``n_trainable`` and ``n_parameters``.
    """
    config = config if config is not None else ClassifierConfig()
    train_config = train_config if train_config is not None else classifier_train_config(config.seed)
    data = spam_data(config.max_windows)
    base = base if base is not None else shakespeare_char_gpt(progress=progress)[0]
    if config.init == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            base = GPT(base.config)
    model = GPTClassifier(base, 2, pooling=config.pooling, vocab_size=data.vocab.vocab_size, seed=config.seed)
    n_trainable = set_trainable(model, config.trainable)
    counts = torch.bincount(data.train.labels, minlength=2).float()
    weights = (counts.sum() / (2 * counts)).tolist() if config.balanced_loss else None

    def fit(m: GPTClassifier) -> dict:
        result = train(m, ClassificationObjective(weights), data.train, data.val, train_config, progress=progress)
        return {**result.to_dict(), "n_trainable": n_trainable,
                "n_parameters": sum(p.numel() for p in m.parameters())}

    key_parts = {"config": config.to_dict(), "train": train_config.to_dict(),
                 "data": tensor_fingerprint(data.train.X, data.train.labels, data.val.X, data.val.labels),
                 "base_weights": tensor_fingerprint(*base.state_dict().values())}
    model, meta = train_or_load(config.name, model, fit, key_parts, cache_dir=cache_dir,
                                code_roots=("recipes.classify",))
    set_trainable(model, config.trainable)
    model.eval()
    return model, meta
