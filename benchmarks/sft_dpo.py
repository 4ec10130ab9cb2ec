"""Chapters 5 and 6 end to end: fine-tune the chapter 4 GPT into an assistant, align it with DPO.

Loads the chapter 4 model from the checkpoint cache (it must be there already: run
``benchmarks/gpt_train.py`` or build chapter 4 first), then trains the SFT model and the
DPO models of every beta in ``recipes.BETAS`` into an empty temporary cache, so they really
train, and evaluates them as the chapters do:

    python benchmarks/sft_dpo.py                    # about 5 minutes on 2 idle CPU cores
    python benchmarks/sft_dpo.py --cache-dir DIR    # reuse trained models (evaluation only)

Behaviour is measured on held-out prompts (unseen inputs; half with unseen phrasings),
greedily and by sampling at temperature 1 (``evaluation.EVAL_SAMPLES`` per prompt, seeded). The headline
is the sampled measurement: greedy decoding shows only the most likely answer and hides
the minority behaviours (a rude answer one time in ten) that the data taught and that
sampling reveals.

Targets (issue 13): after SFT, greedy exact match on held-out inputs with training
phrasings ``first`` and ``last`` >= 95%, ``compare`` >= 90%, ``upper`` >= 80%
(``TARGET_EXACT_MATCH_SEEN``; unseen phrasings are reported too); format adherence on
held-out prompts >= 95% (greedy and sampled); after DPO (main beta), held-out preference
accuracy >= 90% and a sampled wrong-or-rude rate lower than after SFT by more than two
standard errors of the paired per-prompt difference; all of it within
``TARGET_TOTAL_SECONDS``.

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

import torch  # noqa: E402

from llmscratch.evaluation import (EVAL_SAMPLES, generate_responses, paired_difference,  # noqa: E402
                                   sample_responses, summarise)
from llmscratch.recipes import (BETAS, MAIN_BETA, assistant_dpo, assistant_sft,  # noqa: E402
                                shakespeare_char_gpt, task_words)
from llmscratch.sft import extend_vocab  # noqa: E402
from llmscratch.task_data import make_eval_prompts  # noqa: E402

PROMPTS_PER_TASK = 40
BASE_PROMPTS_EVERY = 20  # the chapter 4 model never stops; 2 prompts per task show it
EVAL_THREADS = 1  # generation of tiny batches: one thread, as the book's pages
TARGET_TOTAL_SECONDS = 300.0  # compute of both chapters (SFT is 2,400 steps); the pages' overhead comes on top
TARGET_EXACT_MATCH_SEEN = {"first": 0.95, "last": 0.95, "compare": 0.90, "upper": 0.80}
TARGET_FORMAT_ADHERENCE = 0.95
TARGET_PREF_ACCURACY = 0.90


def behaviour(model, tokenizer, prompts) -> tuple[dict, dict, list, list]:
    greedy = generate_responses(model, tokenizer, prompts, greedy=True)
    sampled = sample_responses(model, tokenizer, prompts)
    return summarise(greedy), summarise(sampled), greedy, sampled


def show(name: str, g: dict, s: dict) -> None:
    for mode, r in (("greedy", g), (f"sampled x{EVAL_SAMPLES}", s)):
        print(f"  {name:>12} {mode:<11} format {r['format_adherence']:6.1%}  exact {r['exact_match']:6.1%}  "
              f"wrong {r['wrong_rate']:6.1%}  rude {r['rude_rate']:6.1%}  "
              f"wrong-or-rude {r['wrong_or_rude_rate']:6.1%}  "
              f"length {r['mean_length_chars']:5.1f} chars")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", help="keep the SFT and DPO checkpoints here (default: a temporary folder, "
                                            "so they train); a warm cache skips training and its times")
    args = parser.parse_args(argv)
    torch.set_num_threads(EVAL_THREADS)
    start = time.perf_counter()
    base, base_meta = shakespeare_char_gpt(progress=False)
    if base_meta["from_cache"] is False:
        print("note: the chapter 4 model was not cached and has just been trained; its time is excluded")
        start = time.perf_counter()
    prompts = make_eval_prompts(PROMPTS_PER_TASK, task_words(), seed=0)
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="llmscratch-sft-dpo-") as tmp:
        cache = args.cache_dir or tmp
        t = time.perf_counter()
        sft_model, tokenizer, sft_meta = assistant_sft(cache_dir=cache, progress=False)
        sft_seconds = time.perf_counter() - t
        m = sft_meta["measurements"]
        print(f"SFT: {m['n_train_examples']:,} examples, {m['train_seconds']:.1f} s of training "
              f"({sft_seconds:.1f} s with data and forgetting measurement), held-out response loss "
              f"{m['final_val']['loss']:.3f} nats/token")
        print(f"forgetting: held-out Shakespeare {m['shakespeare_val_loss_before']:.3f} -> "
              f"{m['shakespeare_val_loss_after']:.3f} nats/char "
              f"({m['shakespeare_val_loss_after_old_vocab']:.3f} over the 65 old characters only)")

        t = time.perf_counter()
        before = summarise(generate_responses(extend_vocab(base, tokenizer.vocab_size), tokenizer,
                                              prompts[::BASE_PROMPTS_EVERY]))
        sft_g, sft_s, sft_greedy, sft_sampled = behaviour(sft_model, tokenizer, prompts)
        eval_seconds = time.perf_counter() - t
        print(f"behaviour on {len(prompts)} held-out prompts:")
        print(f"  {'chapter 4':>12} {'greedy':<11} format {before['format_adherence']:6.1%}  "
              f"exact {before['exact_match']:6.1%}  ({before['n']} prompts)")
        show("SFT", sft_g, sft_s)

        dpo_seconds, runs = 0.0, {}
        for beta in BETAS:
            t = time.perf_counter()
            policy, _, _, meta = assistant_dpo(beta, sft=(sft_model, tokenizer), cache_dir=cache,
                                               progress=False)
            dpo_seconds += time.perf_counter() - t
            dm = meta["measurements"]
            t = time.perf_counter()
            g, s, greedy, sampled = behaviour(policy, tokenizer, prompts)
            eval_seconds += time.perf_counter() - t
            runs[beta] = dict(meta=dm, greedy=g, sampled=s,
                              paired_sampled=paired_difference(sft_sampled, sampled),
                              paired_greedy=paired_difference(sft_greedy, greedy))
            fv = {**dm["final_val"], "accuracy_by_kind": dm["accuracy_by_kind"]}
            print(f"DPO beta={beta:g}: {dm['train_seconds']:.1f} s, held-out preference accuracy "
                  f"{dm['val']['accuracy'][0]:.1%} -> {fv['accuracy']:.1%} (by kind: "
                  + ", ".join(f"{k} {v:.0%}" for k, v in fv["accuracy_by_kind"].items())
                  + f"), margin {fv['margin']:.2f}, token KL from reference {dm['drift']['token_kl_nats']:.3f} nats")
            show(f"DPO b={beta:g}", g, s)
            p = runs[beta]["paired_sampled"]
            print(f"  sampled wrong-or-rude change vs SFT: {p['difference']:+.1%} +- {p['standard_error']:.1%} "
                  f"(paired over {p['n_prompts']} prompts)")

    total = time.perf_counter() - start
    main_run = runs[MAIN_BETA]
    paired = main_run["paired_sampled"]
    seen = {t: [g.correct for g in sft_greedy if g.prompt.task == t and g.prompt.seen_phrasing]
            for t in TARGET_EXACT_MATCH_SEEN}
    unseen = {t: [g.correct for g in sft_greedy if g.prompt.task == t and not g.prompt.seen_phrasing]
              for t in TARGET_EXACT_MATCH_SEEN}
    seen = {t: sum(v) / len(v) for t, v in seen.items()}
    unseen = {t: sum(v) / len(v) for t, v in unseen.items()}
    print("SFT greedy exact match, held-out inputs: "
          + ", ".join(f"{t} {seen[t]:.0%} seen / {unseen[t]:.0%} unseen phrasings (target {v:.0%} seen)"
                      for t, v in TARGET_EXACT_MATCH_SEEN.items()))
    checks = {
        "total_seconds": total <= TARGET_TOTAL_SECONDS,
        **{f"sft_exact_match_seen_{t}": seen[t] >= v for t, v in TARGET_EXACT_MATCH_SEEN.items()},
        "sft_format_adherence": min(sft_g["format_adherence"], sft_s["format_adherence"]) >= TARGET_FORMAT_ADHERENCE,
        "dpo_val_pref_accuracy": main_run["meta"]["final_val"]["accuracy"] >= TARGET_PREF_ACCURACY,
        "dpo_lower_wrong_or_rude": paired["difference"] < -2 * paired["standard_error"],
    }
    print(f"total: {total:.1f} s (SFT {sft_seconds:.1f} s, DPO x{len(BETAS)} {dpo_seconds:.1f} s, "
          f"evaluation {eval_seconds:.1f} s); target <= {TARGET_TOTAL_SECONDS:.0f} s")
    print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in checks.items()))
    out = {
        "sft_format_adherence": round(sft_s["format_adherence"], 4),
        "sft_format_adherence_greedy": round(sft_g["format_adherence"], 4),
        "base_format_adherence_greedy": round(before["format_adherence"], 4),
        "sft_exact_match": round(sft_s["exact_match"], 4),
        "sft_exact_match_seen_greedy": {t: round(v, 4) for t, v in seen.items()},
        "sft_exact_match_unseen_greedy": {t: round(v, 4) for t, v in unseen.items()},
        "sft_wrong_or_rude_rate": round(sft_s["wrong_or_rude_rate"], 4),
        "sft_rude_rate": round(sft_s["rude_rate"], 4),
        "sft_wrong_or_rude_rate_greedy": round(sft_g["wrong_or_rude_rate"], 4),
        "dpo_beta": MAIN_BETA,
        "dpo_val_pref_accuracy": round(main_run["meta"]["final_val"]["accuracy"], 4),
        "dpo_exact_match": round(main_run["sampled"]["exact_match"], 4),
        "dpo_wrong_or_rude_rate": round(main_run["sampled"]["wrong_or_rude_rate"], 4),
        "dpo_rude_rate": round(main_run["sampled"]["rude_rate"], 4),
        "dpo_wrong_or_rude_rate_greedy": round(main_run["greedy"]["wrong_or_rude_rate"], 4),
        "wrong_or_rude_change": round(paired["difference"], 4),
        "wrong_or_rude_change_standard_error": round(paired["standard_error"], 4),
        "dpo_token_kl_nats": round(main_run["meta"]["drift"]["token_kl_nats"], 4),
        "betas": {f"{b:g}": {"val_pref_accuracy": round(r["meta"]["final_val"]["accuracy"], 4),
                             "token_kl_nats": round(r["meta"]["drift"]["token_kl_nats"], 4),
                             "wrong_or_rude_rate": round(r["sampled"]["wrong_or_rude_rate"], 4),
                             "rude_rate": round(r["sampled"]["rude_rate"], 4),
                             "exact_match": round(r["sampled"]["exact_match"], 4)} for b, r in runs.items()},
        "shakespeare_val_loss_before_nats": round(m["shakespeare_val_loss_before"], 4),
        "shakespeare_val_loss_after_nats": round(m["shakespeare_val_loss_after"], 4),
        "sft_seconds": round(sft_seconds, 1),
        "dpo_seconds": round(dpo_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "total_seconds": round(total, 1),
        "targets": {"total_seconds": TARGET_TOTAL_SECONDS, "sft_format_adherence": TARGET_FORMAT_ADHERENCE,
                    "sft_exact_match_seen": TARGET_EXACT_MATCH_SEEN,
                    "dpo_val_pref_accuracy": TARGET_PREF_ACCURACY,
                    "dpo_lower_wrong_or_rude": "difference < -2 standard errors"},
        "meets_targets": all(checks.values()),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
