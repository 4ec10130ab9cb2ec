"""What a training step holds (llmscratch.memory.training_memory).

Oracles: the saved tensors of a linear layer, known from its backward formula; a real
torch.optim.AdamW's state after one step; and the rule that a frozen linear layer
whose input needs no gradient saves nothing but its weight.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llmscratch.gpt import GPT, GPTConfig
from llmscratch.lora import add_lora
from llmscratch.memory import StepMemory, training_memory
from llmscratch.objectives import next_token_loss


def sum_objective(model, x):
    return model(x).sum(), {"count": len(x)}


def tiny_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16))


def gpt_batch():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 20, (4, 8), generator=g), torch.randint(0, 20, (4, 8), generator=g)


def test_linear_saves_its_input_and_nothing_else():
    layer = nn.Linear(5, 3)
    x = torch.randn(7, 5)
    m = training_memory(layer, sum_objective, x)
    assert m.saved_activations == x.numel() * 4  # d loss / d W needs x; W itself is a parameter
    assert m.weights == m.gradients == (5 * 3 + 3) * 4
    assert m.adam_state == 2 * m.weights
    assert m.total == m.weights + m.gradients + m.adam_state + m.saved_activations
    assert m.to_dict()["total"] == m.total


def test_frozen_linear_saves_nothing():
    model = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 3))
    model[0].requires_grad_(False)  # its input needs no gradient and neither does its weight
    m = training_memory(model, sum_objective, torch.randn(7, 5))
    assert m.saved_activations == 7 * 4 * 4  # only the second layer's input
    assert m.gradients == (4 * 3 + 3) * 4


def test_adam_state_matches_a_real_adamw():
    model = tiny_gpt()
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("transformer.h.1."))
    m = training_memory(model, next_token_loss, gpt_batch())
    loss, _ = next_token_loss(model, gpt_batch())
    loss.backward()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    opt.step()
    state = sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values()
                if torch.is_tensor(v) and v.dim() > 0)
    assert m.adam_state == state
    assert m.gradients == sum(p.grad.numel() * 4 for p in model.parameters() if p.grad is not None)


def test_lora_on_attention_saves_less_than_full_training():
    full = tiny_gpt()
    lora = tiny_gpt()
    add_lora(lora, ("attn.c_attn", "attn.c_proj"), r=2, alpha=4)
    batch = gpt_batch()
    m_full = training_memory(full, next_token_loss, batch)
    m_lora = training_memory(lora, next_token_loss, batch)
    assert m_lora.gradients < m_full.gradients / 5
    assert m_lora.saved_activations < m_full.saved_activations  # the frozen MLP keeps less


def test_model_is_not_touched():
    model = tiny_gpt().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    training_memory(model, next_token_loss, gpt_batch())
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_deterministic():
    a = training_memory(tiny_gpt(), next_token_loss, gpt_batch())
    b = training_memory(tiny_gpt(), next_token_loss, gpt_batch())
    assert a == b and isinstance(a, StepMemory)


def test_errors():
    with pytest.raises(TypeError, match="model"):
        training_memory("not a model", sum_objective, torch.randn(2, 5))
    with pytest.raises(TypeError, match="objective"):
        training_memory(nn.Linear(5, 3), None, torch.randn(2, 5))
    frozen = nn.Linear(5, 3).requires_grad_(False)
    with pytest.raises(ValueError, match="trainable"):
        training_memory(frozen, sum_objective, torch.randn(2, 5))
