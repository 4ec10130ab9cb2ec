"""The MLP language model of Bengio et al. (2003), at character level.

Taught in chapter 1 (names) and reused unchanged in chapters 2 (Tiny Shakespeare) and
3 (BPE tokens). The model reads a fixed window of ``block_size`` previous tokens:

.. code-block:: text

    idx (B, T) --Embedding--> (B, T, C) --flatten--> (B, T*C)
        --Linear, activation--> (B, H) --Linear--> logits (B, V)

with ``T = block_size`` (the paper's :math:`n-1`), ``C = n_embd`` (the feature-vector
size :math:`m`), ``H = n_hidden`` (the paper's :math:`h`) and ``V = vocab_size``
(:math:`|V|`). This is eq. (1) of Bengio et al. without the direct input-to-output
connections.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .lm import LanguageModel
from .validate import check_choice, check_float, check_positive_int

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


@dataclass
class MLPConfig:
    """Hyper-parameters of :class:`MLPLanguageModel`.

    Attributes:
        vocab_size: :math:`V`, number of tokens.
        block_size: :math:`T`, context length in tokens.
        n_embd: :math:`C`, embedding size per token.
        n_hidden: :math:`H`, width of the hidden layer.
        activation: ``"tanh"`` (the paper's), ``"relu"`` or ``"gelu"``.
        dropout: probability of zeroing a hidden unit during training, in [0, 1).

    Raises:
        TypeError: for a size that is not an int or a dropout that is not a number.
        ValueError: for a non-positive size, an unknown activation or a dropout outside [0, 1).
    """

    vocab_size: int
    block_size: int = 3
    n_embd: int = 10
    n_hidden: int = 200
    activation: str = "tanh"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_embd", "n_hidden"):
            check_positive_int(name, getattr(self, name))
        check_choice("activation", self.activation, sorted(ACTIVATIONS))
        check_float("dropout", self.dropout, minimum=0.0, maximum=1.0, max_inclusive=False)

    def to_dict(self) -> dict:
        return asdict(self)


class MLPLanguageModel(LanguageModel):
    """Embedding, one hidden layer, softmax over the next token (Bengio et al., 2003).

    A window model in the sense of :mod:`llmscratch.lm`: it reads exactly
    ``block_size`` tokens, and the sampler left-pads shorter prompts.

    Args:
        config: an :class:`MLPConfig`.

    Raises:
        TypeError: if ``config`` is not an MLPConfig.
    """

    fixed_context = True

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        if not isinstance(config, MLPConfig):
            raise TypeError(f"config must be an MLPConfig, got {type(config).__name__}")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.hidden = nn.Linear(config.block_size * config.n_embd, config.n_hidden)
        self.act = ACTIVATIONS[config.activation]()
        self.drop = nn.Dropout(config.dropout)
        self.lm_head = nn.Linear(config.n_hidden, config.vocab_size)
        # Small output weights make every logit near 0 at initialisation, so the first
        # prediction is close to uniform and the initial loss close to ln(V) nats.
        nn.init.normal_(self.lm_head.weight, std=0.01)
        nn.init.zeros_(self.lm_head.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Next-token logits for each context window.

        Args:
            idx: ``(B, T)`` int64 token ids with ``T == block_size``.
            targets: ``(B,)`` int64 next-token ids, or None.

        Returns:
            ``logits`` of shape ``(B, V)`` and the mean cross-entropy loss in nats per
            token (None without targets).

        Raises:
            TypeError, ValueError: as :meth:`~llmscratch.lm.LanguageModel.check_inputs`
                (``idx`` must be ``(B, block_size)`` int64 ids in ``[0, V)``).
        """
        self.check_inputs(idx, targets)
        emb = self.wte(idx)  # (B, T, C)
        x = emb.flatten(1)  # (B, T*C): the window's embeddings side by side
        h = self.drop(self.act(self.hidden(x)))  # (B, H)
        logits = self.lm_head(h)  # (B, V)
        return logits, self.loss_from_logits(logits, targets)
