"""A key-value cache for generating with a GPT one token at a time.

Taught in chapter 9 (section "Generating faster: a cache of keys and values"), where
GPT-2 small has to generate at a usable speed on a laptop CPU.

Without a cache, every generated token runs the model over the whole context again:
the keys and values of the earlier tokens are recomputed although they cannot change
(a causal model's outputs at position t depend only on tokens up to t, and the weights
are fixed). The cache keeps, for every layer, the keys ``k`` and values ``v`` of the
tokens seen so far, shaped ``(B, nh, T, hs)``; a new token then only needs its own
query, key and value, and attends over the stored keys. The work per new token drops
from about ``2 N T`` to about ``2 N`` multiply-adds for a model of ``N`` parameters and
a context of ``T`` tokens (plus the attention term, which stays linear in ``T``).

Cached and uncached runs compute the same function in a different order of floating
point operations: their logits agree to float32 rounding (the tests check
``assert_close`` and equal greedy tokens, and equality with ``transformers``'
``generate(use_cache=True)``).

The buffers are allocated once for ``max_len`` positions (at most the model's
``block_size``; the sampler asks for the prompt plus the new tokens); :meth:`LayerKV.update`
writes the new keys and values in place and returns views of the filled part. The
cache belongs to one sequence batch: :class:`~llmscratch.gpt.GPT` advances it by the
number of tokens it has read (:meth:`KVCache.advance`).

Sources: the incremental decoding of Vaswani et al. 2017's decoder; Pope et al. 2023,
"Efficiently Scaling Transformer Inference" (the cache's memory cost,
``2 * n_layer * B * T * C`` numbers).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .validate import check_float_tensor, check_positive_int


class LayerKV:
    """One layer's slice of a :class:`KVCache` (what a block's attention sees).

    Attributes:
        k, v: ``(B, nh, max_len, hs)`` buffers; the first ``cache.length`` positions
            are filled.
    """

    def __init__(self, cache: KVCache, k: Tensor, v: Tensor) -> None:
        self.cache, self.k, self.v = cache, k, v

    @property
    def start(self) -> int:
        """Position of the first new token (the number of tokens already stored)."""
        return self.cache.length

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store the new tokens' keys and values ``(B, nh, Tn, hs)`` after the stored
        ones; return all keys and values so far, ``(B, nh, start + Tn, hs)`` each.

        Raises:
            TypeError: if ``k`` or ``v`` is not a floating-point tensor.
            ValueError: if their shape does not match the cache's ``(B, nh, ., hs)``, or
                ``start + Tn`` exceeds ``max_len``.
        """
        check_float_tensor("k", k)
        check_float_tensor("v", v)
        B, nh, size, hs = self.k.shape
        if k.shape != v.shape or k.dim() != 4 or (k.shape[0], k.shape[1], k.shape[3]) != (B, nh, hs):
            raise ValueError(f"k and v must both have shape ({B}, {nh}, Tn, {hs}), got "
                             f"{tuple(k.shape)} and {tuple(v.shape)}")
        end = self.start + k.shape[2]
        if end > size:
            raise ValueError(f"the cache holds {self.start} tokens; {k.shape[2]} more exceed "
                             f"the cache's max_len={size}")
        self.k[:, :, self.start:end] = k
        self.v[:, :, self.start:end] = v
        return self.k[:, :, :end], self.v[:, :, :end]


class KVCache:
    """Keys and values of every layer for the tokens a GPT has read so far.

    Pass it to :meth:`llmscratch.gpt.GPT.forward` as ``cache=``: the model reads only the
    new tokens ``(B, Tn)``, at positions ``length .. length + Tn - 1``, and advances
    ``length`` by ``Tn``. Make one with :meth:`llmscratch.gpt.GPT.new_kv_cache`.

    Args:
        n_layer, batch_size, n_head, head_size, max_len: the buffers' shape,
            ``n_layer`` times ``(batch_size, n_head, max_len, head_size)`` for keys and
            the same for values; ``max_len`` is the most tokens the cache can hold.
        dtype, device: those of the model's parameters.

    Attributes:
        layers: one :class:`LayerKV` per block.
        length: tokens stored so far (the same in every layer).

    Raises:
        TypeError/ValueError: for a size that is not a positive int.
    """

    def __init__(self, n_layer: int, batch_size: int, n_head: int, head_size: int, max_len: int, *,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> None:
        for name, value in (("n_layer", n_layer), ("batch_size", batch_size), ("n_head", n_head),
                            ("head_size", head_size), ("max_len", max_len)):
            check_positive_int(name, value)
        shape = (batch_size, n_head, max_len, head_size)
        self.layers = [LayerKV(self, torch.zeros(shape, dtype=dtype, device=device),
                               torch.zeros(shape, dtype=dtype, device=device)) for _ in range(n_layer)]
        self.batch_size, self.max_len = batch_size, max_len
        self.length = 0

    def advance(self, n: int) -> None:
        """Count ``n`` more stored tokens (called by the model after every layer has
        stored them).

        Raises:
            ValueError: if ``length + n`` would exceed ``max_len``.
        """
        check_positive_int("n", n)
        if self.length + n > self.max_len:
            raise ValueError(f"the cache holds {self.length} tokens; {n} more exceed max_len={self.max_len}")
        self.length += n

    def num_bytes(self) -> int:
        """Memory of the buffers in bytes (``2 * n_layer * B * nh * max_len * hs`` numbers)."""
        return sum(t.numel() * t.element_size() for layer in self.layers for t in (layer.k, layer.v))
