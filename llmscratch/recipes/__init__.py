"""The book's reference runs, defined once so that later chapters load them instead of copying them.

* :mod:`~llmscratch.recipes.pretrain` (chapters 1-4): the MLP on Indian names, the MLP
  and the character GPT on Tiny Shakespeare, and the data they train on.
* :mod:`~llmscratch.recipes.instruct` (chapter 5): the assistant fine-tuned from the
  chapter 4 GPT (SFT), and the task family's word list.
* :mod:`~llmscratch.recipes.align` (chapter 6): the assistant aligned with DPO.
* :mod:`~llmscratch.recipes.classify` (chapter 7): the spam classifiers and their data.
* :mod:`~llmscratch.recipes.adapt` (chapter 8): the spam classifier trained through LoRA.
* :mod:`~llmscratch.recipes.lora_sft` (chapter 8): chapter 5's fine-tuning through LoRA.
* :mod:`~llmscratch.recipes.bpe_gpt` (chapter 9): the BPE GPT and the runs it is compared with.

Every run goes through :func:`llmscratch.checkpoint.train_or_load` under a key that
hashes the code of its own recipe module and what that imports, so a change to a later
chapter's module never retrains an earlier chapter's model. The names imported
below are re-exported for the pages' convenience (documented in their own modules).
"""

from .align import BETAS, MAIN_BETA, PreferenceDataConfig, assistant_dpo, dpo_configs, preference_datasets
from .instruct import (SFTConfig, assistant_sft, assistant_tokenizer, sft_configs, sft_datasets, sft_examples,
                       task_words)
from .pretrain import (
    TRAIN_FRACTION,
    NamesData,
    ShakespeareData,
    names_char_data,
    names_mlp_configs,
    shakespeare_char_data,
    shakespeare_char_gpt,
    shakespeare_gpt_configs,
    shakespeare_mlp_configs,
    train_mlp_cached,
)
