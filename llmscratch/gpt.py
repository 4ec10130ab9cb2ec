"""A GPT-2 style decoder-only transformer.

Taught in chapter 4 (self-attention and the GPT transformer). Read leaf to root, like
nanoGPT: `GPTConfig` -> `MLP` -> `Block` (attention from `llmscratch.attention`) -> `GPT`.
The optimiser's parameter groups are :func:`llmscratch.train.param_groups`. Parameter names follow the GPT-2
checkpoint (``transformer.wte``, ``transformer.h.0.attn.c_attn``, ``ln_f``, ``lm_head``), so
the published weights map key for key (the checkpoint stores Conv1D weights transposed).

`GPT` follows the language-model contract of :mod:`llmscratch.lm` (a sequence model:
``forward(idx, targets=None) -> (logits (B, T, V), loss)``), so it shares the training
loop, the sampler and the evaluation with the models of chapters 1-3. Chapter 9 adds
inference with a cache of keys and values (``forward(idx, cache=model.new_kv_cache(B))``,
:mod:`llmscratch.kv_cache`).

Notation used for tensor shapes: B batch, T sequence length (<= block_size),
C = n_embd, nh = n_head, V = vocab_size.

Sources: Vaswani et al. 2017 (the transformer block, post-norm); Radford et al. 2019,
"Language Models are Unsupervised Multitask Learners" (GPT-2: pre-norm, final LayerNorm,
GELU, initialisation with residual projections scaled by 1/sqrt(2 * n_layer));
Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture" (pre-norm
vs post-norm).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .attention import CausalSelfAttention
from .kv_cache import KVCache, LayerKV
from .lm import LanguageModel
from .positional import sinusoidal_positions
from .validate import check_bool, check_choice, check_float, check_positive_int

NORM_POSITIONS = ("pre", "post")
POS_ENCODINGS = ("learned", "sinusoidal")


@dataclass
class GPTConfig:
    """Hyper-parameters of a GPT. GPT-2 small (124M) is
    ``GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)``.

    Attributes:
        vocab_size: number of token ids V.
        block_size: longest sequence (context length) the model accepts, in tokens.
        n_layer: number of transformer blocks.
        n_head: attention heads per block; must divide ``n_embd``.
        n_embd: width C of the residual stream.
        dropout: dropout probability in ``[0, 1)`` (embeddings, attention weights, residual branches).
        bias: biases in the Linear layers and LayerNorms (GPT-2: True).
        norm_position: ``"pre"`` (GPT-2) or ``"post"`` (the original transformer); see `Block`.
        pos_encoding: ``"learned"`` (GPT-2, ``nn.Embedding``) or ``"sinusoidal"`` (fixed table).
        use_fused_attention: use torch's fused attention kernel instead of the from-scratch one.
        tie_weights: share one matrix between the token embedding ``wte`` and the output
            layer ``lm_head`` (GPT-2: True; saves ``V * C`` parameters).

    Raises:
        ValueError: on a non-positive size, ``n_embd % n_head != 0``, dropout outside
            ``[0, 1)`` or an unknown option string.
        TypeError: on a field of the wrong type.
    """

    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0
    bias: bool = True
    norm_position: str = "pre"
    pos_encoding: str = "learned"
    use_fused_attention: bool = False
    tie_weights: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            check_positive_int(name, getattr(self, name))
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        check_float("dropout", self.dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
        for name in ("bias", "use_fused_attention", "tie_weights"):
            check_bool(name, getattr(self, name))
        check_choice("norm_position", self.norm_position, NORM_POSITIONS)
        check_choice("pos_encoding", self.pos_encoding, POS_ENCODINGS)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GPTConfig:
        """Inverse of `to_dict`.

        Raises:
            TypeError: if ``d`` is not a mapping (or a field has the wrong type).
            ValueError: naming any unknown key (or a field out of range).
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"d must be a dict of GPTConfig fields, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown GPTConfig keys {unknown}; known keys are {sorted(known)}")
        return cls(**d)


class MLP(nn.Module):
    """The position-wise feed-forward network: Linear C -> 4C, GELU, Linear 4C -> C, dropout.

    Vaswani et al. 2017, section 3.3 (with ReLU); GPT-2 uses GELU in its tanh
    approximation, as here, so the published weights give the published outputs.
    Input and output ``(B, T, C)``.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.gelu(self.c_fc(x))  # (B, T, 4C)
        return self.dropout(self.c_proj(x))  # (B, T, C)


class Block(nn.Module):
    """One transformer block: attention, then MLP, each with a residual connection.

    Pre-norm (GPT-2, ``norm_position="pre"``): normalise the input of each branch and
    leave the residual stream untouched::

        x = x + attn(ln_1(x))
        x = x + mlp(ln_2(x))

    Post-norm (Vaswani et al. 2017, ``norm_position="post"``): normalise after adding::

        x = ln_1(x + attn(x))
        x = ln_2(x + mlp(x))

    Xiong et al. 2020 show why pre-norm trains stably without a learning-rate warm-up:
    its gradients at initialisation stay well-behaved with depth, post-norm's do not.
    Input and output ``(B, T, C)``.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(
            config.n_embd,
            config.n_head,
            dropout=config.dropout,
            bias=config.bias,
            use_fused=config.use_fused_attention,
        )
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self, x: Tensor, return_weights: bool = False, cache: LayerKV | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """``x`` ``(B, T, C)`` -> ``(B, T, C)``; with ``return_weights`` also the
        attention weights ``(B, nh, T, T)``; ``cache``: this layer's keys and values
        (:class:`~llmscratch.kv_cache.LayerKV`, see ``CausalSelfAttention.forward``)."""
        out = self.attn(
            self.ln_1(x) if self.pre_norm else x, return_weights=return_weights, cache=cache
        )
        a, weights = out if return_weights else (out, None)  # a: (B, T, C)
        if self.pre_norm:
            x = x + a
            x = x + self.mlp(self.ln_2(x))
        else:
            x = self.ln_1(x + a)
            x = self.ln_2(x + self.mlp(x))
        return (x, weights) if return_weights else x


class GPT(LanguageModel):
    """A GPT-2 style language model (Radford et al. 2019).

    token ids ``(B, T)`` -> token embeddings ``wte`` + position embeddings -> dropout ->
    ``n_layer`` blocks ``h`` -> final LayerNorm ``ln_f`` -> ``lm_head`` -> logits ``(B, T, V)``.

    * Positions: ``pos_encoding="learned"`` uses ``wpe = nn.Embedding(block_size, C)``;
      ``"sinusoidal"`` adds the fixed table of `sinusoidal_positions`, kept as a
      non-persistent buffer ``pos_table`` (not a parameter, not in the state dict).
      Vaswani et al. scale the token embeddings by ``sqrt(C)``; with GPT-2's init we do
      not, so at init the table (entries in [-1, 1]) outweighs the tokens (std 0.02).
    * ``ln_f``: GPT-2 adds a final LayerNorm because with pre-norm the residual stream
      itself is never normalised. A post-norm block already ends in a LayerNorm, so for
      ``norm_position="post"`` ``ln_f`` is ``nn.Identity()`` (no parameters).
    * Weight tying (``tie_weights=True``, as GPT-2): ``lm_head.weight`` *is* ``wte.weight``;
      the same ``(V, C)`` matrix maps ids to vectors and vectors to logits, and is
      counted once.
    * Initialisation as GPT-2: weights normal(0, 0.02), biases 0, LayerNorm 1 and 0, and
      the projections that write into the residual stream (``c_proj``) normal with std
      ``0.02 / sqrt(2 * n_layer)`` so the stream's variance does not grow with depth.
      The caller seeds with ``torch.manual_seed`` for a reproducible init.

    Raises:
        TypeError: if ``config`` is not a GPTConfig.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = config
        layers: dict[str, nn.Module] = dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd)
        )
        if config.pos_encoding == "learned":
            layers["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        else:
            # (block_size, C)
            table = sinusoidal_positions(config.block_size, config.n_embd)
            self.register_buffer("pos_table", table, persistent=False)
        layers["drop"] = nn.Dropout(config.dropout)
        layers["h"] = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        pre_norm = config.norm_position == "pre"
        layers["ln_f"] = (
            nn.LayerNorm(config.n_embd, bias=config.bias) if pre_norm else nn.Identity()
        )
        self.transformer = nn.ModuleDict(layers)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.transformer.wte.weight = self.lm_head.weight

        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    # -- forward -------------------------------------------------------------------

    def _embed(self, idx: Tensor, start: int = 0) -> Tensor:
        """Token + position embeddings ``(B, T, C)`` of checked ids ``idx``
        ``(B, T)`` at positions ``start .. start + T - 1``."""
        T = idx.shape[1]
        tok = self.transformer.wte(idx)  # (B, T, C)
        if self.config.pos_encoding == "learned":
            pos = self.transformer.wpe(torch.arange(start, start + T, device=idx.device))  # (T, C)
        else:
            pos = self.pos_table[start:start + T]  # (T, C)
        # (B, T, C), positions broadcast over the batch
        return self.transformer.drop(tok + pos)

    def forward(
        self, idx: Tensor, targets: Tensor | None = None, *, cache: KVCache | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Logits for the next token at every position, and the loss if targets are
        given.

        Args:
            idx: token ids ``(B, T)``, int64, ``T <= block_size``.
            targets: optional next-token ids ``(B, T)``; entries equal to -100 are
                ignored (the prompt positions in supervised fine-tuning).
            cache: a :class:`~llmscratch.kv_cache.KVCache` from :meth:`new_kv_cache`
                (eval mode only): ``idx`` are then the tokens after the ``cache.length``
                already read, at positions ``cache.length ..``; the cache stores their
                keys and values and advances by ``T``. The logits equal those of the
                uncached forward over the whole sequence, at the new positions, to float
                rounding (chapter 9).

        Returns:
            ``(logits, loss)``: logits ``(B, T, V)`` (unnormalised log-probabilities);
            loss the mean cross-entropy in nats over the non-ignored positions (a 0-d
            tensor; NaN if every target is ignored), or None without targets.

        Raises:
            TypeError, ValueError: as :meth:`~llmscratch.lm.LanguageModel.check_inputs`
                (``idx`` not 2-D int64, ``T > block_size``, an id outside
                ``[0, vocab_size)``, ``targets`` of another shape than ``idx``).
            TypeError: ``cache`` not a KVCache.
            ValueError: a cache of another batch size or number of layers, new tokens
                that would overflow the cache's ``max_len``, or a cache in training
                mode (nothing is stored then).
        """
        self.check_inputs(idx, targets)
        start = 0 if cache is None else self._check_cache(cache, idx)  # chapter 9's KV cache
        layer_caches = [None] * len(self.transformer.h) if cache is None else cache.layers
        x = self._embed(idx, start)  # (B, T, C)
        for block, layer_cache in zip(self.transformer.h, layer_caches):
            x = block(x, cache=layer_cache)  # (B, T, C)
        if cache is not None:
            cache.advance(idx.shape[1])
        x = self.transformer.ln_f(x)  # (B, T, C)
        logits = self.lm_head(x)  # (B, T, V)

        return logits, self.loss_from_logits(logits, targets)

    def new_kv_cache(self, batch_size: int, max_len: int | None = None) -> KVCache:
        """An empty :class:`~llmscratch.kv_cache.KVCache` for ``batch_size`` sequences
        of up to ``max_len`` tokens (default and at most ``block_size``), in the dtype
        and on the device of the weights.

        Raises:
            TypeError/ValueError: for a size that is not a positive int, or ``max_len >
                block_size``.
        """
        c, p = self.config, self.lm_head.weight
        max_len = c.block_size if max_len is None else check_positive_int("max_len", max_len)
        if max_len > c.block_size:
            raise ValueError(f"max_len={max_len} exceeds block_size={c.block_size}")
        return KVCache(c.n_layer, batch_size, c.n_head, c.n_embd // c.n_head, max_len,
                       dtype=p.dtype, device=p.device)

    def _check_cache(self, cache: KVCache, idx: Tensor) -> int:
        if not isinstance(cache, KVCache):
            raise TypeError(f"cache must be a KVCache (model.new_kv_cache), got {type(cache).__name__}")
        if self.training:
            raise ValueError("the KV cache is for inference: call model.eval() first")
        if cache.batch_size != idx.shape[0] or len(cache.layers) != self.config.n_layer:
            raise ValueError(f"the cache is for {cache.batch_size} sequences and {len(cache.layers)} layers; "
                             f"got {idx.shape[0]} sequences for {self.config.n_layer} layers")
        if cache.length + idx.shape[1] > cache.max_len:
            raise ValueError(f"the cache holds {cache.length} tokens; {idx.shape[1]} more exceed "
                             f"its {cache.max_len} positions")
        return cache.length

    def attention_maps(self, idx: Tensor) -> list[Tensor]:
        """The attention weights of every layer, for heatmaps.

        Returns a list of ``n_layer`` tensors of shape ``(B, nh, T, T)``; entry ``[b, h, i, j]``
        is how much query i of head h attends to key j (each row sums to 1, zero for j > i).
        Runs under the caller's grad mode; wrap in ``torch.no_grad()`` to inspect.
        """
        self.check_inputs(idx)
        x = self._embed(idx)
        maps = []
        for block in self.transformer.h:
            x, weights = block(x, return_weights=True)
            maps.append(weights)
        return maps

    def residual_stream(self, idx: Tensor) -> list[Tensor]:
        """The residual stream, for activation statistics.

        Returns ``n_layer + 1`` tensors of shape ``(B, T, C)``: entry 0 is the input of the
        first block (embeddings), entry l the output of block l (before ``ln_f``), so
        ``lm_head(ln_f(stream[-1]))`` gives the logits.
        """
        self.check_inputs(idx)
        x = self._embed(idx)
        stream = [x]
        for block in self.transformer.h:
            x = block(x)
            stream.append(x)
        return stream

    # -- parameter counts ----------------------------------------------------------

    def parameter_breakdown(self) -> dict[str, int]:
        """Parameter count per part of the model, computed from its tensors.

        Keys: ``token_embedding``, ``position_embedding`` (0 for sinusoidal), ``attention``,
        ``mlp``, ``layernorm`` (all blocks plus ``ln_f``), ``lm_head`` (0 when tied to the
        token embedding). The values add up to ``num_parameters()`` (GPT-2 small:
        124,439,808 in all, 85,056,000 without the embeddings).
        """
        parts = dict.fromkeys(
            ("token_embedding", "position_embedding", "attention", "mlp", "layernorm", "lm_head"), 0
        )
        for name, p in self.named_parameters():  # yields a shared tensor once, under its first name
            if name.startswith("transformer.wte."):
                part = "token_embedding"
            elif name.startswith("transformer.wpe."):
                part = "position_embedding"
            elif ".attn." in name:
                part = "attention"
            elif ".mlp." in name:
                part = "mlp"
            elif ".ln_" in name:
                part = "layernorm"
            elif name.startswith("lm_head."):
                part = "lm_head"
            else:  # pragma: no cover - a new kind of parameter must be given a part
                raise RuntimeError(f"parameter {name} belongs to no part")
            parts[part] += p.numel()
        return parts
