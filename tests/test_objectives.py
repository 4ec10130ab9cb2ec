"""Tests for llmscratch.objectives.next_token_loss: the loss and the counts the training loop weights by."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmscratch.gpt import GPT, GPTConfig
from llmscratch.lm import IGNORE_INDEX
from llmscratch.mlp import MLPConfig, MLPLanguageModel
from llmscratch.objectives import next_token_loss


def test_window_model_one_target_per_window():
    torch.manual_seed(0)
    model = MLPLanguageModel(MLPConfig(vocab_size=9, block_size=3, n_hidden=8)).eval()
    x, y = torch.randint(9, (5, 3)), torch.randint(9, (5,))
    loss, metrics = next_token_loss(model, (x, y))
    assert metrics == {"count": 5, "tokens": 5}
    torch.testing.assert_close(loss, F.cross_entropy(model(x)[0], y))


def test_sequence_model_ignored_targets_are_not_counted():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=9, block_size=6, n_layer=1, n_head=1, n_embd=8)).eval()
    x, y = torch.randint(9, (2, 6)), torch.randint(9, (2, 6))
    y[0, :4] = IGNORE_INDEX  # a prompt, as SFTDataset masks it
    loss, metrics = next_token_loss(model, (x, y))
    assert metrics == {"count": 8, "tokens": 12}
    logits = model(x)[0]
    kept = y != IGNORE_INDEX
    torch.testing.assert_close(loss, F.cross_entropy(logits[kept], y[kept]))
    assert loss.requires_grad  # the loss the loop differentiates


def test_the_model_checks_the_batch():
    torch.manual_seed(0)
    model = MLPLanguageModel(MLPConfig(vocab_size=9, block_size=3))
    with pytest.raises(ValueError, match="targets must have shape"):
        next_token_loss(model, (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)))
