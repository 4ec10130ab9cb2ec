"""Hugging Face GPT-2 checkpoints in the book's `llmscratch.gpt.GPT`.

Maps the state dict of a Hugging Face ``transformers`` ``GPT2LMHeadModel`` (or the
tensors of a ``model.safetensors`` file, such as openai-community/gpt2's) onto
`llmscratch.gpt.GPT`, and its ``GPT2Config`` onto `GPTConfig`. Taught in chapter 9
(GPT-2 and its weights); used from chapter 4 on as a test oracle (tests/test_hf_gpt2.py):
the same weights must give the same logits in both implementations.

The mapping (`gpt_key`): same names, prefixed with ``transformer.`` when the file has
none; ``lm_head.weight`` is ``wte`` when tied. Two differences in layout: the four
Conv1D weights (`CONV1D`) are stored ``(in, out)`` and nn.Linear wants ``(out, in)``, so
they are transposed; the causal-mask buffers ``attn.bias``, ``attn.masked_bias`` of old
checkpoints are dropped. The fused ``c_attn`` packs ``[q | k | v]`` in the same order in
both. Nothing here unpickles: read files with ``safetensors.torch.load_file``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from llmscratch.gpt import GPT, GPTConfig

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
"""Weights HF stores as Conv1D ``(in, out)``; our nn.Linear holds the transpose ``(out, in)``."""

_BUFFER = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")  # causal mask and -1e4 fill, not weights
_TANH_GELU = ("gelu_new", "gelu_pytorch_tanh")  # two names of GELU's tanh approximation
_REQUIRED = ("vocab_size", "n_positions", "n_layer", "n_head", "n_embd")


def config_from_hf(hf_config: Any) -> GPTConfig:
    """The `GPTConfig` of a ``transformers.GPT2Config`` or a plain dict of its fields
    (``config.json``). Missing optional fields take GPT-2's defaults.

    Raises:
        ValueError: naming the field, when one of ``vocab_size``, ``n_positions``,
            ``n_layer``, ``n_head``, ``n_embd`` is missing, or the config asks for what
            our GPT cannot compute: an activation other than tanh GELU (``"gelu_new"``),
            ``layer_norm_epsilon != 1e-5``, ``n_inner`` other than ``4 * n_embd``,
            unscaled or layer-scaled attention, cross-attention, another ``model_type``.
        TypeError: if ``hf_config`` is neither a mapping nor has ``to_dict()``, or a
            field has the wrong type (as :class:`GPTConfig`).
    """
    if hasattr(hf_config, "to_dict"):
        hf_config = hf_config.to_dict()
    if not isinstance(hf_config, Mapping):
        raise TypeError(f"hf_config must be a transformers GPT2Config or a dict, got {type(hf_config).__name__}")
    d = dict(hf_config)
    for name in _REQUIRED:
        if name not in d:
            raise ValueError(f"GPT-2 config lacks the field {name!r}")
    checks = {
        "model_type": (d.get("model_type", "gpt2") == "gpt2", "'gpt2'"),
        "activation_function": (d.get("activation_function", "gelu_new") in _TANH_GELU, "'gelu_new' (tanh GELU)"),
        "layer_norm_epsilon": (d.get("layer_norm_epsilon", 1e-5) == 1e-5, "1e-5 (torch's LayerNorm default)"),
        "n_inner": (d.get("n_inner") in (None, 4 * d["n_embd"]), f"None or 4 * n_embd = {4 * d['n_embd']}"),
        "scale_attn_weights": (d.get("scale_attn_weights", True) is True, "True (scores / sqrt(head size))"),
        "scale_attn_by_inverse_layer_idx": (not d.get("scale_attn_by_inverse_layer_idx", False), "False"),
        "add_cross_attention": (not d.get("add_cross_attention", False), "False (decoder only)"),
    }
    for name, (ok, want) in checks.items():
        if not ok:
            raise ValueError(f"the book's GPT cannot represent {name}={d.get(name)!r}; it needs {want}")
    return GPTConfig(
        vocab_size=d["vocab_size"],
        block_size=d["n_positions"],
        n_layer=d["n_layer"],
        n_head=d["n_head"],
        n_embd=d["n_embd"],
        dropout=0.0,
        bias=True,
        tie_weights=bool(d.get("tie_word_embeddings", True)),
        use_fused_attention=False,
    )


def gpt_key(hf_key: str) -> str | None:
    """Our parameter name for a Hugging Face GPT-2 key, or None for a buffer to drop.

    ``wte.weight`` / ``transformer.wte.weight`` -> ``transformer.wte.weight`` (V, C);
    ``wpe.weight`` -> ``transformer.wpe.weight`` (block_size, C); ``h.{i}.ln_1``,
    ``.attn.c_attn`` (C -> 3C, ``[q | k | v]``), ``.attn.c_proj`` (C -> C), ``.ln_2``,
    ``.mlp.c_fc`` (C -> 4C), ``.mlp.c_proj`` (4C -> C) and ``ln_f`` -> the same name under
    ``transformer.``; ``lm_head.weight`` (V, C) -> ``lm_head.weight``;
    ``h.{i}.attn.bias`` and ``h.{i}.attn.masked_bias`` -> None.

    Raises:
        TypeError: if ``hf_key`` is not a str.
    """
    if not isinstance(hf_key, str):
        raise TypeError(f"hf_key must be a str, got {type(hf_key).__name__}")
    key = hf_key.removeprefix("transformer.")
    if _BUFFER.fullmatch(key):
        return None
    return key if key == "lm_head.weight" else "transformer." + key


def gpt_state_dict_from_hf(hf_state: Mapping[str, Tensor], config: GPTConfig) -> dict[str, Tensor]:
    """Rename, transpose and check a HF GPT-2 state dict for ``GPT(config)``.

    Args:
        hf_state: keys with or without the ``transformer.`` prefix, Conv1D weights
            ``(in, out)``; ``lm_head.weight`` may be absent when ``config.tie_weights``.
        config: a pre-norm, learned-position, biased `GPTConfig` (see `config_from_hf`).

    Returns:
        A dict with exactly the keys of ``GPT(config).state_dict()`` and their shapes
        (Linear weights ``(out, in)``); when tied, ``lm_head.weight`` is ``wte``'s tensor.

    Raises:
        ValueError: a config without GPT-2's layout, a key that maps to no parameter
            (e.g. a layer ``i >= n_layer``), a missing parameter, two keys for one
            parameter, a tied ``lm_head.weight`` different from ``wte``, or a shape
            mismatch (shapes in the file's layout; all named in the message).
        TypeError: if ``hf_state`` is not a mapping of str to tensors or ``config`` not a GPTConfig.
    """
    if not isinstance(hf_state, Mapping):
        raise TypeError(f"hf_state must be a mapping of str to tensors, got {type(hf_state).__name__}")
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    for hf_key, tensor in hf_state.items():
        if not isinstance(tensor, Tensor):
            raise TypeError(f"hf_state[{hf_key!r}] must be a tensor, got {type(tensor).__name__}")
    if config.norm_position != "pre" or config.pos_encoding != "learned" or not config.bias:
        raise ValueError("GPT-2 weights need norm_position='pre', pos_encoding='learned', bias=True")
    with torch.device("meta"):  # shapes and names only, no memory
        expected = {k: v.shape for k, v in GPT(config).state_dict().items()}
    out: dict[str, Tensor] = {}
    unexpected = []
    for hf_key, tensor in hf_state.items():
        key = gpt_key(hf_key)
        if key is None:
            continue
        if key not in expected:
            unexpected.append(hf_key)
            continue
        if key in out:
            raise ValueError(f"two keys map to the parameter {key} (one is {hf_key!r})")
        conv = key.endswith(CONV1D)
        want = tuple(expected[key])[::-1] if conv else tuple(expected[key])  # in the file's layout
        if tuple(tensor.shape) != want:
            raise ValueError(f"shape mismatch for {hf_key!r}: expected {want}, got {tuple(tensor.shape)}")
        out[key] = tensor.t().contiguous() if conv else tensor  # Conv1D (in, out) -> Linear (out, in)
    if unexpected:
        raise ValueError(f"unexpected keys for GPT(n_layer={config.n_layer}): {sorted(unexpected)}")
    if config.tie_weights and "transformer.wte.weight" in out:
        head = out.get("lm_head.weight")
        if head is not None and not torch.equal(head, out["transformer.wte.weight"]):
            raise ValueError("config.tie_weights is True but lm_head.weight differs from wte.weight")
        out["lm_head.weight"] = out["transformer.wte.weight"]
    missing = sorted(set(expected) - set(out))
    if missing:
        raise ValueError(f"missing keys: {missing}")
    return out


def load_hf_state_dict(model: GPT, hf_state: Mapping[str, Tensor]) -> GPT:
    """Load a HF GPT-2 state dict into ``model`` in place (strict) and return it.

    Raises:
        TypeError: if ``model`` is not a GPT (or as `gpt_state_dict_from_hf`).
        ValueError: as `gpt_state_dict_from_hf` with ``model.config``.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a llmscratch.gpt.GPT, got {type(model).__name__}")
    model.load_state_dict(gpt_state_dict_from_hf(hf_state, model.config), strict=True)
    return model
