"""GPT-2's four sizes, what they cost, and their published weights in the book's GPT.

Taught in chapter 9 (from our GPT to GPT-2). The architecture is chapter 4's
`llmscratch.gpt.GPT` with GPT-2's options (learned positions, pre-norm, biases, tied
head, tanh GELU); this module adds what the real model needs around it:

* `gpt2_config`: the `GPTConfig` of ``"gpt2"``, ``"gpt2-medium"``, ``"gpt2-large"``,
  ``"gpt2-xl"`` (Radford et al. 2019, table 2; the layer counts and widths of the
  released checkpoints).
* `parameter_count`, `flops_per_token`, `activation_bytes`: the cost of a config,
  computed from its sizes (counts checked against the built models in the tests, FLOPs
  against ``torch.utils.flop_counter``).
* `load_gpt2`: the published weights, from a local folder or downloaded with
  ``huggingface_hub`` at a pinned revision, mapped by :mod:`llmscratch.hf_gpt2`.
  Nothing is unpickled: the weights are read with ``safetensors``.

Held-out loss in bits per character, the unit that compares models with different
tokenizers, is :func:`llmscratch.bpc.bits_per_character`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file

from .gpt import GPT, GPTConfig
from .hf_gpt2 import config_from_hf, gpt_state_dict_from_hf
from .validate import check_positive_int

GPT2_SIZES: dict[str, tuple[int, int, int]] = {
    "gpt2": (12, 12, 768),
    "gpt2-medium": (24, 16, 1024),
    "gpt2-large": (36, 20, 1280),
    "gpt2-xl": (48, 25, 1600),
}
"""``(n_layer, n_head, n_embd)`` of each released size; all have V = 50,257 and T = 1,024."""

PUBLISHED_PARAMS_M = {"gpt2": 124, "gpt2-medium": 355, "gpt2-large": 774, "gpt2-xl": 1558}
"""Parameter counts in millions as the model cards give them (the paper's table 2 says
117M, 345M, 762M and 1542M, an undercount that OpenAI later corrected)."""

HUB_REPOS = {name: f"openai-community/{name}" for name in GPT2_SIZES}
HUB_REVISIONS = {
    "gpt2": "607a30d783dfa663caf39e06633721c8d4cfcd7e",
    "gpt2-medium": "6dcaa7a952f72f9298047fd5137cd6e4f05f41da",
    "gpt2-large": "32b71b12589c2f8d625668d2335a01cac3249519",
    "gpt2-xl": "15ea56dee5df4983c59b2538573817e1667135e2",
}
"""The Hub commit each size is downloaded at, so a re-upload cannot change the weights."""

WEIGHTS_ENV = "LLMSCRATCH_GPT2_DIR"
"""Environment variable naming a folder with one sub-folder per size (``gpt2/``, ...),
each holding ``config.json`` and ``model.safetensors`` as the Hub stores them."""

FILES = ("config.json", "model.safetensors")


class GPT2WeightsUnavailable(FileNotFoundError):
    """The published weights are neither in a local folder nor downloadable now."""


def gpt2_config(name: str = "gpt2") -> GPTConfig:
    """The `GPTConfig` of a released GPT-2 size (tied head, biases, learned positions).

    Raises:
        ValueError: if ``name`` is not one of `GPT2_SIZES`.
    """
    if name not in GPT2_SIZES:
        raise ValueError(f"name must be one of {sorted(GPT2_SIZES)}, got {name!r}")
    n_layer, n_head, n_embd = GPT2_SIZES[name]
    return GPTConfig(vocab_size=50257, block_size=1024, n_layer=n_layer, n_head=n_head,
                     n_embd=n_embd, bias=True, tie_weights=True)


def _check_config(config: object) -> GPTConfig:
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    return config


def parameter_count(config: GPTConfig) -> dict[str, int]:
    """Parameters of ``GPT(config)`` by part, from the sizes alone (no model is built).

    With V = vocab_size, T = block_size, C = n_embd, L = n_layer and biases on:
    embeddings ``V*C + T*C``; per block ``12*C**2 + 13*C`` (``c_attn`` C -> 3C and
    ``c_proj`` C -> C: ``4*C**2 + 4*C``; ``c_fc`` C -> 4C and ``c_proj`` 4C -> C:
    ``8*C**2 + 5*C``; two LayerNorms ``4*C``); ``ln_f`` ``2*C``; an untied head ``V*C``.

    Returns:
        ``{"embeddings", "blocks", "ln_f", "lm_head" (0 when tied), "total",
        "non_embedding"}``; ``total`` equals ``GPT(config).num_parameters()``.

    Raises:
        TypeError: if ``config`` is not a GPTConfig.
        ValueError: for a config without GPT-2's layout (learned positions, biases, pre-norm).
    """
    c = _check_config(config)
    if c.pos_encoding != "learned" or not c.bias or c.norm_position != "pre":
        raise ValueError("parameter_count needs GPT-2's layout: pos_encoding='learned', bias=True, norm_position='pre'")
    C = c.n_embd
    parts = {
        "embeddings": c.vocab_size * C + c.block_size * C,
        "blocks": c.n_layer * (12 * C * C + 13 * C),
        "ln_f": 2 * C,
        "lm_head": 0 if c.tie_weights else c.vocab_size * C,
    }
    parts["total"] = sum(parts.values())
    parts["non_embedding"] = parts["blocks"] + parts["ln_f"]
    return parts


def flops_per_token(config: GPTConfig, seq_len: int | None = None) -> dict[str, int]:
    """Floating-point operations per token of one forward pass over ``seq_len`` tokens.

    A matrix product ``(m, k) @ (k, n)`` costs ``2*m*k*n`` FLOPs (a multiply and an add
    per term), so each weight of a Linear layer costs 2 FLOPs per token. Kaplan et al.
    2020 (section 2.1, table 1) count ``2*N`` per token plus an attention term; here:

    * ``weights``: ``2 * (L*12*C**2 + V*C)``, the blocks' matrices and the ``lm_head``
      (the embedding lookups and the biases and LayerNorms are not matrix products);
    * ``attention``: ``4 * L * C * seq_len``, the scores ``q @ k.T`` and the weighted sum
      ``att @ v``, each ``2 * C * seq_len`` per token per layer, computed for every
      pair as our `CausalSelfAttention` does before masking. A kernel that skips the
      masked half needs about half of it (Kaplan's ``2 * n_layer * n_ctx * d_attn``).

    Training costs about three times the forward pass (the backward pass computes two
    products per forward product: gradients for the inputs and for the weights), the
    "6N" of scaling-law papers.

    Args:
        config: the model.
        seq_len: tokens per sequence (default ``config.block_size``).

    Returns:
        ``{"weights", "attention", "forward", "training"}`` in FLOPs per token.

    Raises:
        TypeError, ValueError: for a config that is not a GPTConfig or a ``seq_len``
            outside ``[1, block_size]``.
    """
    c = _check_config(config)
    T = c.block_size if seq_len is None else seq_len
    check_positive_int("seq_len", T)
    if T > c.block_size:
        raise ValueError(f"seq_len must be in [1, block_size={c.block_size}], got {T}")
    C, L = c.n_embd, c.n_layer
    out = {"weights": 2 * (L * 12 * C * C + c.vocab_size * C), "attention": 4 * L * C * T}
    out["forward"] = out["weights"] + out["attention"]
    out["training"] = 3 * out["forward"]
    return out


def activation_bytes(model: GPT, batch_size: int = 1, seq_len: int | None = None) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of one training step.

    Runs ``model``'s forward pass and loss on ``(batch_size, seq_len)`` token ids under
    ``torch.autograd.graph.saved_tensors_hooks`` and adds up what is saved; a view counts
    as its base tensor, a base saved by several operations counts once, and the weights
    are left out. On a model built under ``torch.device("meta")`` nothing is allocated
    (shapes and dtypes only), so GPT-2 xl can be measured on a laptop; the blocks are
    called one by one because `GPT.forward` checks the ids' values, which meta tensors
    do not have.

    Raises:
        TypeError: if ``model`` is not a GPT.
        ValueError: for sizes outside ``[1, ...]`` or ``seq_len > block_size``.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a llmscratch.gpt.GPT, got {type(model).__name__}")
    T = model.config.block_size if seq_len is None else seq_len
    check_positive_int("batch_size", batch_size)
    check_positive_int("seq_len", T)
    if T > model.config.block_size:
        raise ValueError(f"seq_len must be in [1, block_size={model.config.block_size}], got {T}")
    device = next(model.parameters()).device
    idx = torch.zeros(batch_size, T, dtype=torch.long, device=device)
    params = {id(p) for p in model.parameters()}
    seen: dict[int, int] = {}
    keep = []  # hold the bases so that their ids stay unique while counting

    def pack(t: torch.Tensor) -> torch.Tensor:
        base = t if t._base is None else t._base
        if id(base) not in params and id(base) not in seen:
            seen[id(base)] = base.numel() * base.element_size()
            keep.append(base)
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        x = model._embed(idx)  # (B, T, C)
        for block in model.transformer.h:
            x = block(x)
        logits = model.lm_head(model.transformer.ln_f(x))  # (B, T, V)
        model.loss_from_logits(logits, idx)
    return sum(seen.values())


# -- the published weights -----------------------------------------------------------


def _folder_with_files(folder: Path) -> Path | None:
    return folder if all((folder / f).is_file() for f in FILES) else None


def local_weights(name: str = "gpt2") -> Path | None:
    """The folder ``$LLMSCRATCH_GPT2_DIR/<name>`` if it holds both `FILES`, else None.

    Raises:
        ValueError: if ``name`` is not one of `GPT2_SIZES`.
    """
    gpt2_config(name)  # validates the name
    root = os.environ.get(WEIGHTS_ENV)
    return _folder_with_files(Path(root) / name) if root else None


def _how_to_get(name: str) -> str:
    return (f"get them once with\n  hf download {HUB_REPOS[name]} {' '.join(FILES)} "
            f"--revision {HUB_REVISIONS[name]} --local-dir DIR/{name}\n"
            f"and set {WEIGHTS_ENV}=DIR (or pass the folder itself as the model)")


def _download(name: str, cache_dir: str | os.PathLike | None, local_files_only: bool) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        paths = [hf_hub_download(HUB_REPOS[name], f, revision=HUB_REVISIONS[name], cache_dir=cache_dir,
                                 local_files_only=local_files_only) for f in FILES]
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise GPT2WeightsUnavailable(
            f"the {name} weights are not on this machine and could not be downloaded "
            f"({type(exc).__name__}); {_how_to_get(name)}") from None
    return Path(paths[1]).parent


def find_weights(model: str | os.PathLike = "gpt2", *, cache_dir: str | os.PathLike | None = None,
                 local_files_only: bool = False) -> Path:
    """The folder holding ``config.json`` and ``model.safetensors`` for ``model``.

    ``model`` is a folder path, or a size name: then ``$LLMSCRATCH_GPT2_DIR/<name>`` if it
    holds the files, else the Hugging Face cache or a download through
    ``huggingface_hub.hf_hub_download`` at `HUB_REVISIONS` (its cache checks the files
    against the Hub's hashes and shows a progress bar).

    Raises:
        GPT2WeightsUnavailable: a name whose files are neither local nor downloadable
            (offline, or ``local_files_only``), with the command that fetches them.
        FileNotFoundError: a folder that lacks one of the files (named).
        TypeError: if ``model`` is not a str or path.
    """
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a size name or a folder path, got {type(model).__name__}")
    if isinstance(model, str) and model in GPT2_SIZES:
        return local_weights(model) or _download(model, cache_dir, local_files_only)
    folder = Path(model)
    if not folder.is_dir():
        raise FileNotFoundError(f"model must be one of {sorted(GPT2_SIZES)} or a folder; {folder} is neither")
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing}; a GPT-2 folder holds {list(FILES)}")
    return folder


def load_gpt2(model: str | os.PathLike = "gpt2", *, cache_dir: str | os.PathLike | None = None,
              local_files_only: bool = False) -> GPT:
    """GPT-2 with its published weights as the book's `GPT`, in eval mode.

    Reads ``config.json`` (`config_from_hf`) and ``model.safetensors``
    (``safetensors.torch.load_file``: tensors only, no pickle) from `find_weights`, then
    maps the tensors with `llmscratch.hf_gpt2.gpt_state_dict_from_hf` (renamed keys,
    transposed Conv1D weights, tied head, dropped mask buffers). The model is built on
    the ``meta`` device and the file's tensors are assigned as its parameters, so no
    time goes into a random initialisation that would be overwritten.

    Raises:
        GPT2WeightsUnavailable, FileNotFoundError, TypeError: as `find_weights`.
        ValueError: a config or tensors that are not GPT-2's (as `config_from_hf`,
            `llmscratch.hf_gpt2.gpt_state_dict_from_hf`).
    """
    folder = find_weights(model, cache_dir=cache_dir, local_files_only=local_files_only)
    config = config_from_hf(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    state = gpt_state_dict_from_hf(load_file(folder / "model.safetensors"), config)
    with torch.device("meta"):  # no random init of weights about to be replaced (seconds at 124M)
        gpt = GPT(config)
    gpt.load_state_dict(state, strict=True, assign=True)  # the file's tensors become the parameters
    if config.tie_weights:  # assign gives each key its own Parameter; tie them again
        gpt.transformer.wte.weight = gpt.lm_head.weight
    return gpt.eval()
