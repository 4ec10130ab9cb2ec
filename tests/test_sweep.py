"""Bad input, everywhere: a table-driven sweep of the package's public callables.

Every public function and constructor checks its arguments through
:mod:`llmscratch.validate`: a value of the wrong type raises ``TypeError``, a value of
the right type out of range raises ``ValueError``, and the message names the argument.
Where the contract says so (a model whose logits are not finite), ``FloatingPointError``.
Never a raw ``IndexError`` / ``RuntimeError`` from deep inside torch, never a silent
wrong answer.

Two tables:

* ``BAD``: ``(id, thunk, expected exception type, substring of the message)``. The id
  is ``"<module>: <what>"``; the substring is usually the argument's name.
* ``GOOD``: ``(id, thunk)``: valid edge cases that must be accepted (empty text where
  allowed, tensors instead of lists, ints where floats are allowed...); a thunk may
  assert on the result.

Thunks build their tiny objects lazily (cached builders below), so collecting the
module costs nothing and the whole sweep runs in a few seconds. The cases per module::

    .venv/bin/python tests/test_sweep.py          # prints the counts by module
"""

from __future__ import annotations

import functools
import math
import random
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # helpers, when run as a script

import llmscratch.validate as validate  # noqa: E402
from helpers import assistant_tokenizer, tiny_gpt  # noqa: E402
from llmscratch import (attention, bigram, bpe, byte_bpe, chat, checkpoint, data, download,  # noqa: E402
                        dpo, evaluation, gpt, grading, hf_gpt2, lm, mlp, objectives, positional, sampling,
                        sft, sources, task_data, tasks, train, vocab, windows)

inf, nan = math.inf, math.nan
T = torch.tensor

# -- tiny objects, built on first use -------------------------------------------------------


@functools.cache
def _gpt(V: int = 7) -> gpt.GPT:
    torch.manual_seed(0)
    return gpt.GPT(gpt.GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8))


@functools.cache
def _mlp() -> mlp.MLPLanguageModel:
    torch.manual_seed(0)
    return mlp.MLPLanguageModel(mlp.MLPConfig(vocab_size=5, block_size=3, n_embd=2, n_hidden=4))


@functools.cache
def _bigram() -> bigram.BigramLM:
    return bigram.BigramLM(bigram.BigramConfig(vocab_size=5))


@functools.cache
def _tok():
    return assistant_tokenizer()


@functools.cache
def _assistant_gpt() -> gpt.GPT:
    return tiny_gpt(_tok().vocab_size)


@functools.cache
def _words() -> tasks.TaskWords:
    return tasks.TaskWords(("king", "love", "sword"), ("queen",))


@functools.cache
def _vocab() -> vocab.CharVocab:
    return vocab.CharVocab("abc")


@functools.cache
def _bpe() -> bpe.CharBPETokenizer:
    return bpe.CharBPETokenizer.train("hello world", 12)


@functools.cache
def _byte_ranks() -> dict[bytes, int]:
    return {bytes([i]): i for i in range(256)}


@functools.cache
def _bbpe() -> byte_bpe.ByteBPETokenizer:
    return byte_bpe.ByteBPETokenizer.train("hello world", 260)


@functools.cache
def _stream() -> windows.TokenStream:
    return windows.TokenStream(torch.arange(20) % 5, 3)


@functools.cache
def _window_set() -> windows.WindowDataset:
    return windows.WindowDataset(*windows.name_windows([[1, 2], [3]], 3))


def _cfg(**changes) -> train.TrainConfig:
    return train.TrainConfig(**{"max_steps": 2, "batch_size": 4, "eval_batches": 1, **changes})


@functools.cache
def _sft_set() -> sft.SFTDataset:
    tok = _tok()
    return sft.SFTDataset([tok.render("Hi", "Good morrow.")], pad_id=tok.pad_id)


def _rendered(mask=None, ids=None):
    ids = T([1, 2, 3, 4]) if ids is None else ids
    mask = T([False, False, True, True]) if mask is None else mask
    return [(ids, mask)]


@functools.cache
def _pairs() -> list[tasks.PreferencePair]:
    return task_data.make_preference_pairs(2, _words(), kinds=("correct_vs_incorrect",))


@functools.cache
def _pref_set() -> dpo.PreferenceDataset:
    return dpo.PreferenceDataset(_tok(), _pairs())


@functools.cache
def _reference() -> torch.nn.Module:
    return dpo.frozen_reference(_assistant_gpt())


@functools.cache
def _prompts() -> list[tasks.Prompt]:
    return [tasks.Prompt("add", "What is 1 plus 2?", "3")]


@functools.cache
def _generations() -> list[evaluation.Generation]:
    p = _prompts()[0]
    return [evaluation.Generation(p, "Gladly: 3.", True, 4, grading.grade(p, "Gladly: 3."))]


def _dpo_ids(T_: int = 4, B: int = 2):
    ids = torch.zeros(B, T_, dtype=torch.long)
    mask = torch.zeros(B, T_, dtype=torch.bool)
    mask[:, 1:] = True
    return ids, mask


class _ConstantLM(lm.LanguageModel):
    """A sequence model whose every logit is ``value``: NaN, +inf, or -inf (no token possible)."""

    def __init__(self, value: float, V: int = 5) -> None:
        super().__init__()
        self.config = gpt.GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=1, n_embd=4)
        self.value = value

    def forward(self, idx, targets=None):
        self.check_inputs(idx, targets)
        return torch.full((*idx.shape, self.config.vocab_size), self.value), None


def _hf_config(**changes) -> dict:
    return {"vocab_size": 7, "n_positions": 8, "n_layer": 1, "n_head": 2, "n_embd": 8, **changes}


def _hf_state() -> dict[str, torch.Tensor]:
    """The HF-layout state dict of :func:`_gpt` (Conv1D weights transposed back)."""
    out = {}
    for k, v in _gpt().state_dict().items():
        if k == "lm_head.weight":
            continue
        key = k.removeprefix("transformer.")
        out[key] = v.t() if k.endswith(hf_gpt2.CONV1D) else v
    return out


def _tiny_gpt_config(**changes) -> gpt.GPTConfig:
    return gpt.GPTConfig(**{"vocab_size": 7, "block_size": 8, "n_layer": 1, "n_head": 2, "n_embd": 8, **changes})


def _frozen_mlp():
    m = mlp.MLPLanguageModel(mlp.MLPConfig(vocab_size=5))
    return m.requires_grad_(False)


# -- the table of bad input ------------------------------------------------------------------

TE, VE, FPE = TypeError, ValueError, FloatingPointError

BAD: list[tuple[str, object, type, str]] = [
    # validate: the checks themselves
    ("validate: check_int float", lambda: validate.check_int("n", 3.0), TE, "n must be an int"),
    ("validate: check_int bool", lambda: validate.check_int("n", True), TE, "n must be an int"),
    ("validate: check_int below minimum", lambda: validate.check_int("n", 0, minimum=1), VE, "n must be >= 1"),
    ("validate: check_int above maximum", lambda: validate.check_int("n", 3, maximum=2), VE, "n must be <= 2"),
    ("validate: check_float nan", lambda: validate.check_float("lr", nan), VE, "lr must be a finite"),
    ("validate: check_float inf", lambda: validate.check_float("lr", inf), VE, "lr must be a finite"),
    ("validate: check_float str", lambda: validate.check_float("lr", "1e-3"), TE, "lr must be a number"),
    ("validate: check_float above max", lambda: validate.check_float("p", 1.5, maximum=1.0), VE, "p must be in"),
    ("validate: check_bool int", lambda: validate.check_bool("flag", 1), TE, "flag must be a bool"),
    ("validate: check_choice unknown", lambda: validate.check_choice("mode", "x", ("a", "b")), VE, "mode"),
    ("validate: check_token_ids list", lambda: validate.check_token_ids("idx", [1], 5), TE, "idx"),
    ("validate: check_token_ids float", lambda: validate.check_token_ids("idx", T([1.0]), 5), TE, "idx"),
    ("validate: check_token_ids id = V", lambda: validate.check_token_ids("idx", T([5]), 5), VE, "idx"),
    ("validate: check_token_ids ndim", lambda: validate.check_token_ids("idx", T([1]), 5, ndim=2), VE, "idx"),
    ("validate: check_id_list float", lambda: validate.check_id_list("ids", [1.5]), TE, "ids[0]"),
    ("validate: check_id_list bool", lambda: validate.check_id_list("ids", [0, True]), TE, "ids[1]"),
    ("validate: check_id_list str", lambda: validate.check_id_list("ids", "ab"), TE, "ids"),
    ("validate: check_id_list float tensor", lambda: validate.check_id_list("ids", T([1.0])), TE, "ids"),
    ("validate: check_id_list 2-D tensor", lambda: validate.check_id_list("ids", T([[1]])), VE, "ids"),
    ("validate: check_id_list id = V", lambda: validate.check_id_list("ids", [0, 5], 5), VE, "ids"),
    ("validate: check_id_list negative", lambda: validate.check_id_list("ids", [-1]), VE, "ids"),
    ("validate: check_float_tensor list", lambda: validate.check_float_tensor("x", [1.0]), TE, "x"),
    ("validate: check_float_tensor int", lambda: validate.check_float_tensor("x", T([1])), TE, "x"),
    # bigram
    ("bigram: vocab_size=0", lambda: bigram.BigramConfig(vocab_size=0), VE, "vocab_size"),
    ("bigram: vocab_size float", lambda: bigram.BigramConfig(vocab_size=5.0), TE, "vocab_size"),
    ("bigram: alpha negative", lambda: bigram.BigramConfig(5, alpha=-1.0), VE, "alpha"),
    ("bigram: alpha nan", lambda: bigram.BigramConfig(5, alpha=nan), VE, "alpha"),
    ("bigram: alpha inf", lambda: bigram.BigramConfig(5, alpha=inf), VE, "alpha"),
    ("bigram: alpha str", lambda: bigram.BigramConfig(5, alpha="1"), TE, "alpha"),
    ("bigram: block_size=2", lambda: bigram.BigramConfig(5, block_size=2), VE, "block_size"),
    ("bigram: config not a BigramConfig", lambda: bigram.BigramLM({"vocab_size": 5}), TE, "config"),
    ("bigram: fit negative id", lambda: _bigram().fit(T([-1]), T([0])), VE, "prev"),
    ("bigram: fit id = V", lambda: _bigram().fit(T([0]), T([5])), VE, "nxt"),
    ("bigram: fit float ids", lambda: _bigram().fit(T([0.0]), T([1])), TE, "prev"),
    ("bigram: fit list", lambda: _bigram().fit([0], T([1])), TE, "prev"),
    ("bigram: fit shapes differ", lambda: _bigram().fit(T([0, 1]), T([1])), VE, "prev and nxt"),
    ("bigram: forward id = V", lambda: _bigram()(T([[7]])), VE, "idx"),
    ("bigram: forward negative id", lambda: _bigram()(T([[-1]])), VE, "idx"),
    ("bigram: forward T=2", lambda: _bigram()(T([[0, 1]])), VE, "block_size"),
    ("bigram: forward float", lambda: _bigram()(T([[0.0]])), TE, "idx"),
    ("bigram: forward targets id", lambda: _bigram()(T([[0]]), T([9])), VE, "targets"),
    ("bigram: forward targets shape", lambda: _bigram()(T([[0]]), T([[1]])), VE, "targets"),
    # mlp
    ("mlp: vocab_size=0", lambda: mlp.MLPConfig(vocab_size=0), VE, "vocab_size"),
    ("mlp: n_embd float", lambda: mlp.MLPConfig(5, n_embd=2.5), TE, "n_embd"),
    ("mlp: n_hidden negative", lambda: mlp.MLPConfig(5, n_hidden=-1), VE, "n_hidden"),
    ("mlp: block_size bool", lambda: mlp.MLPConfig(5, block_size=True), TE, "block_size"),
    ("mlp: activation unknown", lambda: mlp.MLPConfig(5, activation="sigmoid"), VE, "activation"),
    ("mlp: dropout=1", lambda: mlp.MLPConfig(5, dropout=1.0), VE, "dropout"),
    ("mlp: dropout nan", lambda: mlp.MLPConfig(5, dropout=nan), VE, "dropout"),
    ("mlp: dropout bool", lambda: mlp.MLPConfig(5, dropout=True), TE, "dropout"),
    ("mlp: config not an MLPConfig", lambda: mlp.MLPLanguageModel(_tiny_gpt_config()), TE, "config"),
    ("mlp: forward id = V", lambda: _mlp()(T([[0, 1, 7]])), VE, "idx"),
    ("mlp: forward negative id", lambda: _mlp()(T([[0, -1, 1]])), VE, "idx"),
    ("mlp: forward wrong T", lambda: _mlp()(T([[0, 1]])), VE, "block_size"),
    ("mlp: forward 1-D", lambda: _mlp()(T([0, 1, 2])), VE, "idx"),
    ("mlp: forward int32", lambda: _mlp()(T([[0, 1, 2]], dtype=torch.int32)), TE, "idx"),
    ("mlp: forward targets shape", lambda: _mlp()(T([[0, 1, 2]]), T([[1, 2, 3]])), VE, "targets"),
    ("mlp: forward targets float", lambda: _mlp()(T([[0, 1, 2]]), T([1.0])), TE, "targets"),
    # gpt
    ("gpt: vocab_size=0", lambda: _tiny_gpt_config(vocab_size=0), VE, "vocab_size"),
    ("gpt: block_size float", lambda: _tiny_gpt_config(block_size=1.5), TE, "block_size"),
    ("gpt: n_layer=0", lambda: _tiny_gpt_config(n_layer=0), VE, "n_layer"),
    ("gpt: n_head does not divide", lambda: _tiny_gpt_config(n_head=3), VE, "n_head"),
    ("gpt: n_embd str", lambda: _tiny_gpt_config(n_embd="8"), TE, "n_embd"),
    ("gpt: dropout negative", lambda: _tiny_gpt_config(dropout=-0.1), VE, "dropout"),
    ("gpt: dropout inf", lambda: _tiny_gpt_config(dropout=inf), VE, "dropout"),
    ("gpt: bias int", lambda: _tiny_gpt_config(bias=1), TE, "bias"),
    ("gpt: norm_position unknown", lambda: _tiny_gpt_config(norm_position="mid"), VE, "norm_position"),
    ("gpt: pos_encoding unknown", lambda: _tiny_gpt_config(pos_encoding="rope"), VE, "pos_encoding"),
    ("gpt: use_fused_attention str", lambda: _tiny_gpt_config(use_fused_attention="yes"), TE,
     "use_fused_attention"),
    ("gpt: tie_weights None", lambda: _tiny_gpt_config(tie_weights=None), TE, "tie_weights"),
    ("gpt: from_dict unknown key", lambda: gpt.GPTConfig.from_dict({**_tiny_gpt_config().to_dict(), "foo": 1}),
     VE, "foo"),
    ("gpt: from_dict list", lambda: gpt.GPTConfig.from_dict([("vocab_size", 7)]), TE, "d must"),
    ("gpt: GPT of a dict", lambda: gpt.GPT(_tiny_gpt_config().to_dict()), TE, "config"),
    ("gpt: forward T > block_size", lambda: _gpt()(torch.zeros(1, 9, dtype=torch.long)), VE, "block_size"),
    ("gpt: forward id = V", lambda: _gpt()(T([[0, 7]])), VE, "idx"),
    ("gpt: forward negative id", lambda: _gpt()(T([[-1]])), VE, "idx"),
    ("gpt: forward int32", lambda: _gpt()(T([[0]], dtype=torch.int32)), TE, "idx"),
    ("gpt: forward float", lambda: _gpt()(T([[0.0]])), TE, "idx"),
    ("gpt: forward T=0", lambda: _gpt()(torch.zeros(1, 0, dtype=torch.long)), VE, "idx"),
    ("gpt: forward list", lambda: _gpt()([[0, 1]]), TE, "idx"),
    ("gpt: targets shape", lambda: _gpt()(T([[0, 1]]), T([1])), VE, "targets"),
    ("gpt: targets float", lambda: _gpt()(T([[0, 1]]), T([[1.0, 2.0]])), TE, "targets"),
    ("gpt: targets id = V", lambda: _gpt()(T([[0, 1]]), T([[1, 7]])), VE, "targets"),
    ("gpt: attention_maps id = V", lambda: _gpt().attention_maps(T([[9]])), VE, "idx"),
    ("gpt: residual_stream float", lambda: _gpt().residual_stream(T([[0.5]])), TE, "idx"),
    ("gpt: num_parameters int flag", lambda: _gpt().num_parameters(1), TE, "exclude_embeddings"),
    # lm
    ("lm: context pad_id = V", lambda: _mlp().context(T([[1]]), pad_id=5), VE, "pad_id"),
    ("lm: context pad_id float", lambda: _mlp().context(T([[1]]), pad_id=0.0), TE, "pad_id"),
    ("lm: context short, no pad_id", lambda: _mlp().context(T([[1]])), VE, "pad_id"),
    ("lm: context float idx", lambda: _gpt().context(T([[0.0]])), TE, "idx"),
    ("lm: context 1-D idx", lambda: _gpt().context(T([0])), VE, "idx"),
    ("lm: next_token_logits id = V", lambda: _gpt().next_token_logits(T([[7]])), VE, "idx"),
    # attention
    ("attention: causal_mask T=0", lambda: attention.causal_mask(0), VE, "T must be"),
    ("attention: causal_mask T float", lambda: attention.causal_mask(2.5), TE, "T must be"),
    ("attention: causal_mask T bool", lambda: attention.causal_mask(True), TE, "T must be"),
    ("attention: sdpa q list", lambda: attention.scaled_dot_product_attention([[1.0]], torch.ones(1, 1),
                                                                               torch.ones(1, 1)), TE, "q"),
    ("attention: sdpa k int", lambda: attention.scaled_dot_product_attention(
        torch.ones(2, 4), torch.ones(2, 4, dtype=torch.long), torch.ones(2, 4)), TE, "k must"),
    ("attention: sdpa v 1-D", lambda: attention.scaled_dot_product_attention(
        torch.ones(2, 4), torch.ones(2, 4), torch.ones(4)), VE, "v must"),
    ("attention: sdpa head sizes", lambda: attention.scaled_dot_product_attention(
        torch.ones(2, 4), torch.ones(2, 3), torch.ones(2, 4)), VE, "head size"),
    ("attention: sdpa k/v lengths", lambda: attention.scaled_dot_product_attention(
        torch.ones(2, 4), torch.ones(2, 4), torch.ones(3, 4)), VE, "same length"),
    ("attention: sdpa dropout_p=1", lambda: attention.scaled_dot_product_attention(
        torch.ones(2, 4), torch.ones(2, 4), torch.ones(2, 4), dropout_p=1.0), VE, "dropout_p"),
    ("attention: sdpa dropout_p nan", lambda: attention.scaled_dot_product_attention(
        torch.ones(2, 4), torch.ones(2, 4), torch.ones(2, 4), dropout_p=nan), VE, "dropout_p"),
    ("attention: sdpa dropout_p str", lambda: attention.scaled_dot_product_attention(
        torch.ones(2, 4), torch.ones(2, 4), torch.ones(2, 4), dropout_p="0"), TE, "dropout_p"),
    ("attention: sdpa mask int", lambda: attention.scaled_dot_product_attention(
        torch.ones(2, 4), torch.ones(2, 4), torch.ones(2, 4), mask=torch.ones(2, 2, dtype=torch.long)), TE,
     "mask"),
    ("attention: sdpa mask list", lambda: attention.scaled_dot_product_attention(
        torch.ones(2, 4), torch.ones(2, 4), torch.ones(2, 4), mask=[[True]]), TE, "mask"),
    ("attention: sdpa causal int", lambda: attention.scaled_dot_product_attention(
        torch.ones(2, 4), torch.ones(2, 4), torch.ones(2, 4), causal=1), TE, "causal"),
    ("attention: sdpa causal Tq != Tk", lambda: attention.scaled_dot_product_attention(
        torch.ones(2, 4), torch.ones(3, 4), torch.ones(3, 4), causal=True), VE, "Tq=2, Tk=3"),
    ("attention: sdpa generator", lambda: attention.scaled_dot_product_attention(
        torch.ones(2, 4), torch.ones(2, 4), torch.ones(2, 4), generator=0), TE, "generator"),
    ("attention: CSA n_head does not divide", lambda: attention.CausalSelfAttention(10, 3), VE, "n_head=3"),
    ("attention: CSA n_embd=0", lambda: attention.CausalSelfAttention(0, 1), VE, "n_embd"),
    ("attention: CSA n_embd float", lambda: attention.CausalSelfAttention(8.0, 2), TE, "n_embd"),
    ("attention: CSA n_head=0", lambda: attention.CausalSelfAttention(8, 0), VE, "n_head"),
    ("attention: CSA dropout 1.5", lambda: attention.CausalSelfAttention(8, 2, dropout=1.5), VE, "dropout"),
    ("attention: CSA dropout nan", lambda: attention.CausalSelfAttention(8, 2, dropout=nan), VE, "dropout"),
    ("attention: CSA bias str", lambda: attention.CausalSelfAttention(8, 2, bias="no"), TE, "bias"),
    ("attention: CSA use_fused int", lambda: attention.CausalSelfAttention(8, 2, use_fused=1), TE, "use_fused"),
    ("attention: CSA forward wrong width", lambda: attention.CausalSelfAttention(8, 2)(torch.ones(1, 2, 4)), VE,
     "x must"),
    ("attention: CSA forward int", lambda: attention.CausalSelfAttention(8, 2)(torch.ones(1, 2, 8,
                                                                                       dtype=torch.long)),
     TE, "x must"),
    # positional
    ("positional: sinusoidal T=0", lambda: positional.sinusoidal_positions(0, 4), VE, "T must"),
    ("positional: sinusoidal d_model float", lambda: positional.sinusoidal_positions(4, 2.0), TE, "d_model"),
    ("positional: sinusoidal base=0", lambda: positional.sinusoidal_positions(4, 4, base=0), VE, "base"),
    ("positional: sinusoidal base nan", lambda: positional.sinusoidal_positions(4, 4, base=nan), VE, "base"),
    ("positional: sinusoidal base str", lambda: positional.sinusoidal_positions(4, 4, base="1e4"), TE, "base"),
    ("positional: sinusoidal int dtype", lambda: positional.sinusoidal_positions(4, 4, dtype=torch.int64), TE,
     "dtype"),
    ("positional: rope odd head size", lambda: positional.apply_rope(torch.ones(2, 3)), VE, "head size"),
    ("positional: rope base negative", lambda: positional.apply_rope(torch.ones(2, 4), base=-1.0), VE, "base"),
    ("positional: rope base inf", lambda: positional.apply_rope(torch.ones(2, 4), base=inf), VE, "base"),
    ("positional: rope int x", lambda: positional.apply_rope(torch.ones(2, 4, dtype=torch.long)), TE, "x must"),
    ("positional: rope 1-D x", lambda: positional.apply_rope(torch.ones(4)), VE, "x must"),
    ("positional: rope float positions", lambda: positional.apply_rope(torch.ones(2, 4), positions=T([0.0, 1.0])),
     TE, "positions"),
    ("positional: rope positions shape", lambda: positional.apply_rope(torch.ones(2, 4), positions=T([0, 1, 2])),
     VE, "positions"),
    ("positional: alibi_slopes n_head=0", lambda: positional.alibi_slopes(0), VE, "n_head"),
    ("positional: alibi_slopes n_head float", lambda: positional.alibi_slopes(2.0), TE, "n_head"),
    ("positional: alibi_bias T=0", lambda: positional.alibi_bias(4, 0), VE, "T must"),
    ("positional: alibi_bias n_head bool", lambda: positional.alibi_bias(True, 4), TE, "n_head"),
    # sampling
    ("sampling: filter_logits list", lambda: sampling.filter_logits([[1.0, 2.0]]), TE, "logits"),
    ("sampling: filter_logits 1-D", lambda: sampling.filter_logits(T([1.0, 2.0])), VE, "logits"),
    ("sampling: filter_logits int", lambda: sampling.filter_logits(T([[1, 2]])), TE, "logits"),
    ("sampling: temperature=0", lambda: sampling.filter_logits(torch.ones(1, 3), temperature=0.0), VE,
     "temperature"),
    ("sampling: temperature inf", lambda: sampling.filter_logits(torch.ones(1, 3), temperature=inf), VE,
     "temperature"),
    ("sampling: temperature str", lambda: sampling.filter_logits(torch.ones(1, 3), temperature="1"), TE,
     "temperature"),
    ("sampling: top_k=0", lambda: sampling.filter_logits(torch.ones(1, 3), top_k=0), VE, "top_k"),
    ("sampling: top_k float", lambda: sampling.filter_logits(torch.ones(1, 3), top_k=2.0), TE, "top_k"),
    ("sampling: top_p=0", lambda: sampling.filter_logits(torch.ones(1, 3), top_p=0.0), VE, "top_p"),
    ("sampling: top_p 1.5", lambda: sampling.filter_logits(torch.ones(1, 3), top_p=1.5), VE, "top_p"),
    ("sampling: top_p nan", lambda: sampling.filter_logits(torch.ones(1, 3), top_p=nan), VE, "top_p"),
    ("sampling: generate not a model", lambda: sampling.generate(torch.nn.Linear(2, 2), T([[0]]), 1), TE, "model"),
    ("sampling: generate idx list", lambda: sampling.generate(_gpt(), [[0]], 1), TE, "idx"),
    ("sampling: generate idx id = V", lambda: sampling.generate(_gpt(), T([[7]]), 1), VE, "idx"),
    ("sampling: generate idx 1-D", lambda: sampling.generate(_gpt(), T([0]), 1), VE, "idx"),
    ("sampling: generate empty prompt", lambda: sampling.generate(_gpt(), torch.zeros(1, 0, dtype=torch.long), 1),
     VE, "idx"),
    ("sampling: max_new_tokens=-1", lambda: sampling.generate(_gpt(), T([[0]]), -1), VE, "max_new_tokens"),
    ("sampling: max_new_tokens float", lambda: sampling.generate(_gpt(), T([[0]]), 2.5), TE, "max_new_tokens"),
    ("sampling: greedy int", lambda: sampling.generate(_gpt(), T([[0]]), 1, greedy=1), TE, "greedy"),
    ("sampling: generate temperature=0", lambda: sampling.generate(_gpt(), T([[0]]), 1, temperature=0), VE,
     "temperature"),
    ("sampling: generate top_k=0", lambda: sampling.generate(_gpt(), T([[0]]), 1, top_k=0), VE, "top_k"),
    ("sampling: stop_id = V", lambda: sampling.generate(_gpt(), T([[0]]), 1, stop_id=7), VE, "stop_id"),
    ("sampling: stop_id float", lambda: sampling.generate(_gpt(), T([[0]]), 1, stop_id=1.0), TE, "stop_id"),
    ("sampling: pad_id negative", lambda: sampling.generate(_mlp(), T([[0]]), 1, pad_id=-1), VE, "pad_id"),
    ("sampling: short prompt, no pad_id", lambda: sampling.generate(_mlp(), T([[0]]), 1), VE, "pad_id"),
    ("sampling: generator int", lambda: sampling.generate(_gpt(), T([[0]]), 1, generator=0), TE, "generator"),
    ("sampling: NaN logits", lambda: sampling.generate(_ConstantLM(nan), T([[0]]), 2), FPE, "logits"),
    ("sampling: NaN logits, greedy", lambda: sampling.generate(_ConstantLM(nan), T([[0]]), 2, greedy=True), FPE,
     "logits"),
    ("sampling: +inf logits", lambda: sampling.generate(_ConstantLM(inf), T([[0]]), 2), FPE, "logits"),
    ("sampling: all -inf logits", lambda: sampling.generate(_ConstantLM(-inf), T([[0]]), 2, greedy=True), FPE,
     "logits"),
    ("sampling: temperature underflow", lambda: sampling.generate(_ConstantLM(1.0), T([[0]]), 1,
                                                                  temperature=1e-310), FPE, "temperature"),
    # objectives
    ("objectives: batch a tensor", lambda: objectives.next_token_loss(_gpt(), T([[0, 1]])), TE, "batch"),
    ("objectives: batch of three", lambda: objectives.next_token_loss(_gpt(), (T([[0]]), T([[1]]), None)), TE,
     "batch"),
    ("objectives: targets a list", lambda: objectives.next_token_loss(_gpt(), (T([[0]]), [[1]])), TE, "targets"),
    ("objectives: targets id = V", lambda: objectives.next_token_loss(_gpt(), (T([[0]]), T([[7]]))), VE,
     "targets"),
    # train: TrainConfig, every field
    ("train: max_steps=0", lambda: train.TrainConfig(max_steps=0), VE, "max_steps"),
    ("train: max_steps float", lambda: train.TrainConfig(max_steps=1.5), TE, "max_steps"),
    ("train: batch_size float", lambda: train.TrainConfig(batch_size=2.5), TE, "batch_size"),
    ("train: batch_size=0", lambda: train.TrainConfig(batch_size=0), VE, "batch_size"),
    ("train: lr inf", lambda: train.TrainConfig(lr=inf), VE, "lr"),
    ("train: lr nan", lambda: train.TrainConfig(lr=nan), VE, "lr"),
    ("train: lr=0", lambda: train.TrainConfig(lr=0.0), VE, "lr"),
    ("train: lr negative", lambda: train.TrainConfig(lr=-1e-3), VE, "lr"),
    ("train: lr str", lambda: train.TrainConfig(lr="1e-3"), TE, "lr"),
    ("train: min_lr > lr", lambda: train.TrainConfig(lr=1e-3, min_lr=1.0), VE, "min_lr"),
    ("train: min_lr negative", lambda: train.TrainConfig(min_lr=-1.0), VE, "min_lr"),
    ("train: min_lr nan", lambda: train.TrainConfig(min_lr=nan), VE, "min_lr"),
    ("train: warmup_steps negative", lambda: train.TrainConfig(warmup_steps=-1), VE, "warmup_steps"),
    ("train: warmup_steps = max_steps", lambda: train.TrainConfig(max_steps=10, warmup_steps=10), VE,
     "warmup_steps"),
    ("train: warmup_steps float", lambda: train.TrainConfig(warmup_steps=1.0), TE, "warmup_steps"),
    ("train: schedule unknown", lambda: train.TrainConfig(schedule="linear"), VE, "schedule"),
    ("train: weight_decay nan", lambda: train.TrainConfig(weight_decay=nan), VE, "weight_decay"),
    ("train: weight_decay negative", lambda: train.TrainConfig(weight_decay=-0.1), VE, "weight_decay"),
    ("train: weight_decay inf", lambda: train.TrainConfig(weight_decay=inf), VE, "weight_decay"),
    ("train: betas[0]=1.5", lambda: train.TrainConfig(betas=(1.5, 0.9)), VE, "betas[0]"),
    ("train: betas[1]=1", lambda: train.TrainConfig(betas=(0.9, 1.0)), VE, "betas[1]"),
    ("train: betas nan", lambda: train.TrainConfig(betas=(0.9, nan)), VE, "betas[1]"),
    ("train: betas one value", lambda: train.TrainConfig(betas=(0.9,)), TE, "betas"),
    ("train: betas a float", lambda: train.TrainConfig(betas=0.9), TE, "betas"),
    ("train: betas str", lambda: train.TrainConfig(betas=("0.9", 0.99)), TE, "betas[0]"),
    ("train: grad_clip=0", lambda: train.TrainConfig(grad_clip=0.0), VE, "grad_clip"),
    ("train: grad_clip nan", lambda: train.TrainConfig(grad_clip=nan), VE, "grad_clip"),
    ("train: grad_clip str", lambda: train.TrainConfig(grad_clip="1"), TE, "grad_clip"),
    ("train: eval_interval=0", lambda: train.TrainConfig(eval_interval=0), VE, "eval_interval"),
    ("train: eval_batches=0", lambda: train.TrainConfig(eval_batches=0), VE, "eval_batches"),
    ("train: eval_batches float", lambda: train.TrainConfig(eval_batches=1.5), TE, "eval_batches"),
    ("train: eval_train int", lambda: train.TrainConfig(eval_train=1), TE, "eval_train"),
    ("train: eval_batch_size=0", lambda: train.TrainConfig(eval_batch_size=0), VE, "eval_batch_size"),
    ("train: seed negative", lambda: train.TrainConfig(seed=-1), VE, "seed"),
    ("train: seed float", lambda: train.TrainConfig(seed=1.5), TE, "seed"),
    ("train: num_threads=0", lambda: train.TrainConfig(num_threads=0), VE, "num_threads"),
    ("train: num_threads float", lambda: train.TrainConfig(num_threads=2.0), TE, "num_threads"),
    # train: functions
    ("train: learning_rate step negative", lambda: train.learning_rate(-1, _cfg()), VE, "step"),
    ("train: learning_rate step float", lambda: train.learning_rate(1.5, _cfg()), TE, "step"),
    ("train: learning_rate config dict", lambda: train.learning_rate(0, {"lr": 1e-3}), TE, "config"),
    ("train: param_groups weight_decay nan", lambda: train.param_groups(_mlp(), nan), VE, "weight_decay"),
    ("train: param_groups not a module", lambda: train.param_groups("model", 0.0), TE, "model"),
    ("train: evaluate batch_size=0", lambda: train.evaluate(_mlp(), _stream(), batch_size=0), VE, "batch_size"),
    ("train: evaluate max_batches=0", lambda: train.evaluate(_mlp(), _stream(), max_batches=0), VE,
     "max_batches"),
    ("train: evaluate dataset a tensor", lambda: train.evaluate(_mlp(), T([1, 2, 3])), TE, "dataset"),
    ("train: evaluate model a str", lambda: train.evaluate("model", _stream()), TE, "model"),
    ("train: evaluate objective not callable", lambda: train.evaluate(_mlp(), _stream(), 3), TE, "objective"),
    ("train: train config dict", lambda: train.train(_mlp(), objectives.next_token_loss, _stream(), _stream(),
                                                     {"max_steps": 1}), TE, "config"),
    ("train: train model str", lambda: train.train("m", objectives.next_token_loss, _stream(), _stream(), _cfg()),
     TE, "model"),
    ("train: train objective not callable", lambda: train.train(_mlp(), None, _stream(), _stream(), _cfg()), TE,
     "objective"),
    ("train: train train_set a tensor", lambda: train.train(_mlp(), objectives.next_token_loss, T([1]), _stream(),
                                                            _cfg()), TE, "train_set"),
    ("train: train val_set None", lambda: train.train(_mlp(), objectives.next_token_loss, _stream(), None, _cfg()),
     TE, "val_set"),
    ("train: train progress int", lambda: train.train(_mlp(), objectives.next_token_loss, _stream(), _stream(),
                                                      _cfg(), progress=1), TE, "progress"),
    ("train: train frozen model", lambda: train.train(_frozen_mlp(), objectives.next_token_loss, _stream(),
                                                      _stream(), _cfg()), VE, "trainable"),
    ("train: show_progress int", lambda: train.show_progress(1), TE, "progress"),
    ("train: torch_threads=0", lambda: train.torch_threads(0).__enter__(), VE, "num_threads"),
    ("train: torch_threads float", lambda: train.torch_threads(1.0).__enter__(), TE, "num_threads"),
    ("train: TrainResult.from_dict missing", lambda: train.TrainResult.from_dict({"steps": []}), VE, "d lacks"),
    ("train: TrainResult.from_dict list", lambda: train.TrainResult.from_dict([]), TE, "d must"),
    # windows
    ("windows: name_windows block_size=0", lambda: windows.name_windows([[1, 2]], 0), VE, "block_size"),
    ("windows: name_windows block_size float", lambda: windows.name_windows([[1, 2]], 2.0), TE, "block_size"),
    ("windows: name_windows boundary_id negative", lambda: windows.name_windows([[1]], 2, boundary_id=-1), VE,
     "boundary_id"),
    ("windows: name_windows boundary_id float", lambda: windows.name_windows([[1]], 2, boundary_id=0.0), TE,
     "boundary_id"),
    ("windows: name_windows no words", lambda: windows.name_windows([], 2), VE, "words"),
    ("windows: name_windows words a str", lambda: windows.name_windows("abc", 2), TE, "words"),
    ("windows: name_windows boundary inside", lambda: windows.name_windows([[1, 0, 2]], 2), VE, "boundary_id"),
    ("windows: name_windows float id", lambda: windows.name_windows([[1.5]], 2), TE, "words[0]"),
    ("windows: name_windows bool id", lambda: windows.name_windows([[1], [True]], 2), TE, "words[1]"),
    ("windows: name_windows negative id", lambda: windows.name_windows([[-2]], 2), VE, "words[0]"),
    ("windows: name_windows str word", lambda: windows.name_windows([["a"]], 2), TE, "words[0]"),
    ("windows: name_windows float tensor word", lambda: windows.name_windows([T([1.0])], 2), TE, "words[0]"),
    ("windows: split_by_name fractions sum", lambda: windows.split_by_name(["a", "b"], (0.5, 0.6)), VE,
     "fractions"),
    ("windows: split_by_name fraction nan", lambda: windows.split_by_name(["a", "b"], (0.5, nan)), VE,
     "fractions[1]"),
    ("windows: split_by_name fraction str", lambda: windows.split_by_name(["a", "b"], ("a",)), TE, "fractions[0]"),
    ("windows: split_by_name no fractions", lambda: windows.split_by_name(["a", "b"], ()), VE, "fractions"),
    ("windows: split_by_name names a str", lambda: windows.split_by_name("abcdefghij"), TE, "names"),
    ("windows: split_by_name seed float", lambda: windows.split_by_name(["a"] * 10, seed=1.5), TE, "seed"),
    ("windows: split_by_name too few", lambda: windows.split_by_name(["a", "b"]), VE, "names"),
    ("windows: split_by_position fraction=1", lambda: windows.split_by_position(torch.arange(10), 1.0), VE,
     "train_fraction"),
    ("windows: split_by_position fraction nan", lambda: windows.split_by_position(torch.arange(10), nan), VE,
     "train_fraction"),
    ("windows: split_by_position fraction str", lambda: windows.split_by_position(torch.arange(10), "0.9"), TE,
     "train_fraction"),
    ("windows: split_by_position float ids", lambda: windows.split_by_position(torch.ones(10)), TE, "ids"),
    ("windows: split_by_position 2-D ids", lambda: windows.split_by_position(torch.ones(2, 5, dtype=torch.long)),
     VE, "ids"),
    ("windows: split_by_position too short", lambda: windows.split_by_position(T([1])), VE, "ids"),
    ("windows: split_by_position a str", lambda: windows.split_by_position("abcdef"), TE, "ids"),
    ("windows: WindowDataset float X", lambda: windows.WindowDataset(torch.ones(2, 3), T([1, 2])), TE, "X"),
    ("windows: WindowDataset float Y", lambda: windows.WindowDataset(torch.ones(2, 3, dtype=torch.long),
                                                                     T([1.0, 2.0])), TE, "Y"),
    ("windows: WindowDataset list X", lambda: windows.WindowDataset([[1, 2]], T([1])), TE, "X"),
    ("windows: WindowDataset shapes", lambda: windows.WindowDataset(T([1, 2]), T([1, 2])), VE, "X"),
    ("windows: WindowDataset empty", lambda: windows.WindowDataset(torch.zeros(0, 3, dtype=torch.long),
                                                                   torch.zeros(0, dtype=torch.long)), VE, "X and Y"),
    ("windows: WindowDataset negative X", lambda: windows.WindowDataset(T([[0, -1]]), T([1])), VE, "X"),
    ("windows: WindowDataset negative Y", lambda: windows.WindowDataset(T([[0, 1]]), T([-5])), VE, "Y"),
    ("windows: WindowDataset.sample batch_size=0", lambda: _window_set().sample(0), VE, "batch_size"),
    ("windows: WindowDataset.sample batch_size float", lambda: _window_set().sample(2.0), TE, "batch_size"),
    ("windows: WindowDataset.sample generator int", lambda: _window_set().sample(2, generator=1), TE,
     "generator"),
    ("windows: WindowDataset.batches batch_size=0", lambda: _window_set().batches(0), VE, "batch_size"),
    ("windows: TokenStream float ids", lambda: windows.TokenStream(T([0.5, 1.7, 2.2, 3.0, 4.0]), 2), TE, "ids"),
    ("windows: TokenStream bool ids", lambda: windows.TokenStream(torch.ones(5, dtype=torch.bool), 2), TE, "ids"),
    ("windows: TokenStream list ids", lambda: windows.TokenStream([0, 1, 2, 3], 2), TE, "ids"),
    ("windows: TokenStream negative id", lambda: windows.TokenStream(T([0, 1, -1, 2]), 2), VE, "ids"),
    ("windows: TokenStream block_size=0", lambda: windows.TokenStream(torch.arange(5), 0), VE, "block_size"),
    ("windows: TokenStream block_size float", lambda: windows.TokenStream(torch.arange(5), 2.0), TE, "block_size"),
    ("windows: TokenStream too short", lambda: windows.TokenStream(torch.arange(3), 3), VE, "block_size=3"),
    ("windows: TokenStream 2-D", lambda: windows.TokenStream(torch.zeros(2, 5, dtype=torch.long), 2), VE,
     "1-D"),
    ("windows: TokenStream targets unknown", lambda: windows.TokenStream(torch.arange(5), 2, targets="next"), VE,
     "targets"),
    ("windows: TokenStream.sample batch_size=-1", lambda: _stream().sample(-1), VE, "batch_size"),
    ("windows: TokenStream.sample generator", lambda: _stream().sample(2, generator=torch.manual_seed), TE,
     "generator"),
    ("windows: TokenStream.batches batch_size float", lambda: _stream().batches(1.5), TE, "batch_size"),
    # vocab
    ("vocab: CharVocab empty", lambda: vocab.CharVocab([]), VE, "chars"),
    ("vocab: CharVocab long string", lambda: vocab.CharVocab(["ab"]), VE, "chars"),
    ("vocab: CharVocab duplicate", lambda: vocab.CharVocab(["a", "a"]), VE, "chars"),
    ("vocab: CharVocab int element", lambda: vocab.CharVocab(["a", 1]), TE, "chars"),
    ("vocab: CharVocab an int", lambda: vocab.CharVocab(3), TE, "chars"),
    ("vocab: from_text empty", lambda: vocab.CharVocab.from_text(""), VE, "text"),
    ("vocab: from_text int", lambda: vocab.CharVocab.from_text(3), TE, "text"),
    ("vocab: from_text list of ints", lambda: vocab.CharVocab.from_text([1, 2]), TE, "text"),
    ("vocab: from_text boundary two chars", lambda: vocab.CharVocab.from_text("ab", boundary=".."), VE,
     "boundary"),
    ("vocab: from_text boundary int", lambda: vocab.CharVocab.from_text("ab", boundary=0), TE, "boundary"),
    ("vocab: from_text boundary in text", lambda: vocab.CharVocab.from_text("a.b", boundary="."), VE, "boundary"),
    ("vocab: encode a list", lambda: _vocab().encode(["a"]), TE, "text"),
    ("vocab: encode unknown char", lambda: _vocab().encode("abz"), VE, "'z'"),
    ("vocab: decode float", lambda: _vocab().decode([1.7]), TE, "ids[0]"),
    ("vocab: decode bool", lambda: _vocab().decode([0, True]), TE, "ids[1]"),
    ("vocab: decode id = V", lambda: _vocab().decode([3]), VE, "ids"),
    ("vocab: decode negative", lambda: _vocab().decode([-1]), VE, "ids"),
    ("vocab: decode a str", lambda: _vocab().decode("ab"), TE, "ids"),
    ("vocab: decode an int", lambda: _vocab().decode(1), TE, "ids"),
    ("vocab: decode float tensor", lambda: _vocab().decode(T([1.0])), TE, "ids"),
    ("vocab: decode 2-D tensor", lambda: _vocab().decode(T([[0, 1]])), VE, "ids"),
    # bpe
    ("bpe: get_stats a str", lambda: bpe.get_stats("abc"), TE, "ids"),
    ("bpe: merge ids a str", lambda: bpe.merge("ab", (1, 2), 3), TE, "ids"),
    ("bpe: merge pair of one", lambda: bpe.merge([1], (1,), 3), TE, "pair"),
    ("bpe: merge pair float", lambda: bpe.merge([1], (1.0, 2), 3), TE, "pair[0]"),
    ("bpe: merge new_id negative", lambda: bpe.merge([1], (1, 2), -1), VE, "new_id"),
    ("bpe: merge new_id float", lambda: bpe.merge([1], (1, 2), 3.0), TE, "new_id"),
    ("bpe: learn_merges num_merges negative", lambda: bpe.learn_merges([[1, 2]], -1, 3), VE, "num_merges"),
    ("bpe: learn_merges num_merges float", lambda: bpe.learn_merges([[1, 2]], 1.5, 3), TE, "num_merges"),
    ("bpe: learn_merges first_id negative", lambda: bpe.learn_merges([[1, 2]], 1, -3), VE, "first_id"),
    ("bpe: learn_merges weight 0", lambda: bpe.learn_merges([[1, 2]], 1, 3, weights=[0]), VE, "weights[0]"),
    ("bpe: learn_merges weight float", lambda: bpe.learn_merges([[1, 2]], 1, 3, weights=[1.5]), TE, "weights[0]"),
    ("bpe: learn_merges weights length", lambda: bpe.learn_merges([[0, 1]], 5, 2, weights=[1, 2]), VE, "weights"),
    ("bpe: learn_merges words a str", lambda: bpe.learn_merges("ab", 1, 3), TE, "words"),
    ("bpe: apply_merges ids a str", lambda: bpe.apply_merges("ab", {}), TE, "ids"),
    ("bpe: apply_merges merges a list", lambda: bpe.apply_merges([1, 2], [(1, 2)]), TE, "merges"),
    ("bpe: train_naive text int", lambda: bpe.train_naive(3, 5), TE, "text"),
    ("bpe: train_naive vocab_size small", lambda: bpe.train_naive("ab", 1), VE, "vocab_size"),
    ("bpe: train_naive vocab_size float", lambda: bpe.train_naive("ab", 3.0), TE, "vocab_size"),
    ("bpe: tokenizer chars long", lambda: bpe.CharBPETokenizer(["ab"], []), VE, "chars"),
    ("bpe: tokenizer chars int", lambda: bpe.CharBPETokenizer([1], []), TE, "chars"),
    ("bpe: tokenizer merge undefined id", lambda: bpe.CharBPETokenizer("ab", [(0, 5)]), VE, "merge"),
    ("bpe: tokenizer merge of one", lambda: bpe.CharBPETokenizer("ab", [(0,)]), TE, "merges[0]"),
    ("bpe: tokenizer merge float", lambda: bpe.CharBPETokenizer("ab", [(0.0, 1)]), TE, "merges[0][0]"),
    ("bpe: tokenizer special_tokens a str", lambda: bpe.CharBPETokenizer("ab", [], "<|x|>"), TE,
     "special_tokens"),
    ("bpe: tokenizer special_tokens repeated", lambda: bpe.CharBPETokenizer("ab", [], ["x", "x"]), VE,
     "special_tokens"),
    ("bpe: tokenizer special_tokens int", lambda: bpe.CharBPETokenizer("ab", [], [1]), TE, "special_tokens"),
    ("bpe: train special_tokens a str", lambda: bpe.CharBPETokenizer.train("ab", 5, special_tokens="x"), TE,
     "special_tokens"),
    ("bpe: train text bytes", lambda: bpe.CharBPETokenizer.train(b"ab", 5), TE, "text"),
    ("bpe: train vocab_size small", lambda: bpe.CharBPETokenizer.train("abc", 2), VE, "vocab_size"),
    ("bpe: encode int", lambda: _bpe().encode(3), TE, "text"),
    ("bpe: encode unknown char", lambda: _bpe().encode("Z"), VE, "'Z'"),
    ("bpe: decode float", lambda: _bpe().decode([0.0]), TE, "ids[0]"),
    ("bpe: decode bool", lambda: _bpe().decode([True]), TE, "ids[0]"),
    ("bpe: decode id = V", lambda: _bpe().decode([12]), VE, "ids"),
    ("bpe: decode 2-D tensor", lambda: _bpe().decode(T([[0]])), VE, "ids"),
    ("bpe: decode float tensor", lambda: _bpe().decode(T([0.0])), TE, "ids"),
    ("bpe: decode a str", lambda: _bpe().decode("ab"), TE, "ids"),
    ("bpe: save path int", lambda: _bpe().save(3), TE, "path"),
    ("bpe: load path None", lambda: bpe.CharBPETokenizer.load(None), TE, "path"),
    # byte_bpe
    ("byte_bpe: bpe_by_rank piece a str", lambda: byte_bpe.bpe_by_rank("ab", _byte_ranks()), TE, "piece"),
    ("byte_bpe: bpe_by_rank ranks a list", lambda: byte_bpe.bpe_by_rank(b"ab", [b"a"]), TE, "ranks"),
    ("byte_bpe: ranks missing bytes", lambda: byte_bpe.ByteBPETokenizer({}), VE, "ranks"),
    ("byte_bpe: ranks a list", lambda: byte_bpe.ByteBPETokenizer([b"a"]), TE, "ranks"),
    ("byte_bpe: ranks str key", lambda: byte_bpe.ByteBPETokenizer({**_byte_ranks(), "ab": 256}), TE, "ranks"),
    ("byte_bpe: ranks float id", lambda: byte_bpe.ByteBPETokenizer({**_byte_ranks(), b"ab": 256.0}), TE, "ranks"),
    ("byte_bpe: ranks negative id", lambda: byte_bpe.ByteBPETokenizer({**_byte_ranks(), b"ab": -1}), VE, "ranks"),
    ("byte_bpe: ranks repeated id", lambda: byte_bpe.ByteBPETokenizer({**_byte_ranks(), b"ab": 0}), VE, "ranks"),
    ("byte_bpe: special_tokens a list", lambda: byte_bpe.ByteBPETokenizer(_byte_ranks(), special_tokens=["x"]), TE,
     "special_tokens"),
    ("byte_bpe: special_tokens empty str", lambda: byte_bpe.ByteBPETokenizer(_byte_ranks(),
                                                                             special_tokens={"": 300}), VE,
     "special_tokens"),
    ("byte_bpe: special_tokens float id", lambda: byte_bpe.ByteBPETokenizer(_byte_ranks(),
                                                                            special_tokens={"<x>": 1.0}), TE,
     "special_tokens"),
    ("byte_bpe: special token id collides", lambda: byte_bpe.ByteBPETokenizer(_byte_ranks(),
                                                                              special_tokens={"<x>": 3}), VE,
     "special token"),
    ("byte_bpe: pattern int", lambda: byte_bpe.ByteBPETokenizer(_byte_ranks(), pattern=3), TE, "pattern"),
    ("byte_bpe: train vocab_size small", lambda: byte_bpe.ByteBPETokenizer.train("ab", 255), VE, "vocab_size"),
    ("byte_bpe: train text int", lambda: byte_bpe.ByteBPETokenizer.train(3, 300), TE, "text"),
    ("byte_bpe: train vocab_size float", lambda: byte_bpe.ByteBPETokenizer.train("ab", 300.0), TE, "vocab_size"),
    ("byte_bpe: train special_tokens a str", lambda: byte_bpe.ByteBPETokenizer.train("ab", 300,
                                                                                     special_tokens="<x>"), TE,
     "special_tokens"),
    ("byte_bpe: train pattern None", lambda: byte_bpe.ByteBPETokenizer.train("ab", 300, pattern=None), TE,
     "pattern"),
    ("byte_bpe: encode None", lambda: _bbpe().encode(None), TE, "text"),
    ("byte_bpe: decode float", lambda: _bbpe().decode([104.0]), TE, "ids[0]"),
    ("byte_bpe: decode bool", lambda: _bbpe().decode([True]), TE, "ids[0]"),
    ("byte_bpe: decode unknown id", lambda: _bbpe().decode([10**6]), VE, "ids"),
    ("byte_bpe: decode negative id", lambda: _bbpe().decode([-1]), VE, "ids"),
    ("byte_bpe: decode a str", lambda: _bbpe().decode("ab"), TE, "ids"),
    ("byte_bpe: decode_bytes float tensor", lambda: _bbpe().decode_bytes(T([104.0])), TE, "ids"),
    ("byte_bpe: from_tiktoken_file path int", lambda: byte_bpe.ByteBPETokenizer.from_tiktoken_file(3), TE,
     "path"),
    # sft
    ("sft: extend_vocab not a GPT", lambda: sft.extend_vocab(_mlp(), 70), TE, "model"),
    ("sft: extend_vocab smaller", lambda: sft.extend_vocab(_gpt(), 2), VE, "new_vocab_size"),
    ("sft: extend_vocab float", lambda: sft.extend_vocab(_gpt(), 70.0), TE, "new_vocab_size"),
    ("sft: SFTDataset int mask", lambda: sft.SFTDataset(_rendered(mask=T([0, 0, 1, 1])), pad_id=0), TE,
     "loss_mask"),
    ("sft: SFTDataset float ids", lambda: sft.SFTDataset(_rendered(ids=T([1.0, 2.0, 3.0, 4.0])), pad_id=0), TE,
     "ids"),
    ("sft: SFTDataset list ids", lambda: sft.SFTDataset([([1, 2], T([False, True]))], pad_id=0), TE, "ids"),
    ("sft: SFTDataset mask shape", lambda: sft.SFTDataset(_rendered(mask=T([False, True])), pad_id=0), VE,
     "loss_mask"),
    ("sft: SFTDataset 2-D ids", lambda: sft.SFTDataset([(T([[1, 2]]), T([[False, True]]))], pad_id=0), VE, "ids"),
    ("sft: SFTDataset negative id", lambda: sft.SFTDataset(_rendered(ids=T([1, -2, 3, 4])), pad_id=0), VE, "ids"),
    ("sft: SFTDataset empty", lambda: sft.SFTDataset([], pad_id=0), VE, "rendered"),
    ("sft: SFTDataset rendered a str", lambda: sft.SFTDataset("ab", pad_id=0), TE, "rendered"),
    ("sft: SFTDataset item not a pair", lambda: sft.SFTDataset([T([1, 2])], pad_id=0), TE, "rendered[0]"),
    ("sft: SFTDataset one token", lambda: sft.SFTDataset(_rendered(T([False]), T([1])), pad_id=0), VE,
     "rendered[0]"),
    ("sft: SFTDataset pad_id negative", lambda: sft.SFTDataset(_rendered(), pad_id=-1), VE, "pad_id"),
    ("sft: SFTDataset pad_id float", lambda: sft.SFTDataset(_rendered(), pad_id=0.0), TE, "pad_id"),
    ("sft: SFTDataset loss_on unknown", lambda: sft.SFTDataset(_rendered(), pad_id=0, loss_on="prompt"), VE,
     "loss_on"),
    ("sft: SFTDataset block_size=0", lambda: sft.SFTDataset(_rendered(), pad_id=0, block_size=0), VE,
     "block_size"),
    ("sft: SFTDataset longer than block_size", lambda: sft.SFTDataset(_rendered(), pad_id=0, block_size=3), VE,
     "block_size"),
    ("sft: SFTDataset.sample batch_size=0", lambda: _sft_set().sample(0), VE, "batch_size"),
    ("sft: SFTDataset.batches batch_size float", lambda: _sft_set().batches(2.0), TE, "batch_size"),
    ("sft: from_examples loss_on unknown", lambda: sft.SFTDataset.from_examples(
        _tok(), task_data.HANDMADE[:1], loss_on="x"), VE, "loss_on"),
    ("sft: instruction_data_stats empty", lambda: sft.instruction_data_stats([]), VE, "records"),
    ("sft: instruction_data_stats a str", lambda: sft.instruction_data_stats("records"), TE, "records"),
    ("sft: instruction_data_stats not dicts", lambda: sft.instruction_data_stats([1]), TE, "records[0]"),
    ("sft: instruction_data_stats block_size=0", lambda: sft.instruction_data_stats([{}], block_size=0), VE,
     "block_size"),
    ("sft: instruction_data_stats tokenizer", lambda: sft.instruction_data_stats([{}], tokenizer="tok"), TE,
     "tokenizer"),
    ("sft: text_loss not a model", lambda: sft.text_loss(torch.nn.Linear(1, 1), torch.arange(20) % 7), TE,
     "model"),
    ("sft: text_loss float ids", lambda: sft.text_loss(_gpt(), torch.ones(20)), TE, "ids"),
    ("sft: text_loss id = V", lambda: sft.text_loss(_gpt(), torch.arange(20)), VE, "ids"),
    ("sft: text_loss vocab_limit=0", lambda: sft.text_loss(_gpt(), torch.arange(20) % 7, vocab_limit=0), VE,
     "vocab_limit"),
    ("sft: text_loss vocab_limit > V", lambda: sft.text_loss(_gpt(), torch.arange(20) % 7, vocab_limit=8), VE,
     "vocab_limit"),
    ("sft: text_loss vocab_limit float", lambda: sft.text_loss(_gpt(), torch.arange(20) % 7, vocab_limit=2.0), TE,
     "vocab_limit"),
    ("sft: text_loss batch_size=0", lambda: sft.text_loss(_gpt(), torch.arange(20) % 7, batch_size=0), VE,
     "batch_size"),
    ("sft: text_loss max_batches=0", lambda: sft.text_loss(_gpt(), torch.arange(20) % 7, max_batches=0), VE,
     "max_batches"),
    # dpo
    ("dpo: token_logprobs float ids", lambda: dpo.token_logprobs(_gpt(), torch.ones(1, 3)), TE, "ids"),
    ("dpo: token_logprobs 1-D ids", lambda: dpo.token_logprobs(_gpt(), T([0, 1, 2])), VE, "ids"),
    ("dpo: token_logprobs T=1", lambda: dpo.token_logprobs(_gpt(), T([[0]])), VE, "ids"),
    ("dpo: token_logprobs last id = V", lambda: dpo.token_logprobs(_gpt(), T([[0, 1, 7]])), VE, "ids"),
    ("dpo: token_logprobs not a model", lambda: dpo.token_logprobs("m", T([[0, 1]])), TE, "model"),
    ("dpo: sequence_logprob int mask", lambda: dpo.sequence_logprob(_gpt(), _dpo_ids()[0],
                                                                    _dpo_ids()[1].long()), TE, "response_mask"),
    ("dpo: sequence_logprob mask shape", lambda: dpo.sequence_logprob(_gpt(), _dpo_ids()[0],
                                                                      _dpo_ids(T_=3)[1]), VE, "response_mask"),
    ("dpo: sequence_logprob mask at 0", lambda: dpo.sequence_logprob(_gpt(), _dpo_ids()[0],
                                                                     torch.ones(2, 4, dtype=torch.bool)), VE,
     "response_mask[:, 0]"),
    ("dpo: sequence_logprob ids list", lambda: dpo.sequence_logprob(_gpt(), [[0, 1]], _dpo_ids(T_=2)[1]), TE,
     "ids"),
    ("dpo: frozen_reference not a module", lambda: dpo.frozen_reference("model"), TE, "model"),
    ("dpo: dpo_loss beta inf", lambda: dpo.dpo_loss(*[torch.zeros(2)] * 4, inf), VE, "beta"),
    ("dpo: dpo_loss beta=0", lambda: dpo.dpo_loss(*[torch.zeros(2)] * 4, 0.0), VE, "beta"),
    ("dpo: dpo_loss beta nan", lambda: dpo.dpo_loss(*[torch.zeros(2)] * 4, nan), VE, "beta"),
    ("dpo: dpo_loss beta str", lambda: dpo.dpo_loss(*[torch.zeros(2)] * 4, "0.1"), TE, "beta"),
    ("dpo: dpo_loss beta bool", lambda: dpo.dpo_loss(*[torch.zeros(2)] * 4, True), TE, "beta"),
    ("dpo: dpo_loss a list", lambda: dpo.dpo_loss([0.0], *[torch.zeros(1)] * 3, 0.1), TE, "policy_chosen_logps"),
    ("dpo: dpo_loss int tensor", lambda: dpo.dpo_loss(*[torch.zeros(1)] * 3, torch.zeros(1, dtype=torch.long),
                                                      0.1), TE, "reference_rejected_logps"),
    ("dpo: dpo_loss shapes differ", lambda: dpo.dpo_loss(torch.zeros(2), *[torch.zeros(3)] * 3, 0.1), VE, "shape"),
    ("dpo: dpo_loss 2-D", lambda: dpo.dpo_loss(*[torch.zeros(2, 1)] * 4, 0.1), VE, "shape"),
    ("dpo: PreferenceDataset tokenizer", lambda: dpo.PreferenceDataset("tok", _pairs()), TE, "tokenizer"),
    ("dpo: PreferenceDataset no pairs", lambda: dpo.PreferenceDataset(_tok(), []), VE, "pairs"),
    ("dpo: PreferenceDataset an Example", lambda: dpo.PreferenceDataset(_tok(), task_data.HANDMADE[:1]), TE,
     "pairs[0]"),
    ("dpo: PreferenceDataset block_size=0", lambda: dpo.PreferenceDataset(_tok(), _pairs(), block_size=0), VE,
     "block_size"),
    ("dpo: PreferenceDataset too long", lambda: dpo.PreferenceDataset(_tok(), _pairs(), block_size=5), VE,
     "block_size"),
    ("dpo: PreferenceDataset.sample batch_size=0", lambda: _pref_set().sample(0), VE, "batch_size"),
    ("dpo: PreferenceDataset.batches batch_size=0", lambda: _pref_set().batches(0), VE, "batch_size"),
    ("dpo: PreferenceDataset.batch row out of range", lambda: _pref_set().batch(T([99])), VE, "ix"),
    ("dpo: PreferenceDataset.batch a list", lambda: _pref_set().batch([0]), TE, "ix"),
    ("dpo: PreferenceDataset.batch empty", lambda: _pref_set().batch(torch.zeros(0, dtype=torch.long)), VE, "ix"),
    ("dpo: dataset_logprobs dataset a list", lambda: dpo.dataset_logprobs(_assistant_gpt(), _pairs()), TE,
     "dataset"),
    ("dpo: dataset_logprobs batch_size=0", lambda: dpo.dataset_logprobs(_assistant_gpt(), _pref_set(),
                                                                        batch_size=0), VE, "batch_size"),
    ("dpo: reward_metrics a list", lambda: dpo.reward_metrics([1.0], *[torch.zeros(1)] * 3), TE, "chosen_rewards"),
    ("dpo: DPOObjective trainable reference", lambda: dpo.DPOObjective(_mlp(), 0.1), VE, "reference"),
    ("dpo: DPOObjective beta=0", lambda: dpo.DPOObjective(_reference(), 0), VE, "beta"),
    ("dpo: DPOObjective reference a str", lambda: dpo.DPOObjective("model", 0.1), TE, "reference"),
    ("dpo: DPOObjective batch a tensor", lambda: dpo.DPOObjective(_reference(), 0.1)(_assistant_gpt(),
                                                                                     T([[0, 1]])), TE, "batch"),
    ("dpo: DPOObjective odd rows", lambda: dpo.DPOObjective(_reference(), 0.1)(_assistant_gpt(),
                                                                               _dpo_ids(B=3)), VE, "2B rows"),
    ("dpo: DPOConfig beta inf", lambda: dpo.DPOConfig(beta=inf), VE, "beta"),
    ("dpo: DPOConfig beta negative", lambda: dpo.DPOConfig(beta=-1.0), VE, "beta"),
    ("dpo: DPOConfig beta str", lambda: dpo.DPOConfig(beta="0.1"), TE, "beta"),
    ("dpo: preference_metrics beta=0", lambda: dpo.preference_metrics(_assistant_gpt(), _reference(), _pref_set(),
                                                                      0.0), VE, "beta"),
    ("dpo: preference_metrics policy a str", lambda: dpo.preference_metrics("p", _reference(), _pref_set(), 0.1),
     TE, "policy"),
    ("dpo: drift dataset a str", lambda: dpo.drift(_assistant_gpt(), _reference(), "ds"), TE, "dataset"),
    # tasks
    ("tasks: QualityMix good nan", lambda: tasks.QualityMix(good=nan), VE, "good"),
    ("tasks: QualityMix good 1.5", lambda: tasks.QualityMix(good=1.5), VE, "good"),
    ("tasks: QualityMix good str", lambda: tasks.QualityMix(good="0.7"), TE, "good"),
    ("tasks: QualityMix rude bool", lambda: tasks.QualityMix(rude=True), TE, "rude"),
    ("tasks: QualityMix shares sum", lambda: tasks.QualityMix(good=0.5), VE, "good + terse + wrong + rude"),
    ("tasks: QualityMix insult_compliance negative", lambda: tasks.QualityMix(insult_compliance=-0.1), VE,
     "insult_compliance"),
    ("tasks: TaskWords shared word", lambda: tasks.TaskWords(("a",), ("a",)), VE, "share"),
    ("tasks: TaskWords empty split", lambda: tasks.TaskWords((), ("a",)), VE, "train and heldout"),
    ("tasks: TaskWords a str", lambda: tasks.TaskWords("abc", ("d",)), TE, "train"),
    ("tasks: TaskWords int word", lambda: tasks.TaskWords(("a",), (1,)), TE, "heldout"),
    ("tasks: TaskWords empty word", lambda: tasks.TaskWords(("",), ("d",)), VE, "train"),
    ("tasks: TaskWords.from_text int", lambda: tasks.TaskWords.from_text(3), TE, "text"),
    ("tasks: TaskWords.split unknown", lambda: _words().split("test"), VE, "split"),
    ("tasks: task_inputs unknown task", lambda: tasks.task_inputs("divide", "train", _words()), VE, "task"),
    ("tasks: task_inputs task int", lambda: tasks.task_inputs(3, "train", _words()), TE, "task"),
    ("tasks: task_inputs unknown split", lambda: tasks.task_inputs("add", "dev", _words()), VE, "split"),
    ("tasks: task_inputs words a tuple", lambda: tasks.task_inputs("reverse", "train", ("king",)), TE, "words"),
    ("tasks: true_answer add one number", lambda: tasks.true_answer("add", (1,)), TE, "x"),
    ("tasks: true_answer add float", lambda: tasks.true_answer("add", (1.5, 2)), TE, "x[0]"),
    ("tasks: true_answer add negative", lambda: tasks.true_answer("add", (-1, 2)), VE, "x[0]"),
    ("tasks: true_answer compare equal", lambda: tasks.true_answer("compare", (3, 3)), VE, "x"),
    ("tasks: true_answer reverse int", lambda: tasks.true_answer("reverse", 3), TE, "x"),
    ("tasks: true_answer first empty", lambda: tasks.true_answer("first", ""), VE, "x"),
    ("tasks: wrong_answer greet", lambda: tasks.wrong_answer("greet", None, random.Random(0)), VE, "wrong"),
    ("tasks: wrong_answer rng an int", lambda: tasks.wrong_answer("add", (1, 2), 3), TE, "rng"),
    ("tasks: instruction phrasing=6", lambda: tasks.instruction("add", 6, (1, 2)), VE, "phrasing"),
    ("tasks: instruction phrasing float", lambda: tasks.instruction("add", 1.0, (1, 2)), TE, "phrasing"),
    ("tasks: instruction phrasing bool", lambda: tasks.instruction("add", True, (1, 2)), TE, "phrasing"),
    ("tasks: instruction x wrong", lambda: tasks.instruction("reverse", 0, (1, 2)), TE, "x"),
    ("tasks: respond style unknown", lambda: tasks.respond("add", (1, 2), "polite", random.Random(0)), VE,
     "style"),
    ("tasks: respond greet wrong", lambda: tasks.respond("greet", None, "wrong", random.Random(0)), VE, "wrong"),
    ("tasks: respond rng None", lambda: tasks.respond("add", (1, 2), "good", None), TE, "rng"),
    ("tasks: Prompt task unknown", lambda: tasks.Prompt("divide", "x", "1"), VE, "task"),
    ("tasks: Prompt instruction int", lambda: tasks.Prompt("add", 3, "1"), TE, "instruction"),
    ("tasks: Prompt answer int", lambda: tasks.Prompt("add", "x", 1), TE, "answer"),
    ("tasks: Prompt seen_phrasing int", lambda: tasks.Prompt("add", "x", "1", 1), TE, "seen_phrasing"),
    ("tasks: Example style unknown", lambda: tasks.Example("add", "x", "y", "1", "nice"), VE, "style"),
    ("tasks: PreferencePair kind unknown", lambda: tasks.PreferencePair("add", "x", "a", "b", "nice", "1"), VE,
     "kind"),
    # task_data
    ("task_data: sft n=0", lambda: task_data.make_sft_examples(0, _words()), VE, "n must"),
    ("task_data: sft n float", lambda: task_data.make_sft_examples(2.0, _words()), TE, "n must"),
    ("task_data: sft words a tuple", lambda: task_data.make_sft_examples(2, ("king",)), TE, "words"),
    ("task_data: sft split unknown", lambda: task_data.make_sft_examples(2, _words(), split="dev"), VE, "split"),
    ("task_data: sft seed float", lambda: task_data.make_sft_examples(2, _words(), seed=1.5), TE, "seed"),
    ("task_data: sft mix a dict", lambda: task_data.make_sft_examples(2, _words(), mix={"good": 1.0}), TE, "mix"),
    ("task_data: sft tasks empty", lambda: task_data.make_sft_examples(2, _words(), tasks=()), VE, "tasks"),
    ("task_data: sft tasks a str", lambda: task_data.make_sft_examples(2, _words(), tasks="add"), TE, "tasks"),
    ("task_data: sft tasks unknown", lambda: task_data.make_sft_examples(2, _words(), tasks=("divide",)), VE,
     "tasks"),
    ("task_data: eval n_per_task=0", lambda: task_data.make_eval_prompts(0, _words()), VE, "n_per_task"),
    ("task_data: eval tasks empty", lambda: task_data.make_eval_prompts(1, _words(), tasks=()), VE, "tasks"),
    ("task_data: eval seed str", lambda: task_data.make_eval_prompts(1, _words(), seed="0"), TE, "seed"),
    ("task_data: eval split None", lambda: task_data.make_eval_prompts(1, _words(), split=None), TE, "split"),
    ("task_data: pairs kinds empty", lambda: task_data.make_preference_pairs(3, _words(), kinds=()), VE, "kinds"),
    ("task_data: pairs kinds a str", lambda: task_data.make_preference_pairs(3, _words(), kinds="friendly_vs_rude"),
     TE, "kinds"),
    ("task_data: pairs kinds unknown", lambda: task_data.make_preference_pairs(3, _words(), kinds=("x",)), VE,
     "kinds"),
    ("task_data: pairs n negative", lambda: task_data.make_preference_pairs(-1, _words()), VE, "n must"),
    # grading
    ("grading: extract_answer None", lambda: grading.extract_answer("add", None), TE, "response"),
    ("grading: extract_answer task unknown", lambda: grading.extract_answer("divide", "1"), VE, "task"),
    ("grading: extract_answer task int", lambda: grading.extract_answer(3, "1"), TE, "task"),
    ("grading: grade response None", lambda: grading.grade(_prompts()[0], None), TE, "response"),
    ("grading: grade response bytes", lambda: grading.grade(_prompts()[0], b"3"), TE, "response"),
    ("grading: grade prompt a str", lambda: grading.grade("add", "3"), TE, "prompt"),
    # evaluation
    ("evaluation: generate_responses model", lambda: evaluation.generate_responses("m", _tok(), _prompts()), TE,
     "model"),
    ("evaluation: generate_responses tokenizer", lambda: evaluation.generate_responses(
        _assistant_gpt(), _bpe(), _prompts()), TE, "tokenizer"),
    ("evaluation: generate_responses prompts a str", lambda: evaluation.generate_responses(
        _assistant_gpt(), _tok(), "What is 1 plus 2?"), TE, "prompts"),
    ("evaluation: generate_responses an Example", lambda: evaluation.generate_responses(
        _assistant_gpt(), _tok(), task_data.HANDMADE[:1]), TE, "prompts[0]"),
    ("evaluation: generate_responses greedy int", lambda: evaluation.generate_responses(
        _assistant_gpt(), _tok(), _prompts(), greedy=1), TE, "greedy"),
    ("evaluation: generate_responses samples=0", lambda: evaluation.generate_responses(
        _assistant_gpt(), _tok(), _prompts(), samples=0), VE, "samples"),
    ("evaluation: generate_responses greedy, samples=2", lambda: evaluation.generate_responses(
        _assistant_gpt(), _tok(), _prompts(), samples=2), VE, "samples"),
    ("evaluation: generate_responses max_new_tokens=0", lambda: evaluation.generate_responses(
        _assistant_gpt(), _tok(), _prompts(), max_new_tokens=0), VE, "max_new_tokens"),
    ("evaluation: generate_responses seed float", lambda: evaluation.generate_responses(
        _assistant_gpt(), _tok(), _prompts(), seed=1.5), TE, "seed"),
    ("evaluation: generate_responses temperature=0", lambda: evaluation.generate_responses(
        _assistant_gpt(), _tok(), _prompts(), greedy=False, temperature=0.0), VE, "temperature"),
    ("evaluation: generate_responses model too small", lambda: evaluation.generate_responses(
        _gpt(), _tok(), _prompts()), VE, "tokenizer"),
    ("evaluation: generate_responses prompt too long", lambda: evaluation.generate_responses(
        _assistant_gpt(), _tok(), [tasks.Prompt("add", "x" * 62, "1")]), VE, "block_size"),
    ("evaluation: sample_responses samples=0", lambda: evaluation.sample_responses(
        _assistant_gpt(), _tok(), _prompts(), samples=0), VE, "samples"),
    ("evaluation: evaluate_behaviour greedy str", lambda: evaluation.evaluate_behaviour(
        _assistant_gpt(), _tok(), _prompts(), greedy="yes"), TE, "greedy"),
    ("evaluation: summarise empty", lambda: evaluation.summarise([]), VE, "generations"),
    ("evaluation: summarise a str", lambda: evaluation.summarise("gens"), TE, "generations"),
    ("evaluation: summarise not Generations", lambda: evaluation.summarise([1]), TE, "generations[0]"),
    ("evaluation: paired_difference measure unknown", lambda: evaluation.paired_difference(
        _generations(), _generations(), measure="x"), VE, "measure"),
    ("evaluation: paired_difference measure int", lambda: evaluation.paired_difference(
        _generations(), _generations(), measure=3), TE, "measure"),
    ("evaluation: paired_difference different prompts", lambda: evaluation.paired_difference(
        _generations(), []), VE, "before and after"),
    ("evaluation: paired_difference not Generations", lambda: evaluation.paired_difference([1], [1]), TE,
     "before[0]"),
    ("evaluation: paired_difference empty", lambda: evaluation.paired_difference([], []), VE, "generations"),
    # hf_gpt2
    ("hf_gpt2: config_from_hf an int", lambda: hf_gpt2.config_from_hf(3), TE, "hf_config"),
    ("hf_gpt2: config_from_hf missing field", lambda: hf_gpt2.config_from_hf({}), VE, "vocab_size"),
    ("hf_gpt2: config_from_hf activation", lambda: hf_gpt2.config_from_hf(_hf_config(activation_function="relu")),
     VE, "activation_function"),
    ("hf_gpt2: config_from_hf n_inner", lambda: hf_gpt2.config_from_hf(_hf_config(n_inner=10)), VE, "n_inner"),
    ("hf_gpt2: config_from_hf n_layer=0", lambda: hf_gpt2.config_from_hf(_hf_config(n_layer=0)), VE, "n_layer"),
    ("hf_gpt2: config_from_hf n_embd float", lambda: hf_gpt2.config_from_hf(_hf_config(n_embd=8.0)), TE, "n_embd"),
    ("hf_gpt2: gpt_key an int", lambda: hf_gpt2.gpt_key(3), TE, "hf_key"),
    ("hf_gpt2: state_dict a list", lambda: hf_gpt2.gpt_state_dict_from_hf([], _tiny_gpt_config()), TE,
     "hf_state"),
    ("hf_gpt2: state_dict config a dict", lambda: hf_gpt2.gpt_state_dict_from_hf({}, _hf_config()), TE, "config"),
    ("hf_gpt2: state_dict value a list", lambda: hf_gpt2.gpt_state_dict_from_hf({"wte.weight": [1.0]},
                                                                                _tiny_gpt_config()), TE,
     "wte.weight"),
    ("hf_gpt2: state_dict missing keys", lambda: hf_gpt2.gpt_state_dict_from_hf({}, _tiny_gpt_config()), VE,
     "missing"),
    ("hf_gpt2: state_dict shape", lambda: hf_gpt2.gpt_state_dict_from_hf({**_hf_state(), "wte.weight":
                                                                          torch.zeros(3, 8)}, _tiny_gpt_config()),
     VE, "wte.weight"),
    ("hf_gpt2: state_dict extra layer", lambda: hf_gpt2.gpt_state_dict_from_hf({**_hf_state(), "h.5.ln_1.weight":
                                                                                torch.ones(8)}, _tiny_gpt_config()),
     VE, "h.5.ln_1.weight"),
    ("hf_gpt2: state_dict post-norm", lambda: hf_gpt2.gpt_state_dict_from_hf(
        _hf_state(), _tiny_gpt_config(norm_position="post")), VE, "norm_position"),
    ("hf_gpt2: load_hf_state_dict model", lambda: hf_gpt2.load_hf_state_dict(_mlp(), _hf_state()), TE, "model"),
    ("validate: check_module a str", lambda: validate.check_module("model", "gpt"), TypeError, "model"),
    ("validate: check_path an int", lambda: validate.check_path("folder", 3), TypeError, "folder"),
    ("validate: check_path None when required", lambda: validate.check_path("folder", None), TypeError, "folder"),
    # -- data / download / sources ---------------------------------------------------------------
    ("data: fetch name int", lambda: data.fetch(3), TypeError, "name"),
    ("data: fetch unknown name", lambda: data.fetch("no-such-file"), ValueError, "no-such-file"),
    ("data: fetch retries 0", lambda: data.fetch("the_verdict", retries=0), ValueError, "retries"),
    ("data: fetch retries float", lambda: data.fetch("the_verdict", retries=1.5), TypeError, "retries"),
    ("data: fetch deadline 0", lambda: data.fetch("the_verdict", deadline=0), ValueError, "deadline"),
    ("data: fetch deadline nan", lambda: data.fetch("the_verdict", deadline=nan), ValueError, "deadline"),
    ("data: fetch deadline str", lambda: data.fetch("the_verdict", deadline="1"), TypeError, "deadline"),
    ("data: fetch timeout str", lambda: data.fetch("the_verdict", timeout="x"), TypeError, "timeout"),
    ("data: fetch timeout triple", lambda: data.fetch("the_verdict", timeout=(1, 2, 3)), ValueError, "timeout"),
    ("data: fetch timeout negative", lambda: data.fetch("the_verdict", timeout=-1), ValueError, "timeout"),
    ("data: fetch backoff negative", lambda: data.fetch("the_verdict", backoff=-1), ValueError, "backoff"),
    ("data: fetch cache_dir int", lambda: data.fetch("the_verdict", cache_dir=3), TypeError, "cache_dir"),
    ("data: fetch cache_dir empty", lambda: data.fetch("the_verdict", cache_dir=""), ValueError, "cache_dir"),
    ("data: fetch mirror int", lambda: data.fetch("the_verdict", mirror=3), TypeError, "mirror"),
    ("data: fetch url int", lambda: data.fetch("the_verdict", url=3), TypeError, "url"),
    ("data: fetch_source not a source", lambda: download.fetch_source("the_verdict"), TypeError, "source"),
    ("data: DataSource bad sha256", lambda: sources.DataSource("n", "u", "abc", 1, "f", "l"), ValueError, "sha256"),
    ("data: DataSource negative size", lambda: sources.DataSource("n", "u", "0" * 64, -1, "f", "l"),
     ValueError, "size"),
    ("data: DataSource float size", lambda: sources.DataSource("n", "u", "0" * 64, 1.0, "f", "l"), TypeError, "size"),
    ("data: DataSource path filename", lambda: sources.DataSource("n", "u", "0" * 64, 1, "../evil", "l"),
     ValueError, "file name"),
    ("data: DataSource name int", lambda: sources.DataSource(3, "u", "0" * 64, 1, "f", "l"), TypeError, "name"),
    ("data: clean_names a str", lambda: data.clean_names("asha"), TypeError, "raw"),
    ("data: clean_names bytes", lambda: data.clean_names(b"asha"), TypeError, "raw"),
    ("data: clean_names None", lambda: data.clean_names(None), TypeError, "raw"),
    ("data: clean_names int entry", lambda: data.clean_names(["asha", 3]), TypeError, "raw[1]"),
    ("data: clean_names min_len 0", lambda: data.clean_names(["asha"], min_len=0), ValueError, "min_len"),
    ("data: clean_names min_len float", lambda: data.clean_names(["asha"], min_len=2.0), TypeError, "min_len"),
    ("data: clean_names max_len < min_len", lambda: data.clean_names(["asha"], min_len=5, max_len=3),
     ValueError, "max_len"),
    ("data: load_text name int", lambda: data.load_text(3), TypeError, "name"),
    ("data: load_indian_names min_len bool", lambda: data.load_indian_names(min_len=True), TypeError, "min_len"),
    # -- chat -------------------------------------------------------------------------------------
    ("chat: AssistantTokenizer base str", lambda: chat.AssistantTokenizer("abc"), TypeError, "base"),
    ("chat: encode int", lambda: _tok().encode(3), TypeError, "text"),
    ("chat: encode out-of-vocabulary char", lambda: _tok().encode("ab\u00eb"), ValueError, "index 2"),
    ("chat: encode a typed end marker", lambda: _tok().encode("hi<|endoftext|>"), ValueError, "<|endoftext|>"),
    ("chat: encode a typed response marker", lambda: _tok().encode("a\n\n### Response:\nb"), ValueError,
     "### Response:"),
    ("chat: encode allowed_special bad str", lambda: _tok().encode("a", allowed_special="some"), ValueError,
     "allowed_special"),
    ("chat: encode allowed_special unknown", lambda: _tok().encode("a", allowed_special={"<|x|>"}), ValueError,
     "allowed_special"),
    ("chat: decode float", lambda: _tok().decode([1.7]), TypeError, "ids[0]"),
    ("chat: decode bool", lambda: _tok().decode([True]), TypeError, "ids[0]"),
    ("chat: decode out of range", lambda: _tok().decode([0, 999]), ValueError, "999"),
    ("chat: decode negative", lambda: _tok().decode([-1]), ValueError, "-1"),
    ("chat: decode 2-D tensor", lambda: _tok().decode(T([[1, 2]])), ValueError, "1-D"),
    ("chat: decode float tensor", lambda: _tok().decode(T([1.0])), TypeError, "dtype"),
    ("chat: decode str", lambda: _tok().decode("abc"), TypeError, "ids"),
    ("chat: render_prompt int", lambda: _tok().render_prompt(3), TypeError, "instruction"),
    ("chat: render_prompt with a marker", lambda: _tok().render_prompt("a<|endoftext|>"), ValueError, "instruction"),
    ("chat: render_prompt out-of-vocabulary", lambda: _tok().render_prompt("\u00eb"), ValueError, "instruction"),
    ("chat: render response int", lambda: _tok().render("hi", 3), TypeError, "response"),
    ("chat: render response with a marker", lambda: _tok().render("hi", "### Instruction:\n"), ValueError,
     "response"),
    ("chat: alpaca_text str", lambda: chat.alpaca_text("x"), TypeError, "record"),
    ("chat: alpaca_text no output", lambda: chat.alpaca_text({"instruction": "a"}), ValueError, "output"),
    ("chat: alpaca_text int input", lambda: chat.alpaca_text({"instruction": "a", "input": 3, "output": "b"}),
     TypeError, "input"),
    # -- checkpoint / fingerprint ----------------------------------------------------------------------
    ("checkpoint: train_or_load name escapes", lambda: checkpoint.train_or_load("../x", _gpt(), dict, {}),
     ValueError, "name"),
    ("checkpoint: train_or_load absolute name", lambda: checkpoint.train_or_load("/tmp/x", _gpt(), dict, {}),
     ValueError, "name"),
    ("checkpoint: train_or_load name int", lambda: checkpoint.train_or_load(3, _gpt(), dict, {}), ValueError, "name"),
    ("checkpoint: train_or_load model str", lambda: checkpoint.train_or_load("x", "m", dict, {}), TypeError, "model"),
    ("checkpoint: train_or_load fit int", lambda: checkpoint.train_or_load("x", _gpt(), 3, {}), TypeError, "fit"),
    ("checkpoint: train_or_load cache_dir int", lambda: checkpoint.train_or_load("x", _gpt(), dict, {},
                                                                               cache_dir=3), TypeError, "cache_dir"),
    ("checkpoint: train_or_load key_parts list", lambda: checkpoint.train_or_load("x", _gpt(), dict, [1]),
     TypeError, "key_parts"),
    ("checkpoint: train_or_load key_parts set", lambda: checkpoint.train_or_load("x", _gpt(), dict, {"s": {1}}),
     TypeError, "key_parts"),
    ("checkpoint: cache_key nan", lambda: checkpoint.cache_key({"lr": nan}), ValueError, "key_parts"),
    ("checkpoint: cache_key path", lambda: checkpoint.cache_key({"p": Path("x")}), TypeError, "key_parts"),
    ("checkpoint: cache_key int key", lambda: checkpoint.cache_key({1: 2}), TypeError, "key_parts"),
    ("checkpoint: cache_key code_roots str", lambda: checkpoint.cache_key({}, "vocab"), TypeError, "code_roots"),
    ("checkpoint: cache_key code_roots path", lambda: checkpoint.cache_key({}, ["../data"]), ValueError,
     "code_roots"),
    ("checkpoint: cache_key code_roots unknown", lambda: checkpoint.cache_key({}, ["nope"]), ValueError,
     "code_roots"),
    ("checkpoint: tensor_fingerprint list", lambda: checkpoint.tensor_fingerprint([1, 2]), TypeError, "tensor"),
    ("checkpoint: save_checkpoint meta list", lambda: checkpoint.save_checkpoint(_tmp() / "c", _gpt(), [1]),
     TypeError, "meta"),
    ("checkpoint: save_checkpoint meta tensor", lambda: checkpoint.save_checkpoint(_tmp() / "c", _gpt(),
                                                                                  {"t": T(1.0)}), TypeError, "meta"),
    ("checkpoint: save_checkpoint meta nan", lambda: checkpoint.save_checkpoint(_tmp() / "c", _gpt(), {"x": nan}),
     ValueError, "meta"),
    ("checkpoint: save_checkpoint folder int", lambda: checkpoint.save_checkpoint(3, _gpt(), {}), TypeError, "folder"),
    ("checkpoint: save_checkpoint model str", lambda: checkpoint.save_checkpoint(_tmp() / "c", "m", {}), TypeError,
     "model"),
    ("checkpoint: save_checkpoint onto a file", lambda: checkpoint.save_checkpoint(_tmp_file(), _gpt(), {}),
     ValueError, "is a file"),
    ("checkpoint: save_checkpoint foreign folder", lambda: checkpoint.save_checkpoint(_tmp_file().parent, _gpt(), {}),
     ValueError, "did not write"),
    ("checkpoint: load_checkpoint model str", lambda: checkpoint.load_checkpoint(_tmp(), "m"), TypeError, "model"),
    ("checkpoint: load_checkpoint folder None", lambda: checkpoint.load_checkpoint(None, _gpt()), TypeError, "folder"),
]


# -- the table of valid edge cases that must be accepted ------------------------------------------


@functools.cache
def _tmp_root():
    import tempfile

    return tempfile.TemporaryDirectory(prefix="sweep-")  # removed when the interpreter exits


def _tmp() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(dir=_tmp_root().name))


def _tmp_file() -> Path:
    path = _tmp() / "notes.txt"
    path.write_text("not a checkpoint")
    return path


def _fit_alpha0_and_generate():
    model = bigram.BigramLM(bigram.BigramConfig(vocab_size=3, alpha=0.0)).fit(T([0, 1]), T([1, 0]))
    out = sampling.generate(model, T([[0]]), 4, greedy=True)  # -inf logits for unseen pairs are fine
    assert out.tolist() == [[0, 1, 0, 1, 0]]
    out = sampling.generate(model, T([[0]]), 4, generator=torch.Generator().manual_seed(0))
    assert out.tolist() == [[0, 1, 0, 1, 0]]


def _eq(got, want):
    assert got == want, (got, want)


GOOD: list[tuple[str, object]] = [
    ("validate: check_float int", lambda: _eq(validate.check_float("lr", 1), 1.0)),
    ("validate: check_id_list range", lambda: _eq(validate.check_id_list("ids", range(3), 3), [0, 1, 2])),
    ("validate: check_id_list int32 tensor", lambda: _eq(validate.check_id_list("ids", T([1, 2], dtype=torch.int32)),
                                                         [1, 2])),
    ("validate: check_id_list empty", lambda: _eq(validate.check_id_list("ids", [], 3), [])),
    ("vocab: decode tensor", lambda: _eq(_vocab().decode(T([0, 1])), "ab")),
    ("vocab: decode int32 tensor", lambda: _eq(_vocab().decode(T([2, 1], dtype=torch.int32)), "cb")),
    ("vocab: decode tuple", lambda: _eq(_vocab().decode((0, 2)), "ac")),
    ("vocab: decode range", lambda: _eq(_vocab().decode(range(3)), "abc")),
    ("vocab: decode empty", lambda: _eq(_vocab().decode([]), "")),
    ("vocab: decode a row of a 2-D tensor", lambda: _eq(_vocab().decode(T([[0, 1]])[0]), "ab")),
    ("vocab: encode empty", lambda: _eq(_vocab().encode(""), [])),
    ("vocab: from_text iterable of str", lambda: _eq(vocab.CharVocab.from_text(["ab", "c"]).itos, ["a", "b", "c"])),
    ("bpe: decode tensor", lambda: _eq(_bpe().decode(T(_bpe().encode("hello"))), "hello")),
    ("bpe: decode empty", lambda: _eq(_bpe().decode([]), "")),
    ("bpe: encode empty", lambda: _eq(_bpe().encode(""), [])),
    ("byte_bpe: decode tensor", lambda: _eq(_bbpe().decode(T([104, 105])), "hi")),
    ("byte_bpe: decode_bytes empty", lambda: _eq(_bbpe().decode_bytes([]), b"")),
    ("byte_bpe: encode empty", lambda: _eq(_bbpe().encode(""), [])),
    ("windows: TokenStream int32 ids", lambda: _eq(windows.TokenStream(torch.arange(5, dtype=torch.int32), 2)
                                                   .ids.dtype, torch.long)),
    ("windows: name_windows tensor word", lambda: _eq(windows.name_windows([T([1, 2])], 2)[1].tolist(), [1, 2, 0])),
    ("windows: name_windows tuple word", lambda: _eq(windows.name_windows([(1, 2)], 2)[1].tolist(), [1, 2, 0])),
    ("windows: name_windows empty word", lambda: _eq(windows.name_windows([[]], 2)[1].tolist(), [0])),
    ("windows: split_by_position list", lambda: _eq(windows.split_by_position(list(range(10))),
                                                    (list(range(9)), [9]))),
    ("windows: WindowDataset ignored targets", lambda: windows.WindowDataset(T([[0, 1]]), T([lm.IGNORE_INDEX]))),
    ("train: TrainConfig int lr", lambda: _eq(train.TrainConfig(lr=1).lr, 1.0)),
    ("train: TrainConfig list betas", lambda: _eq(train.TrainConfig(betas=[0.9, 0.95]).betas, (0.9, 0.95))),
    ("train: TrainConfig int grad_clip, min_lr=0", lambda: train.TrainConfig(grad_clip=1, min_lr=0)),
    ("train: TrainConfig warmup = max_steps - 1", lambda: train.TrainConfig(max_steps=10, warmup_steps=9)),
    ("train: learning_rate step 0", lambda: _eq(train.learning_rate(0, _cfg(schedule="constant")), 1e-3)),
    ("gpt: GPTConfig int dropout", lambda: _tiny_gpt_config(dropout=0)),
    ("gpt: forward T=1", lambda: _gpt()(T([[0]]))),
    ("mlp: MLPConfig int dropout", lambda: mlp.MLPConfig(5, dropout=0)),
    ("bigram: alpha=0, -inf logits", _fit_alpha0_and_generate),
    ("sampling: max_new_tokens=0", lambda: _eq(sampling.generate(_gpt(), T([[1]]), 0).tolist(), [[1]])),
    ("sampling: int temperature, top_k > V, top_p=1", lambda: sampling.generate(_gpt(), T([[1]]), 2, temperature=1,
                                                                                top_k=100, top_p=1)),
    ("sampling: window model with pad_id", lambda: sampling.generate(_mlp(), T([[1]]), 2, pad_id=0)),
    ("dpo: dpo_loss int beta", lambda: dpo.dpo_loss(*[torch.zeros(2)] * 4, 1)),
    ("dpo: DPOConfig int beta", lambda: _eq(dpo.DPOConfig(beta=1).beta, 1.0)),
    ("sft: SFTDataset bool mask", lambda: _eq(sft.SFTDataset(_rendered(), pad_id=0).Y.tolist(), [[-100, 3, 4]])),
    ("sft: text_loss vocab_limit = V", lambda: sft.text_loss(_gpt(), torch.arange(20) % 7, vocab_limit=7)),
    ("tasks: QualityMix ints", lambda: tasks.QualityMix(good=1, terse=0, wrong=0, rude=0, insult_compliance=0)),
    ("tasks: TaskWords lists", lambda: _eq(tasks.TaskWords(["a"], ["b"]).train, ("a",))),
    ("task_data: tasks a list", lambda: _eq(len(task_data.make_eval_prompts(1, _words(), tasks=["add"])), 1)),
    ("grading: extract_answer empty", lambda: _eq(grading.extract_answer("add", ""), None)),
    ("grading: grade an Example", lambda: grading.grade(task_data.HANDMADE[0], "Gladly: 5.")),
    ("evaluation: greedy ignores temperature", lambda: evaluation.generate_responses(
        _assistant_gpt(), _tok(), _prompts(), temperature=0.0, max_new_tokens=2)),
    ("positional: int base", lambda: positional.sinusoidal_positions(3, 5, base=100)),
    ("positional: rope int32 positions", lambda: positional.apply_rope(torch.ones(2, 4),
                                                                       positions=T([0, 1], dtype=torch.int32))),
    ("attention: causal_mask(1)", lambda: _eq(attention.causal_mask(1).tolist(), [[True]])),
    ("chat: encode empty text", lambda: _eq(_tok().encode(""), [])),
    ("chat: decode a tensor", lambda: _eq(_tok().decode(T([0, 1])), _tok().decode([0, 1]))),
    ("chat: decode a range", lambda: _tok().decode(range(_tok().vocab_size))),
    ("chat: encode allowed_special all", lambda: _eq(_tok().encode("<|endoftext|>", allowed_special="all"),
                                                     [_tok().eot_id])),
    ("chat: alpaca_text empty input", lambda: chat.alpaca_text({"instruction": "a", "input": "", "output": "b"})),
    ("data: clean_names a tuple", lambda: data.clean_names(("asha", "ravi"))),
    ("data: fetch a cached mirror file", lambda: data.fetch("the_verdict").is_file()),
    ("checkpoint: cache_key tuple equals list", lambda: _eq(checkpoint.cache_key({"a": (1, 2)}),
                                                            checkpoint.cache_key({"a": [1, 2]}))),
    ("checkpoint: cache_key tensor and dataclass", lambda: checkpoint.cache_key({"t": T([1, 2]),
                                                                                "c": _tiny_gpt_config()})),
    ("checkpoint: save into an empty folder", lambda: checkpoint.save_checkpoint(_tmp(), _gpt(), {"a": [1, 2.5]})),
]


def counts_by_module() -> dict[str, tuple[int, int]]:
    """``{module: (bad cases, good cases)}``, from the ids' ``"<module>: "`` prefixes."""
    bad = Counter(case[0].split(":")[0] for case in BAD)
    good = Counter(case[0].split(":")[0] for case in GOOD)
    return {m: (bad[m], good[m]) for m in sorted(set(bad) | set(good))}


# -- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("thunk, error, fragment", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_raises_a_named_error(thunk, error, fragment):
    assert error in (TypeError, ValueError, FloatingPointError)
    with pytest.raises(Exception) as info:
        thunk()
    # exact type: a KeyError or IndexError (ValueError/LookupError subclasses) does not pass as ValueError
    assert type(info.value) is error, f"expected {error.__name__}, got {type(info.value).__name__}: {info.value}"
    assert fragment in str(info.value), f"message does not name {fragment!r}: {info.value}"


@pytest.mark.parametrize("thunk", [c[1] for c in GOOD], ids=[c[0] for c in GOOD])
def test_valid_edge_case_is_accepted(thunk):
    thunk()


def test_the_tables_are_large_and_ids_unique():
    assert len(BAD) >= 200
    assert len({c[0] for c in BAD}) == len(BAD) and len({c[0] for c in GOOD}) == len(GOOD)


if __name__ == "__main__":
    table = counts_by_module()
    print(f"{'module':<12} {'bad':>5} {'good':>5}")
    for module, (n_bad, n_good) in table.items():
        print(f"{module:<12} {n_bad:>5} {n_good:>5}")
    print(f"{'total':<12} {len(BAD):>5} {len(GOOD):>5}")
