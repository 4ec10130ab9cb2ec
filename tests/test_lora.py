"""Chapter 8: LoRA from scratch, against Hugging Face peft (no download)."""

import copy

import pytest
import torch
from torch import nn

from llmscratch.classify import GPTClassifier
from llmscratch.gpt import GPT, GPTConfig
from llmscratch.lora import (LoRALinear, add_lora, count_trainable, load_adapter, lora_layers, merge_lora,
                             save_adapter, unmerge_lora)

peft = pytest.importorskip("peft")


def tiny_gpt(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(12, 7)

    def forward(self, x):
        return self.proj(x)


@pytest.mark.parametrize("r,alpha", [(1, 1.0), (4, 8.0), (7, 2.0)])
def test_lora_linear_equals_peft_with_the_same_factors_before_and_after_merging(r, alpha):
    torch.manual_seed(0)
    net = Net()
    ours = copy.deepcopy(net)
    ours.proj = LoRALinear(ours.proj, r, alpha, seed=3)
    with torch.no_grad():
        ours.proj.lora_B.normal_()  # a trained-looking update: B is zero at init
    config = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"], lora_dropout=0.0)
    theirs = peft.get_peft_model(copy.deepcopy(net), config)
    layer = theirs.base_model.model.proj
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(ours.proj.lora_A)
        layer.lora_B["default"].weight.copy_(ours.proj.lora_B)
    assert layer.scaling["default"] == pytest.approx(ours.proj.scaling)
    x = torch.randn(5, 3, 12)
    torch.testing.assert_close(ours(x), theirs(x))
    unmerged = ours(x)
    ours.proj.merge()
    merged_theirs = theirs.merge_and_unload()
    torch.testing.assert_close(ours(x), unmerged, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours(x), merged_theirs(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.proj.base.weight, merged_theirs.proj.weight, rtol=1e-5, atol=1e-6)
    ours.proj.unmerge()
    torch.testing.assert_close(ours.proj.base.weight, net.proj.weight, rtol=1e-5, atol=1e-6)


def test_init_matches_peft_distribution_and_starts_as_the_base_model():
    torch.manual_seed(0)
    net = Net()
    layer = LoRALinear(copy.deepcopy(net.proj), 4, 8.0)
    assert torch.equal(layer.lora_B, torch.zeros(7, 4))
    assert layer.lora_A.abs().max() <= 1 / 12 ** 0.5  # Kaiming-uniform(a=sqrt(5)) bound 1/sqrt(in)
    x = torch.randn(3, 12)
    torch.testing.assert_close(layer(x), net.proj(x), rtol=0, atol=0)
    assert not layer.base.weight.requires_grad and layer.lora_A.requires_grad
    with pytest.raises(ValueError, match="r"):
        LoRALinear(nn.Linear(4, 3), 4, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        LoRALinear(nn.Linear(4, 3), 1, 0.0)
    with pytest.raises(TypeError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(1, 1, 1), 1, 1.0)
    layer.merge()
    with pytest.raises(RuntimeError, match="merged"):
        layer.merge()


def test_add_lora_on_a_gpt_equals_peft_on_the_same_gpt():
    gpt = tiny_gpt()
    targets = ["attn.c_attn", "attn.c_proj"]
    ours = copy.deepcopy(gpt)
    names = add_lora(ours, targets, r=2, alpha=4.0)
    assert names == [f"transformer.h.{i}.attn.{n}" for i in range(2) for n in ("c_attn", "c_proj")]
    trainable, total = count_trainable(ours)
    assert trainable == 2 * (2 * (16 + 48) + 2 * (16 + 16)) and total == trainable + gpt.num_parameters()
    for layer in lora_layers(ours):
        with torch.no_grad():
            layer.lora_B.normal_(std=0.1)
    theirs = peft.get_peft_model(copy.deepcopy(gpt), peft.LoraConfig(r=2, lora_alpha=4.0, target_modules=targets))
    for name in names:
        mine = ours.get_submodule(name)
        other = theirs.base_model.model.get_submodule(name)
        with torch.no_grad():
            other.lora_A["default"].weight.copy_(mine.lora_A)
            other.lora_B["default"].weight.copy_(mine.lora_B)
    idx = torch.randint(0, 20, (3, 8))
    torch.testing.assert_close(ours(idx)[0], theirs(idx)[0])
    before = ours(idx)[0]
    merge_lora(ours)
    torch.testing.assert_close(ours(idx)[0], before, rtol=1e-5, atol=1e-5)
    unmerge_lora(ours)
    torch.testing.assert_close(ours(idx)[0], before, rtol=1e-5, atol=1e-5)


def test_adapter_checkpoint_holds_only_trainable_tensors_and_loads_onto_the_base(tmp_path):
    gpt = tiny_gpt()
    model = GPTClassifier(gpt, 2)
    add_lora(model, ["c_attn"], r=2, alpha=2.0, train_also=("gpt.lm_head.",))
    for layer in lora_layers(model):
        with torch.no_grad():
            layer.lora_B.normal_()
    path = save_adapter(tmp_path / "adapter.safetensors", model, config={"r": 2})
    from safetensors.torch import load_file

    saved = load_file(str(path))
    assert sorted(saved) == sorted([f"gpt.transformer.h.{i}.attn.c_attn.lora_{m}" for i in range(2) for m in "AB"]
                                   + ["gpt.lm_head.weight", "gpt.lm_head.bias"])
    fresh = GPTClassifier(gpt, 2, seed=5)  # another head init: the adapter brings the trained one
    add_lora(fresh, ["c_attn"], r=2, alpha=2.0, train_also=("gpt.lm_head.",))
    assert load_adapter(path, fresh) == {"r": 2}
    idx, lengths = torch.randint(0, 20, (2, 8)), torch.tensor([8, 3])
    torch.testing.assert_close(fresh(idx, lengths), model(idx, lengths), rtol=0, atol=0)
    merge_lora(model)
    with pytest.raises(RuntimeError, match="unmerge"):
        save_adapter(tmp_path / "x.safetensors", model)


def test_add_lora_errors():
    with pytest.raises(ValueError, match="no nn.Linear"):
        add_lora(tiny_gpt(), ["nothing"], r=1, alpha=1.0)
