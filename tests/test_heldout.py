"""Held out means held out: no evaluation item equals, or shares its responses with, a training item.

These run on the book's real data and the recipes' own settings (chapters 1, 2, 5 and 6),
from the data mirror; nothing is trained.
"""

import re

import pytest
import torch

from llmscratch import task_data
from llmscratch.recipes import align, instruct, pretrain
from llmscratch.tasks import (HELDOUT_INSULTS, HELDOUT_PLAYS, INSULTS, NO_INPUT_TASKS, TASKS, TRAIN_INSULTS,
                              TRAIN_PLAYS, task_inputs)

EVAL_PER_TASK = 40  # the pages' EVAL_PER_TASK (chapters 5 and 6)


@pytest.fixture(scope="module")
def words():
    return instruct.task_words()


@pytest.fixture(scope="module")
def sft_train(words):
    cfg, _ = instruct.sft_configs()
    examples, _ = instruct.sft_examples(cfg)
    assert cfg.include_handmade
    return examples + list(task_data.HANDMADE)


@pytest.fixture(scope="module")
def dpo_pairs(words):
    cfg, _, _ = align.dpo_configs()
    train = task_data.make_preference_pairs(cfg.n_train, words, seed=cfg.seed, split="train")
    heldout = task_data.make_preference_pairs(cfg.n_val, words, seed=cfg.seed + 1, split="heldout", exclude=train)
    return train, heldout


def test_input_splits_are_disjoint(words):
    assert not set(words.train) & set(words.heldout)
    assert not set(TRAIN_PLAYS) & set(HELDOUT_PLAYS)
    assert not set(TRAIN_INSULTS) & set(HELDOUT_INSULTS) and set(TRAIN_INSULTS) | set(HELDOUT_INSULTS) == set(INSULTS)
    for task in ("add", "compare"):
        assert not set(task_inputs(task, "train", words)) & set(task_inputs(task, "heldout", words))


def test_no_eval_prompt_is_a_training_instruction(words, sft_train, dpo_pairs):
    train_instructions = {e.instruction for e in sft_train} | {p.prompt for p in dpo_pairs[0]}
    for seed in (0, 1, 2):
        prompts = task_data.make_eval_prompts(EVAL_PER_TASK, words, seed=seed)
        assert len(prompts) == EVAL_PER_TASK * len(TASKS)
        shared = [p.instruction for p in prompts if p.instruction in train_instructions]
        assert not shared, shared[:5]
        assert not any(p.seen_phrasing for p in prompts if p.task in NO_INPUT_TASKS)


def test_sft_validation_examples_are_not_training_examples(words, sft_train):
    cfg, _ = instruct.sft_configs()
    _, val = instruct.sft_examples(cfg)
    train_instructions = {e.instruction for e in sft_train}
    assert not [e for e in val if e.instruction in train_instructions]
    rude_train = {e.response for e in sft_train if e.style == "rude"}
    assert not [e for e in val if e.style == "rude" and e.response in rude_train]


def test_handmade_examples_use_training_inputs_only(words):
    for e in task_data.HANDMADE:
        quoted = re.findall(r"'(\w+)'", e.instruction)
        assert not set(quoted) & set(words.heldout), e
        assert not [p for p in HELDOUT_PLAYS if p in e.instruction], e
        assert not [w for w in HELDOUT_INSULTS if w in e.response.lower()], e
        if e.task in ("add", "compare"):
            pair = tuple(int(n) for n in re.findall(r"\d+", e.instruction))
            assert pair not in task_inputs(e.task, "heldout", words), e


def test_heldout_pairs_share_nothing_with_training_pairs(dpo_pairs):
    train, heldout = dpo_pairs
    assert len(heldout) == 400
    triples = {(p.prompt, p.chosen, p.rejected) for p in train}
    responses = {(p.chosen, p.rejected) for p in train}
    prompts = {p.prompt for p in train}
    assert not [p for p in heldout if (p.prompt, p.chosen, p.rejected) in triples]
    assert not [p for p in heldout if (p.chosen, p.rejected) in responses]
    assert not [p for p in heldout if p.prompt in prompts]
    assert {p.kind for p in heldout} == {p.kind for p in train}  # every kind is still held out


def test_recipe_uses_the_disjoint_pairs(words, dpo_pairs):
    """align.preference_datasets builds its held-out set with exclude=training pairs."""
    tok = instruct.assistant_tokenizer()
    cfg, _, _ = align.dpo_configs()
    _, val_set = align.preference_datasets(tok, cfg, block_size=64)
    assert [p.prompt for p in val_set.pairs] == [p.prompt for p in dpo_pairs[1]]


def test_exclude_is_validated(words):
    with pytest.raises(TypeError, match="exclude"):
        task_data.make_preference_pairs(2, words, split="heldout", exclude=["not a pair"])


def test_names_split_by_name_is_disjoint():
    data = pretrain.names_char_data()
    train, val, test = map(set, (data.train_names, data.val_names, data.test_names))
    assert not train & val and not train & test and not val & test


def test_shakespeare_split_by_position_is_disjoint():
    data = pretrain.shakespeare_char_data()
    n = len(data.vocab.encode(data.text))
    assert data.train_ids.numel() + data.val_ids.numel() == n
    ids = torch.tensor(data.vocab.encode(data.text))
    assert torch.equal(torch.cat([data.train_ids, data.val_ids]), ids)  # a cut, not a shuffle
