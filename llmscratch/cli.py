"""``python -m llmscratch``: run GPT-2 with the book's own code (chapter 9).

Two commands, both with the book's `GPT`, its byte-level BPE (`ByteBPETokenizer` with
GPT-2's ranks) and its sampler (`llmscratch.sampling.generate`):

* ``generate``: continue a prompt and report the speed in tokens per second (with the
  KV cache of :mod:`llmscratch.kv_cache` unless ``--no-cache``);
* ``bpc``: held-out bits per character on Tiny Shakespeare's last 10%, the text every
  chapter holds out, in the unit chapter 4's character model is measured in.

``--model`` is a size (``gpt2``, ``gpt2-medium``, ``gpt2-large``, ``gpt2-xl``: from
``$LLMSCRATCH_GPT2_DIR``, the Hugging Face cache or a download) or a folder with
``config.json`` and ``model.safetensors``. Without the weights the command says how to
get them and exits with status 2. Prompt text is encoded as ordinary text: a literal
``<|endoftext|>`` in it never becomes the special token.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import torch

from .byte_bpe import ByteBPETokenizer
from .data import fetch, load_text
from .bpc import bits_per_character
from .gpt2 import GPT2_SIZES, GPT2WeightsUnavailable, load_gpt2
from .recipes.pretrain import TRAIN_FRACTION
from .sampling import generate


def gpt2_tokenizer() -> ByteBPETokenizer:
    """GPT-2's tokenizer: its 50,000 merges' ranks (``gpt2.tiktoken``) and ``<|endoftext|>``."""
    return ByteBPETokenizer.from_tiktoken_file(fetch("gpt2_tiktoken"))


def heldout_text() -> str:
    """Tiny Shakespeare's last 10% of characters (chapters 2-4 hold out the same text)."""
    text = load_text("tinyshakespeare")
    return text[int(len(text) * TRAIN_FRACTION):]


def _positive(kind):
    def parse(value: str):
        number = kind(value)
        if number <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
        return number
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llmscratch",
                                     description="Run GPT-2 with the book's own code (chapter 9).")
    commands = parser.add_subparsers(dest="command", required=True)
    model_help = f"one of {', '.join(GPT2_SIZES)}, or a folder with config.json and model.safetensors"

    gen = commands.add_parser("generate", help="continue a prompt with GPT-2")
    gen.add_argument("prompt", help="the text to continue")
    gen.add_argument("--model", default="gpt2", help=model_help + " (default: gpt2)")
    gen.add_argument("--max-new-tokens", type=_positive(int), default=40, help="tokens to add (default: 40)")
    gen.add_argument("--temperature", type=_positive(float), default=0.8, help="softmax temperature (default: 0.8)")
    gen.add_argument("--top-k", type=_positive(int), default=40, help="sample from the k likeliest tokens (default: 40)")
    gen.add_argument("--greedy", action="store_true", help="take the likeliest token instead of sampling")
    gen.add_argument("--seed", type=int, default=0, help="seed of the sampler (default: 0)")
    gen.add_argument("--no-cache", action="store_true",
                     help="rerun the model over the whole context for every token (no KV cache; slower, same text)")

    bpc = commands.add_parser("bpc", help="held-out bits per character on Tiny Shakespeare's last 10%%")
    bpc.add_argument("--model", default="gpt2", help=model_help + " (default: gpt2)")
    bpc.add_argument("--max-chars", type=_positive(int), default=None,
                     help="score only the first N held-out characters (default: all 111,540)")
    for sub in (gen, bpc):
        sub.add_argument("--json", action="store_true", help="also print the measurements as one JSON line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the exit status (0 done, 2 bad arguments or no weights)."""
    args = build_parser().parse_args(argv)
    try:
        t0 = time.perf_counter()
        model = load_gpt2(args.model)
        load_seconds = time.perf_counter() - t0
    except (GPT2WeightsUnavailable, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tokenizer = gpt2_tokenizer()
    if args.command == "generate":
        idx = torch.tensor([tokenizer.encode(args.prompt, allowed_special="none")])
        generator = torch.Generator().manual_seed(args.seed)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = generate(model, idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                           greedy=args.greedy, generator=generator, use_cache=not args.no_cache)
        seconds = time.perf_counter() - t0
        new = out.shape[1] - idx.shape[1]
        print(tokenizer.decode(out[0].tolist()))
        result = {"model": str(args.model), "load_seconds": load_seconds, "new_tokens": new,
                  "kv_cache": not args.no_cache, "generate_seconds": seconds, "tokens_per_second": new / seconds}
        print(f"\n{new} tokens in {seconds:.1f} s ({new / seconds:.1f} tokens/s); weights loaded in "
              f"{load_seconds:.1f} s", file=sys.stderr)
    else:
        text = heldout_text()[: args.max_chars]
        ids = torch.tensor(tokenizer.encode(text, allowed_special="none"))
        n_chars = len(text) - len(tokenizer.decode(ids[:1].tolist()))
        t0 = time.perf_counter()
        with torch.no_grad():
            value = bits_per_character(model, ids, n_chars)
        result = {"model": str(args.model), "heldout_chars": n_chars, "heldout_tokens": len(ids),
                  "bits_per_char": value, "eval_seconds": time.perf_counter() - t0}
        print(f"{args.model}: {value:.3f} bits per character on {n_chars:,} held-out characters "
              f"({len(ids):,} tokens)")
    if args.json:
        print(json.dumps(result))
    return 0
