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
import torch.nn.functional as F
from torch import nn

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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


class MLPLanguageModel(nn.Module):
    """Embedding, one hidden layer, softmax over the next token (Bengio et al., 2003).

    Args:
        config: an :class:`MLPConfig`.
    """

    fixed_context = True  # reads exactly block_size tokens; the sampler left-pads prompts

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
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
            TypeError: if ``idx`` is not an integer tensor.
            ValueError: if ``idx`` is not ``(B, block_size)``.
        """
        if idx.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"idx must hold integer token ids, got dtype {idx.dtype}")
        if idx.ndim != 2 or idx.shape[1] != self.config.block_size:
            raise ValueError(
                f"idx must have shape (B, block_size={self.config.block_size}), got {tuple(idx.shape)}"
            )
        emb = self.wte(idx)  # (B, T, C)
        x = emb.flatten(1)  # (B, T*C): the window's embeddings side by side
        h = self.drop(self.act(self.hidden(x)))  # (B, H)
        logits = self.lm_head(h)  # (B, V)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss
