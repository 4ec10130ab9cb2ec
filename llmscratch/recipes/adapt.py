"""The reference runs of chapter 8: chapter 7's spam classifier trained through LoRA.

:func:`lora_spam_classifier` builds chapter 7's classifier (:class:`~llmscratch.classify.GPTClassifier`
on the chapter 4 GPT, mean pooling, the first 64 characters), wraps the chosen linear
layers with :func:`~llmscratch.lora.add_lora` (everything else frozen except the new
head), and trains it through the one training loop. The checkpoint cache
(:func:`llmscratch.checkpoint.train_or_load`) stores only the trainable tensors, the
LoRA factors and the head: it is handed :func:`adapter_view`, a module whose parameters
*are* those tensors, so saving writes just them and loading copies them back into the
model, whose frozen part is rebuilt from the chapter 4 weights.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass

from torch import nn

from ..checkpoint import tensor_fingerprint, train_or_load
from ..classify import ClassificationObjective, GPTClassifier
from ..gpt import GPT
from ..lora import add_lora, count_trainable
from ..train import TrainConfig, train
from ..validate import check_choice, check_float, check_int
from .classify import classifier_train_config, spam_data
from .pretrain import shakespeare_char_gpt

LORA_TARGETS = {
    "attn": ("attn.c_attn", "attn.c_proj"),
    "attn_mlp": ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"),
}


@dataclass
class LoRAConfig:
    """One LoRA run of chapter 8.

    Attributes:
        r: the rank (>= 1).
        alpha: the scale numerator; the update is multiplied by ``alpha / r``.
        targets: ``"attn"`` (the attention's ``c_attn`` and ``c_proj`` of every block)
            or ``"attn_mlp"`` (also the MLP's ``c_fc`` and ``c_proj``).
        seed: seeds the head, the LoRA ``A`` matrices and the minibatches.

    Raises:
        TypeError, ValueError: for a rank < 1, ``alpha <= 0``, unknown targets or a
            negative seed.
    """

    r: int = 8
    alpha: float = 16.0
    targets: str = "attn"
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("r", self.r, minimum=1)
        self.alpha = check_float("alpha", self.alpha, minimum=0.0, min_inclusive=False)
        check_choice("targets", self.targets, tuple(LORA_TARGETS))
        check_int("seed", self.seed, minimum=0)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def name(self) -> str:
        """A readable cache-entry name, e.g. ``spam-lora-attn-r8-s0``."""
        return f"spam-lora-{self.targets}-r{self.r}-s{self.seed}"


def lora_classifier_train_config(seed: int = 0) -> TrainConfig:
    """The optimiser of every chapter 8 LoRA classifier run (a fresh object each call).

    Chapter 7's (:func:`~llmscratch.recipes.classify.classifier_train_config`: the same
    steps, batches, warm-up, clipping and seed) except the peak learning rate, 1e-2
    decaying to 1e-3 instead of 3e-3 to 3e-4. After Adam's first step from ``B = 0`` an
    entry of LoRA's update is about ``alpha / sqrt(3 r d_in)`` times the learning rate
    (chapter 8 derives it), 0.29 at ``alpha = 16``, ``r = 8``, ``d_in = 128``, against
    about 1 for an entry of ``W`` under full fine-tuning: 3e-3 / 0.29 is about 1e-2.
    """
    return dataclasses.replace(classifier_train_config(seed), lr=1e-2, min_lr=1e-3)


def adapter_view(model: nn.Module) -> nn.ParameterDict:
    """A module whose parameters are ``model``'s trainable ones (the same tensors, not
    copies), keyed by their names with ``.`` written ``__``."""
    return nn.ParameterDict({name.replace(".", "__"): p for name, p in model.named_parameters()
                             if p.requires_grad})


def lora_spam_classifier(
    config: LoRAConfig | None = None,
    *,
    train_config: TrainConfig | None = None,
    base: GPT | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[GPTClassifier, dict]:
    """Chapter 7's classifier trained through LoRA on the spam training split (cached).

    Args:
        config: the LoRA settings (default ``LoRAConfig()``).
        train_config: the optimiser (default: :func:`lora_classifier_train_config`
            with the config's seed: chapter 7's steps and batches, so LoRA and full
            fine-tuning see the same data in the same order, at a higher learning rate).
        base: the pretrained GPT (default: the chapter 4 model); not modified.
        progress: show a progress bar.
        cache_dir: the checkpoint cache (it stores only the adapter and the head).

    Returns:
        ``(model, meta)``: the model in eval mode, LoRA layers unmerged;
        ``meta["measurements"]`` holds the :class:`~llmscratch.train.TrainResult` fields,
        ``n_trainable``, ``n_parameters`` and ``lora_layers`` (the wrapped layers' names).
    """
    config = config if config is not None else LoRAConfig()
    train_config = train_config if train_config is not None else lora_classifier_train_config(config.seed)
    data = spam_data(1)
    base = base if base is not None else shakespeare_char_gpt(progress=progress)[0]
    model = GPTClassifier(base, 2, pooling="mean", vocab_size=data.vocab.vocab_size, seed=config.seed)
    names = add_lora(model, LORA_TARGETS[config.targets], config.r, config.alpha, seed=config.seed,
                     train_also=("gpt.lm_head.",))
    n_trainable, n_parameters = count_trainable(model)

    def fit(_view: nn.Module) -> dict:
        result = train(model, ClassificationObjective(), data.train, data.val, train_config, progress=progress)
        return {**result.to_dict(), "n_trainable": n_trainable, "n_parameters": n_parameters,
                "lora_layers": names}

    key_parts = {"config": config.to_dict(), "train": train_config.to_dict(),
                 "data": tensor_fingerprint(data.train.X, data.train.labels, data.val.X, data.val.labels),
                 "base_weights": tensor_fingerprint(*base.state_dict().values())}
    _, meta = train_or_load(config.name, adapter_view(model), fit, key_parts, cache_dir=cache_dir,
                            code_roots=("recipes.adapt",))
    model.eval()
    return model, meta
