"""Chapter 8: training only the new tokens' rows, against torch and Hugging Face peft."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llmscratch.gpt import GPT, GPTConfig
from llmscratch.lora import add_lora, count_trainable
from llmscratch.sft import extend_vocab
from llmscratch.token_rows import TrainableRows, train_new_token_rows

peft = pytest.importorskip("peft")


def tiny_gpt(seed=0, tie_weights=False):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16, tie_weights=tie_weights))


def test_embedding_rows_equal_torch_and_only_the_chosen_rows_get_gradients():
    torch.manual_seed(0)
    emb = nn.Embedding(10, 4)
    weight = emb.weight.detach().clone()
    layer = TrainableRows(emb, [7, 2, 9])
    ids = torch.randint(0, 10, (3, 5))
    torch.testing.assert_close(layer(ids), F.embedding(ids, weight), rtol=0, atol=0)  # zero delta: unchanged
    with torch.no_grad():
        layer.delta.normal_()
    expected = weight.clone()
    expected[[7, 2, 9]] += layer.delta.detach()
    torch.testing.assert_close(layer(ids), F.embedding(ids, expected))
    torch.testing.assert_close(layer.weight(), expected)
    layer(torch.arange(10)).sum().backward()
    assert emb.weight.grad is None and not emb.weight.requires_grad
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["delta"]
    torch.testing.assert_close(layer.delta.grad, torch.ones(3, 4))


def test_linear_rows_equal_torch():
    torch.manual_seed(1)
    head = nn.Linear(6, 9, bias=False)
    layer = TrainableRows(head, [8])
    with torch.no_grad():
        layer.delta.normal_()
    w = head.weight.detach().clone()
    w[8] += layer.delta.detach()[0]
    x = torch.randn(2, 3, 6)
    torch.testing.assert_close(layer(x), F.linear(x, w))


class Embedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(12, 5)

    def forward(self, ids):
        return self.wte(ids)


def test_embedding_rows_equal_peft_trainable_tokens():
    torch.manual_seed(2)
    net = Embedder()
    rows = [3, 11, 0]
    ours = TrainableRows(copy.deepcopy(net).wte, rows)
    with torch.no_grad():
        ours.delta.normal_()
    theirs = peft.get_peft_model(copy.deepcopy(net),
                                 peft.TrainableTokensConfig(target_modules=["wte"], token_indices=rows))
    layer = theirs.base_model.model.wte
    with torch.no_grad():  # peft stores the new rows themselves; ours stores their change
        layer.trainable_tokens_delta["default"].copy_(net.wte.weight[rows] + ours.delta)
    ids = torch.randint(0, 12, (4, 6))
    torch.testing.assert_close(ours(ids), theirs(ids))
    n_peft = sum(p.numel() for p in theirs.parameters() if p.requires_grad)
    assert n_peft == ours.delta.numel() == len(rows) * 5


def test_train_new_token_rows_on_an_extended_gpt_keeps_old_logits_and_trains_only_new_rows():
    base = tiny_gpt()
    model = extend_vocab(base, 23)
    names = add_lora(model, ("attn.c_attn", "mlp.c_fc"), 2, 4.0)
    assert train_new_token_rows(model, 20) == ["transformer.wte", "lm_head"]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{n}.lora_{ab}" for n in names for ab in "AB"} | {"transformer.wte.delta", "lm_head.delta"}
    n_trainable, _ = count_trainable(model)
    assert n_trainable == 2 * 2 * (16 + 48 + 16 + 64) + 2 * 3 * 16
    ids = torch.randint(0, 20, (2, 8))
    torch.testing.assert_close(model(ids)[0][..., :20], base(ids)[0])  # untrained: the old model's logits
    logits, _ = model(torch.randint(0, 23, (2, 8)))
    logits.sum().backward()
    assert model.lm_head.delta.grad.abs().sum() > 0 and model.transformer.wte.delta.grad is not None


def test_errors():
    with pytest.raises(TypeError, match="base must be"):
        TrainableRows(nn.Conv1d(2, 2, 1), [0])
    with pytest.raises(ValueError, match="without bias"):
        TrainableRows(nn.Linear(3, 4), [0])
    with pytest.raises(ValueError, match="plain nn.Embedding"):
        TrainableRows(nn.Embedding(4, 3, padding_idx=0), [1])
    with pytest.raises(ValueError, match="at least one"):
        TrainableRows(nn.Embedding(4, 3), [])
    with pytest.raises(ValueError, match="distinct"):
        TrainableRows(nn.Embedding(4, 3), [1, 1])
    with pytest.raises(ValueError, match=r"rows\[i\]"):
        TrainableRows(nn.Embedding(4, 3), [4])
    with pytest.raises(TypeError, match=r"rows\[i\]"):
        TrainableRows(nn.Embedding(4, 3), [1.5])
    with pytest.raises(ValueError, match="first_new_id"):
        train_new_token_rows(tiny_gpt(), 20)
    with pytest.raises(ValueError, match="ties"):
        train_new_token_rows(tiny_gpt(tie_weights=True), 10)
    with pytest.raises(TypeError, match="transformer.wte"):
        train_new_token_rows(nn.Linear(2, 2), 1)
