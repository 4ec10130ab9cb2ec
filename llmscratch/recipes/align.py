"""The reference runs of chapter 6: the chapter 5 assistant aligned with DPO, for three betas.

Follow ``beta`` from here: :func:`dpo_configs` puts it in a
:class:`~llmscratch.dpo.DPOConfig`; :func:`assistant_dpo` builds the
:class:`~llmscratch.dpo.DPOObjective` with it and hands that objective to the one
training loop (:func:`llmscratch.train.train`), whose result the checkpoint cache
(:func:`llmscratch.checkpoint.train_or_load`) keeps.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict, dataclass

from ..chat import AssistantTokenizer
from ..checkpoint import tensor_fingerprint, train_or_load
from ..dpo import DPOConfig, DPOObjective, PreferenceDataset, drift, frozen_reference, preference_metrics
from ..gpt import GPT
from ..task_data import make_preference_pairs
from ..train import TrainConfig, train
from ..validate import check_int, check_positive_int
from .instruct import assistant_sft, task_words

MAIN_BETA = 0.5
BETAS = (0.1, 0.5, 2.0)  # the comparison of chapter 6, the main run included


@dataclass
class PreferenceDataConfig:
    """The preference pairs of the recipe: counts and seed (:func:`~llmscratch.task_data.make_preference_pairs`).

    Raises:
        TypeError, ValueError: for a count that is not an int >= 1, or a negative seed.
    """

    n_train: int = 2000
    n_val: int = 400
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_train", "n_val"):
            check_positive_int(name, getattr(self, name))
        check_int("seed", self.seed, minimum=0)

    def to_dict(self) -> dict:
        return asdict(self)


def dpo_configs(beta: float = MAIN_BETA) -> tuple[PreferenceDataConfig, DPOConfig, TrainConfig]:
    """The book's DPO settings for one ``beta`` (fresh objects each call).

    80 steps of 32 pairs at a peak learning rate of 1e-4 (1/40 of SFT's), no weight
    decay (it would pull the policy towards zero, not towards the reference), the whole
    held-out set scored every 20 steps, no estimate on training pairs. Held-out
    preference accuracy is above 90% after 20 steps; training longer keeps widening
    the margins while the policy drifts from the reference. Measured when these settings
    were chosen (an earlier build on another machine; chapter 6 prints the current
    run's numbers), at 150 steps: the per-token KL on held-out responses reached 0.5
    nats with beta 0.1 (0.2 with beta 0.5, against 0.058 at 80 steps), exact match fell
    below the SFT model's, and
    requests to be rude got "Gladly: ..." nonsense instead of the refusal; at 3e-4 the
    policy repeated "Gladly" without end. So the run is kept short.
    """
    data = PreferenceDataConfig()
    optim = TrainConfig(max_steps=80, batch_size=32, lr=1e-4, warmup_steps=5, weight_decay=0.0,
                        betas=(0.9, 0.99), grad_clip=1.0, eval_interval=20, eval_batches=None,
                        eval_train=False, eval_batch_size=256, seed=0, num_threads=2)
    return data, DPOConfig(beta=beta), optim


def preference_datasets(tokenizer: AssistantTokenizer, config: PreferenceDataConfig, block_size: int
                        ) -> tuple[PreferenceDataset, PreferenceDataset]:
    """Training pairs (training inputs and phrasings) and held-out pairs (held-out inputs, any phrasing,
    held-out insults; none shares its prompt or its two responses with a training pair)."""
    words = task_words()
    train_pairs = make_preference_pairs(config.n_train, words, seed=config.seed, split="train")
    val_pairs = make_preference_pairs(config.n_val, words, seed=config.seed + 1, split="heldout",
                                      exclude=train_pairs)
    return (PreferenceDataset(tokenizer, train_pairs, block_size=block_size),
            PreferenceDataset(tokenizer, val_pairs, block_size=block_size))


def assistant_dpo(
    beta: float = MAIN_BETA,
    *,
    data_config: PreferenceDataConfig | None = None,
    dpo_config: DPOConfig | None = None,
    train_config: TrainConfig | None = None,
    sft: tuple[GPT, AssistantTokenizer] | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    base_cache_dir: str | os.PathLike | None = None,
) -> tuple[GPT, GPT, AssistantTokenizer, dict]:
    """The DPO-aligned assistant for one ``beta``, from the checkpoint cache when possible.

    The reference is the SFT model of :func:`~llmscratch.recipes.instruct.assistant_sft`
    (given as ``sft``, or loaded from ``cache_dir``, or trained there), frozen; the
    policy starts as a copy of it and is trained by :func:`llmscratch.train.train` with
    :class:`~llmscratch.dpo.DPOObjective`. The cache key covers the configs, the pairs,
    the reference's weights and the code.

    Args:
        beta: DPO's beta (ignored if ``dpo_config`` is given).
        data_config, dpo_config, train_config: override the book's settings (:func:`dpo_configs`).
        sft: ``(model, tokenizer)`` of ``assistant_sft``, if already loaded (default: load
            it from ``cache_dir``). The model is not modified.
        progress: show progress bars.
        cache_dir: the checkpoint cache of the SFT and DPO models.
        base_cache_dir: the checkpoint cache of the chapter 4 model.

    Returns:
        ``(policy, reference, tokenizer, meta)``, both models in eval mode;
        ``meta["measurements"]`` holds the :class:`~llmscratch.train.TrainResult` fields
        (``val["accuracy"]``, ``batch["margin"]``, ``final_val`` on all held-out pairs,
        ...), ``accuracy_by_kind`` (held-out preference accuracy per pair kind, from
        :func:`~llmscratch.dpo.preference_metrics`) and ``drift``
        (:func:`~llmscratch.dpo.drift` on the held-out pairs).
    """
    default_data, default_dpo, default_optim = dpo_configs(beta)
    data_config = data_config if data_config is not None else default_data
    dpo_config = dpo_config if dpo_config is not None else default_dpo
    train_config = train_config if train_config is not None else default_optim
    if sft is None:
        sft_model, tokenizer, _ = assistant_sft(progress=progress, cache_dir=cache_dir, base_cache_dir=base_cache_dir)
    else:
        sft_model, tokenizer = sft
    reference = frozen_reference(sft_model)
    train_set, val_set = preference_datasets(tokenizer, data_config, sft_model.config.block_size)
    policy = copy.deepcopy(sft_model)

    def fit(m: GPT) -> dict:
        objective = DPOObjective(reference, dpo_config.beta)
        result = train(m, objective, train_set, val_set, train_config, progress=progress)
        by_kind = preference_metrics(m, reference, val_set, dpo_config.beta)["accuracy_by_kind"]
        return {**result.to_dict(), "accuracy_by_kind": by_kind, "drift": drift(m, reference, val_set)}

    key_parts = {
        "data": data_config.to_dict(),
        "dpo": dpo_config.to_dict(),
        "train": train_config.to_dict(),
        "pairs": tensor_fingerprint(*train_set.tensors, *val_set.tensors),
        "reference_weights": tensor_fingerprint(*sft_model.state_dict().values()),
    }
    policy, meta = train_or_load(f"assistant-dpo-beta{dpo_config.beta:g}", policy, fit,
                                 json.loads(json.dumps(key_parts)), cache_dir=cache_dir,
                                 code_roots=("recipes.align",))
    policy.eval()
    return policy, reference, tokenizer, meta
