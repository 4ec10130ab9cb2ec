"""Chapter 9's training runs: a small GPT-2-architecture model on BPE tokens of Tiny Shakespeare.

Chapter 3 asked whether subword tokens pay off for the MLP; chapter 9 asks it of the
transformer. Both runs here see the same text split as chapters 2-4 (the first 90% of
the characters train, the last 10% are held out) and are scored in bits per character
(:func:`llmscratch.bpc.bits_per_character`), the one unit in which a character model and
a BPE model can be compared:

* :func:`bpe_gpt`: GPT-2's byte-level BPE (chapter 3's :class:`~llmscratch.byte_bpe.ByteBPETokenizer`
  trained on the training text only, ``<|endoftext|>`` as its one special token), chapter 4's
  shape (2 blocks, C = 128, 4 heads, 64-token context) with GPT-2's tied head.
* :func:`char_gpt`: chapter 4's character recipe with fewer steps, so that its training
  time matches the BPE run's; chapter 4's full run (:func:`~llmscratch.recipes.pretrain.shakespeare_char_gpt`)
  is the third point.

Both are cached with :func:`llmscratch.checkpoint.train_or_load`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import lru_cache

import torch

from ..byte_bpe import ByteBPETokenizer
from ..checkpoint import tensor_fingerprint, train_or_load
from ..gpt import GPT, GPTConfig
from ..bpc import bits_per_character
from ..objectives import next_token_loss
from ..train import TrainConfig, train
from ..validate import check_bool, check_positive_int
from ..windows import TokenStream
from .pretrain import shakespeare_char_data, shakespeare_gpt_configs

CODE_ROOTS = ("recipes.bpe_gpt",)
BPE_VOCAB_SIZE = 1024  # 767 merges + 256 bytes + <|endoftext|>; 2,048 was worse at the same time
# Step counts sized so that chapter 9 executes cold in about 4 minutes on two cores. A BPE
# step costs more than a character step, by a factor that depends on the processor (1.5 where
# the book was first written, 1.1-1.3 on an AMD EPYC), so the character run gets more steps:
# measured on the EPYC, 900 BPE steps took 76 s and 1,200 character steps 79 s.
BPE_STEPS = 800
CHAR_STEPS = 1100


@dataclass(frozen=True)
class BPEData:
    """Tiny Shakespeare split 90/10 by characters, each part encoded with a BPE learned on the first.

    Attributes:
        tokenizer: the byte-level BPE trained on the training text.
        train_ids, val_ids: ``(N,)`` int64 token ids of the two parts.
        val_chars: the characters spelled by ``val_ids[1:]`` (the first token is only context).
    """

    tokenizer: ByteBPETokenizer
    train_ids: torch.Tensor
    val_ids: torch.Tensor
    val_chars: int


@lru_cache(maxsize=4)
def bpe_data(vocab_size: int = BPE_VOCAB_SIZE) -> BPEData:
    """Train the BPE on the training characters and encode both parts (about 1 s).

    Raises:
        ValueError: if ``vocab_size < 257``.
    """
    check_positive_int("vocab_size", vocab_size)
    chars = shakespeare_char_data()
    n_train = len(chars.train_ids)
    train_text, val_text = chars.text[:n_train], chars.text[n_train:]
    tokenizer = ByteBPETokenizer.train(train_text, vocab_size, special_tokens=("<|endoftext|>",))
    train_ids = torch.tensor(tokenizer.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(tokenizer.encode(val_text), dtype=torch.long)
    val_chars = len(val_text) - len(tokenizer.decode(val_ids[:1].tolist()))
    return BPEData(tokenizer, train_ids, val_ids, val_chars)


def bpe_gpt_configs(vocab_size: int, *, tie_weights: bool = True,
                    max_steps: int = BPE_STEPS) -> tuple[GPTConfig, TrainConfig]:
    """Chapter 4's model and optimiser settings on ``vocab_size`` BPE tokens (fresh objects).

    Raises:
        TypeError, ValueError: for a bad ``vocab_size``, ``tie_weights`` or ``max_steps``.
    """
    check_bool("tie_weights", tie_weights)
    model, optim = shakespeare_gpt_configs(vocab_size)
    return (dataclasses.replace(model, tie_weights=tie_weights),
            dataclasses.replace(optim, max_steps=max_steps, eval_interval=max_steps // 6))


def _fit(model: GPT, train_ids, val_ids, train_config: TrainConfig, val_chars: int, progress):
    T = model.config.block_size
    result = train(model, next_token_loss, TokenStream(train_ids, T, targets="all"),
                   TokenStream(val_ids, T, targets="all"), train_config, progress=progress)
    bpc = bits_per_character(model, val_ids, val_chars, batch_size=train_config.eval_batch_size)
    return {**result.to_dict(), "n_params": model.num_parameters(), "val_bits_per_char": bpc,
            "train_tokens": train_config.max_steps * train_config.batch_size * T}


def _train_bpe(name: str, model_config: GPTConfig, train_config: TrainConfig, data: BPEData, seed: int,
               progress, cache_dir) -> tuple[GPT, dict]:
    torch.manual_seed(seed)
    model = GPT(model_config)
    key_parts = {"model": model_config.to_dict(), "train": train_config.to_dict(), "init_seed": seed,
                 "data": tensor_fingerprint(data.train_ids, data.val_ids)}
    model, meta = train_or_load(
        name, model, lambda m: _fit(m, data.train_ids, data.val_ids, train_config, data.val_chars, progress),
        key_parts, cache_dir=cache_dir, code_roots=CODE_ROOTS)
    return model.eval(), meta


def bpe_gpt(*, vocab_size: int = BPE_VOCAB_SIZE, tie_weights: bool = True, max_steps: int = BPE_STEPS,
            progress: bool | None = None, cache_dir: str | os.PathLike | None = None) -> tuple[GPT, dict]:
    """The small GPT on BPE tokens, trained (``torch.manual_seed(0)``) or loaded from the cache.

    Returns:
        ``(model, meta)``: the model in eval mode and the checkpoint metadata;
        ``meta["measurements"]`` holds the `TrainResult` fields (losses in nats per
        token) plus ``val_bits_per_char``, ``n_params`` and ``train_tokens``.
    """
    data = bpe_data(vocab_size)
    model_config, train_config = bpe_gpt_configs(data.tokenizer.vocab_size, tie_weights=tie_weights,
                                                 max_steps=max_steps)
    return _train_bpe("shakespeare-bpe-gpt", model_config, train_config, data, 0, progress, cache_dir)


TINY_STEPS = 300


def tiny_bpe_gpt(*, tie_weights: bool, seed: int = 0, progress: bool | None = None,
                 cache_dir: str | os.PathLike | None = None) -> tuple[GPT, dict]:
    """A one-block, 64-channel GPT on the same BPE tokens, 300 steps (about 7 s): the
    scale at which chapter 9 measures weight tying, where the ``V * C`` embedding and
    the head of the same size are more than half of the untied model (each 35%). ``seed`` seeds the initialisation and the
    batches.

    Returns:
        ``(model, meta)`` as :func:`bpe_gpt`.
    """
    check_bool("tie_weights", tie_weights)
    data = bpe_data(BPE_VOCAB_SIZE)
    model_config, train_config = bpe_gpt_configs(data.tokenizer.vocab_size, tie_weights=tie_weights,
                                                 max_steps=TINY_STEPS)
    model_config = dataclasses.replace(model_config, n_layer=1, n_embd=64, n_head=2)
    train_config = dataclasses.replace(train_config, seed=seed)
    return _train_bpe("shakespeare-bpe-gpt-tiny", model_config, train_config, data, seed, progress, cache_dir)


def char_gpt(*, max_steps: int = CHAR_STEPS, progress: bool | None = None,
             cache_dir: str | os.PathLike | None = None) -> tuple[GPT, dict]:
    """Chapter 4's character GPT recipe with ``max_steps`` steps (its warm-up and cosine
    schedule compressed to them), trained or loaded; ``meta`` as :func:`bpe_gpt`."""
    chars = shakespeare_char_data()
    model_config, train_config = shakespeare_gpt_configs(chars.vocab.vocab_size)
    train_config = dataclasses.replace(train_config, max_steps=max_steps, eval_interval=max_steps // 6)
    torch.manual_seed(0)
    model = GPT(model_config)
    key_parts = {"model": model_config.to_dict(), "train": train_config.to_dict(), "init_seed": 0,
                 "data": tensor_fingerprint(chars.train_ids, chars.val_ids)}
    model, meta = train_or_load(
        "shakespeare-char-gpt-short", model,
        lambda m: _fit(m, chars.train_ids, chars.val_ids, train_config, len(chars.val_ids) - 1, progress),
        key_parts, cache_dir=cache_dir, code_roots=CODE_ROOTS)
    return model.eval(), meta
