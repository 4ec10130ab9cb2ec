"""Chapter 9: loading GPT-2 small and generating with the book's code, and the BPE GPT run.

    python benchmarks/gpt2.py                 # GPT-2 weights from $LLMSCRATCH_GPT2_DIR/gpt2 if there
    python benchmarks/gpt2.py --train         # also train the BPE GPT into an empty cache (about 1 min)

Loading and generation: with the published weights (``$LLMSCRATCH_GPT2_DIR/gpt2``, see
``llmscratch.gpt2``) it times ``load_gpt2`` and 40 sampled tokens after a 6-token prompt
on 2 threads, with the KV cache (``generate(use_cache=True)``, the CLI's default; best of
three runs) and without it (one run), and checks that both give the same tokens. Without them it says so, and measures the same on a stand-in: a random
``transformers`` GPT-2 small saved with ``save_pretrained`` (same shapes, hence the same
load and generation cost; ``"weights": "random stand-in"`` in the JSON).

Targets (issue 15): load <= 5 s, generation >= 20 tokens/s on 2 cores; BPE GPT training
<= 180 s.

Prints readable lines, then one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LLMSCRATCH_DATA_MIRROR", str(ROOT.parent / "shared" / "data"))
os.environ.setdefault("LLMSCRATCH_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # readable lines, no bars

import torch  # noqa: E402

from llmscratch.cli import gpt2_tokenizer  # noqa: E402
from llmscratch.gpt2 import WEIGHTS_ENV, load_gpt2, local_weights  # noqa: E402
from llmscratch.recipes.bpe_gpt import bpe_gpt  # noqa: E402
from llmscratch.sampling import generate  # noqa: E402

TARGET_LOAD_SECONDS = 5.0
TARGET_TOKENS_PER_SECOND = 20.0
TARGET_BPE_TRAIN_SECONDS = 180.0
NEW_TOKENS = 40


def stand_in(folder: Path) -> Path:
    """A random GPT-2 small in the Hub's file layout."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config()).save_pretrained(folder)
    return folder


def time_gpt2(folder: Path) -> dict:
    torch.set_num_threads(2)
    start = time.perf_counter()
    model = load_gpt2(folder)
    load_seconds = time.perf_counter() - start
    prompt = torch.tensor([gpt2_tokenizer().encode("ROMEO: What light through", allowed_special="none")])

    def run(use_cache: bool) -> tuple[torch.Tensor, float]:
        start = time.perf_counter()
        out = generate(model, prompt, NEW_TOKENS, temperature=0.8, top_k=40,
                       generator=torch.Generator().manual_seed(0), use_cache=use_cache)
        return out, time.perf_counter() - start

    with torch.no_grad():
        generate(model, prompt, 2, generator=torch.Generator().manual_seed(0), use_cache=True)  # warm-up
        cached = [run(True) for _ in range(3)]
        out, seconds = min(cached, key=lambda r: r[1])
        out_uncached, seconds_uncached = run(False)
    if not torch.equal(out, out_uncached):
        raise AssertionError("cached and uncached generation gave different tokens")
    new = out.shape[1] - prompt.shape[1]
    return {"load_seconds": round(load_seconds, 2), "generate_seconds": round(seconds, 2),
            "prompt_tokens": prompt.shape[1], "new_tokens": new, "tokens_per_second": round(new / seconds, 2),
            "tokens_per_second_uncached": round(new / seconds_uncached, 2),
            "speedup_vs_uncached": round(seconds_uncached / seconds, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="train the BPE GPT into an empty temporary cache")
    args = parser.parse_args(argv)
    out: dict = {}
    weights = local_weights("gpt2")
    with tempfile.TemporaryDirectory() as tmp:
        if weights is None:
            print(f"no GPT-2 weights (set {WEIGHTS_ENV}); timing a random stand-in of GPT-2 small's shapes")
            folder, out["weights"] = stand_in(Path(tmp) / "gpt2"), "random stand-in"
        else:
            folder, out["weights"] = weights, "published"
        out.update(time_gpt2(folder))
    print(f"GPT-2 small ({out['weights']}): loaded in {out['load_seconds']:.2f} s; {out['new_tokens']} tokens "
          f"after a {out['prompt_tokens']}-token prompt in {out['generate_seconds']:.1f} s "
          f"({out['tokens_per_second']:.1f} tokens/s with the KV cache, 2 threads); without it "
          f"{out['tokens_per_second_uncached']:.1f} tokens/s ({out['speedup_vs_uncached']:.1f}x slower), same tokens")
    with tempfile.TemporaryDirectory() as tmp:
        _, meta = bpe_gpt(cache_dir=tmp if args.train else None)
    m = meta["measurements"]
    out.update({"bpe_train_seconds": round(m["train_seconds"], 1),
                "bpe_val_bits_per_char": round(m["val_bits_per_char"], 4),
                "bpe_from_cache": meta["from_cache"]})
    print(f"BPE GPT: {m['train_seconds']:.0f} s of training ({'cached' if meta['from_cache'] else 'trained now'}), "
          f"held-out {m['val_bits_per_char']:.3f} bits per character")
    checks = {"load_le_5_s": out["load_seconds"] <= TARGET_LOAD_SECONDS,
              "generation_ge_20_tokens_per_s": out["tokens_per_second"] >= TARGET_TOKENS_PER_SECOND,
              "bpe_train_le_180_s": out["bpe_train_seconds"] <= TARGET_BPE_TRAIN_SECONDS}
    print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in checks.items()))
    out.update({f"target_{k}": v for k, v in checks.items()})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
