"""Train the chapter 4 reference GPT (Tiny Shakespeare, characters) from scratch and time it.

The recipe is :func:`llmscratch.recipes.shakespeare_char_gpt`; this script points its
checkpoint cache at an empty temporary folder, so the model really trains.

    python benchmarks/gpt_train.py             # 3 to 6 minutes on 2 CPU cores, by processor

Targets: held-out loss (last 10% of the text, full pass) at most 1.60 nats per
character, training at most 240 s. Prints readable lines, then one line of JSON:
``val_loss_nats``, ``train_seconds``, ``tokens_per_second``, ``n_params``,
``target_val_loss_nats``, ``target_train_seconds``, ``meets_targets``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LLMSCRATCH_DATA_MIRROR", str(ROOT.parent / "shared" / "data"))

from llmscratch.recipes import shakespeare_char_data, shakespeare_gpt_configs  # noqa: E402
from llmscratch.recipes import shakespeare_char_gpt  # noqa: E402

TARGET_VAL_LOSS_NATS = 1.60
TARGET_TRAIN_SECONDS = 240.0


def main() -> int:
    data = shakespeare_char_data()
    model_config, train_config = shakespeare_gpt_configs(data.vocab.vocab_size)
    print(f"model: {model_config}")
    print(f"training: {train_config}")
    print(f"data: {len(data.train_ids):,} training and {len(data.val_ids):,} held-out characters")
    with tempfile.TemporaryDirectory(prefix="llmscratch-gpt-train-") as cache:
        _, meta = shakespeare_char_gpt(progress=False, cache_dir=cache)
    m = meta["measurements"]
    val, seconds = m["final_val"]["loss"], m["train_seconds"]
    print(f"parameters: {m['n_params']:,}  threads: {train_config.num_threads}")
    print(f"held-out loss: {val:.4f} nats/char = {val / math.log(2):.3f} bits/char (target <= {TARGET_VAL_LOSS_NATS})")
    print(f"training time: {seconds:.1f} s (target <= {TARGET_TRAIN_SECONDS:.0f} s), "
          f"{m['tokens_per_second']:,.0f} tokens/s")
    meets = val <= TARGET_VAL_LOSS_NATS and seconds <= TARGET_TRAIN_SECONDS
    print(json.dumps({
        "val_loss_nats": round(val, 4),
        "train_seconds": round(seconds, 1),
        "tokens_per_second": round(m["tokens_per_second"]),
        "n_params": m["n_params"],
        "target_val_loss_nats": TARGET_VAL_LOSS_NATS,
        "target_train_seconds": TARGET_TRAIN_SECONDS,
        "meets_targets": meets,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
