"""The generation run of chapter 8: chapter 5's fine-tuning (SFT) done through LoRA.

:func:`lora_assistant_sft` starts where :func:`~llmscratch.recipes.instruct.assistant_sft`
starts (the chapter 4 GPT with the assistant's vocabulary, the same examples, batches
and number of steps) but trains only low-rank updates of the blocks' linear layers
(:func:`~llmscratch.lora.add_lora`) and the rows of the new token ids in ``wte`` and
``lm_head`` (:func:`~llmscratch.token_rows.train_new_token_rows`); every pretrained
number stays frozen. The checkpoint cache stores only those trainable tensors
(:func:`~llmscratch.recipes.adapt.adapter_view`), so loading rebuilds the frozen part
from the chapter 4 weights.
"""

from __future__ import annotations

import dataclasses
import os

from ..chat import AssistantTokenizer
from ..checkpoint import train_or_load
from ..gpt import GPT
from ..lora import add_lora, count_trainable
from ..sft import extend_vocab
from ..token_rows import train_new_token_rows
from ..train import TrainConfig
from .adapt import LORA_TARGETS, LoRAConfig, adapter_view
from .instruct import SFTConfig, fit_sft, sft_configs, sft_datasets, sft_key_parts
from .pretrain import shakespeare_char_data, shakespeare_char_gpt


def lora_sft_configs() -> tuple[LoRAConfig, TrainConfig]:
    """The book's LoRA fine-tuning settings (fresh objects each call).

    Rank 8 on every linear layer of the blocks (attention and MLP), ``alpha = 16``;
    chapter 5's optimiser, batches and 2,400 steps
    (:func:`~llmscratch.recipes.instruct.sft_configs`) except the learning rate: peak
    1e-2 decaying to 1e-3, against chapter 5's 4e-3 to 4e-4. Chosen on the held-out
    loss and the exact-match probe (:class:`~llmscratch.recipes.instruct.ExactMatchProbe`,
    not the pages' evaluation prompts), in trials run when the rate was chosen (chapter 8
    prints the current run's numbers). At 600 steps the rates 4e-3 and 1e-2 gave the
    same held-out loss (0.663 and 0.664 nats per response token) and 2e-2 a worse one
    (0.716); over the full 2,400 steps 4e-3 reached 0.660 and a mean probe exact match
    of 23% on the six checkable tasks, 1e-2 reached 0.600 and 42%.
    """
    _, optim = sft_configs()
    return (LoRAConfig(r=8, alpha=16.0, targets="attn_mlp", seed=0),
            dataclasses.replace(optim, lr=1e-2, min_lr=1e-3))


def lora_assistant_sft(
    lora_config: LoRAConfig | None = None,
    *,
    sft_config: SFTConfig | None = None,
    train_config: TrainConfig | None = None,
    base: tuple[GPT, dict] | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    base_cache_dir: str | os.PathLike | None = None,
) -> tuple[GPT, AssistantTokenizer, dict]:
    """Chapter 5's assistant trained through LoRA, from the checkpoint cache when possible.

    Args:
        lora_config, train_config: override :func:`lora_sft_configs`.
        sft_config: overrides chapter 5's data settings
            (:func:`~llmscratch.recipes.instruct.sft_configs`).
        base: ``(model, meta)`` of the chapter 4 model, if already loaded; not modified.
        progress: show a progress bar.
        cache_dir: the checkpoint cache (it stores only the trainable tensors).
        base_cache_dir: the checkpoint cache of the chapter 4 model.

    Returns:
        ``(model, tokenizer, meta)``: the model in eval mode with its LoRA layers
        unmerged; ``meta["measurements"]`` holds what
        :func:`~llmscratch.recipes.instruct.assistant_sft` records (losses, probe,
        ``shakespeare_val_loss_before`` / ``_after`` / ``_after_old_vocab`` in nats per
        character) plus ``n_trainable``, ``n_parameters`` and ``lora_layers``.
    """
    default_lora, default_train = lora_sft_configs()
    lora_config = lora_config if lora_config is not None else default_lora
    train_config = train_config if train_config is not None else default_train
    sft_config = sft_config if sft_config is not None else sft_configs()[0]
    data = shakespeare_char_data()
    tokenizer = AssistantTokenizer(data.vocab)
    base, base_meta = base if base is not None else shakespeare_char_gpt(progress=progress,
                                                                        cache_dir=base_cache_dir)
    train_set, val_set = sft_datasets(tokenizer, sft_config, base.config.block_size)
    model = extend_vocab(base, tokenizer.vocab_size)
    names = add_lora(model, LORA_TARGETS[lora_config.targets], lora_config.r, lora_config.alpha,
                     seed=lora_config.seed)
    train_new_token_rows(model, tokenizer.base_vocab_size)
    n_trainable, n_parameters = count_trainable(model)

    def fit(_view) -> dict:
        measured = fit_sft(model, tokenizer, train_set, val_set, train_config, text_ids=data.val_ids,
                           loss_before=base_meta["measurements"]["final_val"]["loss"], progress=progress)
        return {**measured, "n_trainable": n_trainable, "n_parameters": n_parameters, "lora_layers": names}

    key_parts = {"lora": lora_config.to_dict(),
                 **sft_key_parts(sft_config, train_config, train_set, val_set, tokenizer, base)}
    name = f"assistant-sft-lora-{lora_config.targets}-r{lora_config.r}-s{lora_config.seed}"
    _, meta = train_or_load(name, adapter_view(model), fit, key_parts, cache_dir=cache_dir,
                            code_roots=("recipes.lora_sft",))
    model.eval()
    return model, tokenizer, meta
