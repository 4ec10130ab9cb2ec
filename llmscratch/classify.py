"""Classification fine-tuning: a pretrained GPT with a classification head.

Taught in chapter 7. A language model's last layer maps each position's hidden state
``(C,)`` to ``V`` logits over the next token. For a classifier, :class:`GPTClassifier`
replaces that layer by a fresh ``nn.Linear(C, n_classes)``, so the same forward pass
gives class logits at every position ``(B, T, n_classes)``, and pools them into one
row per text ``(B, n_classes)``:

* ``pooling="last"``: the logits at the text's last real position, the only one whose
  causal attention has read every character;
* ``pooling="mean"``: the mean of the logits over the real positions (equal to the
  head applied to the mean hidden state, the head being affine).

The characters: :class:`ClassifierVocab` keeps the chapter 4 ids, adds the characters
that occur often enough in the training texts, and maps every other character to one
unknown id. New rows of the embedding are the mean of the old ones (as
:func:`llmscratch.sft.extend_vocab`, chapter 5). Texts longer than the context are cut
to their first ``block_size`` characters, or read as several windows of
``block_size`` characters whose logits are pooled together (:class:`ClassificationDataset`).

What to train (:func:`set_trainable`): the head only, the last block with the final
LayerNorm and the head, or everything. The objective of the one training loop is
:class:`ClassificationObjective` (cross-entropy over the classes, optionally weighted).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .gpt import GPT
from .sft import extend_vocab
from .validate import check_choice, check_int, check_module, check_positive_int
from .vocab import CharVocab

POOLINGS = ("last", "mean")
TRAINABLE = ("head", "last_block", "all")


class ClassifierVocab:
    """Characters of a pretrained vocabulary, plus frequent new ones, plus one unknown id.

    Ids ``0 .. base.vocab_size - 1`` are ``base``'s, unchanged (the pretrained rows keep
    their meaning); then the characters of ``texts`` that ``base`` lacks and that occur
    at least ``min_count`` times (sorted); then ``unk_id``, which every other character
    becomes. Padding reuses ``unk_id``: padded positions come after the text, which a
    causal model's real positions never see, and pooling skips them.

    Args:
        base: the pretrained :class:`~llmscratch.vocab.CharVocab`.
        texts: the training texts (never validation or test: their characters would leak).
        min_count: how often a new character must occur to get its own id.

    Raises:
        TypeError: if ``base`` is not a CharVocab or ``texts`` not a sequence of str.
        ValueError: if ``min_count`` < 1.
    """

    def __init__(self, base: CharVocab, texts: Sequence[str], *, min_count: int = 3) -> None:
        if not isinstance(base, CharVocab):
            raise TypeError(f"base must be a CharVocab, got {type(base).__name__}")
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a sequence of str")
        check_positive_int("min_count", min_count)
        counts = Counter(ch for text in texts for ch in text)
        known = set(base.itos)
        self.added_chars = "".join(sorted(ch for ch, n in counts.items()
                                          if n >= min_count and ch not in known))
        self.base_vocab_size = base.vocab_size
        self.stoi = {ch: i for i, ch in enumerate([*base.itos, *self.added_chars])}
        self.unk_id = len(self.stoi)
        self.pad_id = self.unk_id
        self.vocab_size = self.unk_id + 1

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text``; a character without an id becomes ``unk_id``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return [self.stoi.get(ch, self.unk_id) for ch in text]

    def unknown_share(self, texts: Sequence[str]) -> float:
        """The share of the characters of ``texts`` that become ``unk_id``."""
        total = sum(len(t) for t in texts)
        unknown = sum(ch not in self.stoi for t in texts for ch in t)
        return unknown / total if total else 0.0


class ClassificationDataset:
    """Texts as right-padded windows of ids, with their lengths, owners and labels.

    Each text is cut into consecutive windows of ``block_size`` characters, at most
    ``max_windows`` of them; what lies beyond is dropped (``truncated`` counts the texts
    that lost characters). With ``max_windows=1`` a text is cut to its first
    ``block_size`` characters. A minibatch of ``B`` texts is ``(x (W, T), lengths (W,),
    owner (W,), labels (B,))``: the ``W`` windows of the ``B`` texts, right-padded to
    the longest window ``T`` in the batch, their real lengths, and the position in the
    batch of the text each window belongs to. The dataset protocol of
    :mod:`llmscratch.train`.

    Args:
        vocab: a :class:`ClassifierVocab`.
        texts, labels: equally long sequences; labels are ints in ``[0, n_classes)``.
        block_size: the model's context, in characters.
        max_windows: windows kept per text (>= 1).

    Raises:
        TypeError: if ``vocab`` is not a ClassifierVocab.
        ValueError: for empty or unequal ``texts`` and ``labels``, an empty text, or a
            negative label.
    """

    def __init__(self, vocab: ClassifierVocab, texts: Sequence[str], labels: Sequence[int], *,
                 block_size: int, max_windows: int = 1) -> None:
        if not isinstance(vocab, ClassifierVocab):
            raise TypeError(f"vocab must be a ClassifierVocab, got {type(vocab).__name__}")
        check_positive_int("block_size", block_size)
        check_positive_int("max_windows", max_windows)
        texts, labels = list(texts), [int(y) for y in labels]
        if not texts or len(texts) != len(labels):
            raise ValueError(f"texts and labels must be non-empty and equally long, got "
                             f"{len(texts)} and {len(labels)}")
        if min(labels) < 0:
            raise ValueError(f"labels must be class ids >= 0, got {min(labels)}")
        if min(map(len, texts)) == 0:
            raise ValueError(f"text {[len(t) for t in texts].index(0)} is empty")
        limit = block_size * max_windows
        self.truncated = sum(len(t) > limit for t in texts)
        windows, owners = [], []
        for i, text in enumerate(texts):
            ids = vocab.encode(text[:limit])
            for start in range(0, len(ids), block_size):
                windows.append(ids[start : start + block_size])
                owners.append(i)
        self.lengths = torch.tensor([len(w) for w in windows])  # (N_windows,)
        self.owner = torch.tensor(owners)  # (N_windows,): the text of each window
        self.first = torch.searchsorted(self.owner, torch.arange(len(texts) + 1))  # (N + 1,)
        self.X = torch.full((len(windows), block_size), vocab.pad_id, dtype=torch.long)
        for row, seq in enumerate(windows):
            self.X[row, : len(seq)] = torch.tensor(seq)
        self.labels = torch.tensor(labels)
        self.max_windows = max_windows

    def __len__(self) -> int:
        return len(self.labels)

    def _take(self, ix: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        counts = self.first[ix + 1] - self.first[ix]  # (B,) windows per text
        rows = torch.cat([torch.arange(int(a), int(b)) for a, b in zip(self.first[ix], self.first[ix + 1])])
        lengths = self.lengths[rows]
        owner = torch.repeat_interleave(torch.arange(len(ix)), counts)
        return self.X[rows, : int(lengths.max())], lengths, owner, self.labels[ix]

    def sample(self, batch_size: int, generator: torch.Generator | None = None):
        """A random minibatch of ``batch_size`` texts drawn with replacement."""
        check_positive_int("batch_size", batch_size)
        return self._take(torch.randint(len(self), (batch_size,), generator=generator))

    def batches(self, batch_size: int):
        """Every text once, in order."""
        check_positive_int("batch_size", batch_size)
        return (self._take(torch.arange(i, min(i + batch_size, len(self))))
                for i in range(0, len(self), batch_size))


class GPTClassifier(nn.Module):
    """A GPT whose output layer predicts a class instead of the next token.

    ``gpt`` is copied (the caller's model is not modified), its vocabulary extended to
    ``vocab_size`` with mean rows, and its ``lm_head`` replaced by ``nn.Linear(C,
    n_classes)`` (weights normal(0, 0.02) from a generator seeded ``seed``, bias 0).

    Args:
        gpt: a pretrained (or freshly initialised) :class:`~llmscratch.gpt.GPT`.
        n_classes: at least 2.
        pooling: ``"last"`` or ``"mean"`` (module docstring).
        vocab_size: the classifier vocabulary's size (>= the GPT's; default: the GPT's).
        seed: seeds the head's initial weights.

    Raises:
        TypeError: if ``gpt`` is not a GPT.
        ValueError: for ``n_classes`` < 2, an unknown ``pooling`` or a smaller ``vocab_size``.
    """

    def __init__(self, gpt: GPT, n_classes: int = 2, *, pooling: str = "last",
                 vocab_size: int | None = None, seed: int = 0) -> None:
        super().__init__()
        if not isinstance(gpt, GPT):
            raise TypeError(f"gpt must be a GPT, got {type(gpt).__name__}")
        check_int("n_classes", n_classes, minimum=2)
        self.pooling = check_choice("pooling", pooling, POOLINGS)
        body = extend_vocab(gpt, vocab_size) if vocab_size is not None else copy.deepcopy(gpt)
        head = nn.Linear(body.config.n_embd, n_classes)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * 0.02)
            head.bias.zero_()
        body.lm_head = head
        self.gpt = body
        self.n_classes = n_classes
        self.block_size = body.config.block_size

    def forward(self, idx: Tensor, lengths: Tensor, owner: Tensor | None = None) -> Tensor:
        """Class logits ``(B, n_classes)`` of right-padded windows ``idx (W, T)`` whose
        real lengths are ``lengths (W,)`` (each in ``[1, T]``); ``owner (W,)`` says which
        of the ``B`` texts each window belongs to (default: one window per text).

        A text's logits pool over all its windows: ``"mean"`` averages the logits of
        every real position of every window; ``"last"`` averages the windows' logits at
        their last real positions.

        Raises:
            TypeError, ValueError: as :meth:`~llmscratch.gpt.GPT.forward` for ``idx``;
                for ``lengths`` or ``owner`` that are not ``(W,)`` int64 tensors, lengths
                outside ``[1, T]``, or owners that are not ``0, 1, ..., B - 1`` in order.
        """
        W, T = idx.shape
        for name, t in (("lengths", lengths), ("owner", owner)):
            if t is not None and (not isinstance(t, Tensor) or t.dtype != torch.long or t.shape != (W,)):
                raise ValueError(f"{name} must be an int64 tensor of shape ({W},), got "
                                 f"{getattr(t, 'dtype', type(t))} {tuple(getattr(t, 'shape', ()))}")
        if int(lengths.min()) < 1 or int(lengths.max()) > T:
            raise ValueError(f"lengths must lie in [1, {T}], got {int(lengths.min())}..{int(lengths.max())}")
        owner = torch.arange(W) if owner is None else owner
        B = int(owner[-1]) + 1
        if owner[0] != 0 or not bool(((owner.diff() == 0) | (owner.diff() == 1)).all()):
            raise ValueError("owner must number the texts 0, 1, ..., B - 1, each text's windows together")
        logits, _ = self.gpt(idx)  # (W, T, n_classes)
        if self.pooling == "last":
            per_window = logits[torch.arange(W), lengths - 1]  # (W, n_classes)
            weight = torch.ones(W)  # each window counts once
        else:
            real = torch.arange(T) < lengths[:, None]  # (W, T)
            per_window = (logits * real[..., None]).sum(1)  # (W, n_classes): summed, not averaged
            weight = lengths.to(logits.dtype)  # each real position counts once
        total = torch.zeros(B, self.n_classes, dtype=logits.dtype).index_add(0, owner, per_window)
        return total / torch.zeros(B, dtype=logits.dtype).index_add(0, owner, weight)[:, None]  # (B, n_classes)


def set_trainable(model: GPTClassifier, which: str) -> int:
    """Freeze ``model`` except ``which`` part; return the number of trainable parameters.

    ``"head"``: the classification head; ``"last_block"``: the head, the final
    LayerNorm and the last transformer block; ``"all"``: every parameter.

    Raises:
        TypeError: if ``model`` is not a GPTClassifier.
        ValueError: for an unknown ``which``.
    """
    if not isinstance(model, GPTClassifier):
        raise TypeError(f"model must be a GPTClassifier, got {type(model).__name__}")
    check_choice("which", which, TRAINABLE)
    last = f"transformer.h.{model.gpt.config.n_layer - 1}."
    for name, p in model.gpt.named_parameters():
        p.requires_grad = (which == "all" or name.startswith("lm_head.")
                           or (which == "last_block" and name.startswith((last, "transformer.ln_f."))))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class ClassificationObjective:
    """Cross-entropy over the classes (nats per text), as an objective of the training loop.

    ``objective(model, (x, lengths, owner, labels)) -> (loss, metrics)`` with ``accuracy``,
    ``count`` (texts) and ``tokens`` (real characters). With ``class_weights``, the loss
    is torch's weighted mean ``sum_i w[y_i] * ce_i / sum_i w[y_i]``: weights inversely
    proportional to the class frequencies make each class count equally.

    Raises:
        TypeError, ValueError: for weights that are not positive numbers.
    """

    def __init__(self, class_weights: Sequence[float] | None = None) -> None:
        if class_weights is not None:
            if any(not isinstance(w, (int, float)) or isinstance(w, bool) or not w > 0 for w in class_weights):
                raise ValueError(f"class_weights must be numbers > 0, got {class_weights!r}")
            class_weights = torch.tensor([float(w) for w in class_weights])
        self.class_weights = class_weights

    def __call__(self, model: nn.Module, batch) -> tuple[Tensor, dict[str, float]]:
        x, lengths, owner, labels = batch
        logits = model(x, lengths, owner)  # (B, n_classes)
        loss = F.cross_entropy(logits, labels, weight=self.class_weights)
        accuracy = (logits.argmax(-1) == labels).float().mean().item()
        return loss, {"accuracy": accuracy, "count": len(labels), "tokens": int(lengths.sum())}


@torch.no_grad()
def predict_proba(model: nn.Module, dataset: ClassificationDataset, *, batch_size: int = 256) -> Tensor:
    """Class probabilities ``(N, n_classes)`` of every text of ``dataset``, in eval mode.

    Raises:
        TypeError: if ``model`` is not a torch module or ``dataset`` not a ClassificationDataset.
    """
    check_module("model", model)
    if not isinstance(dataset, ClassificationDataset):
        raise TypeError(f"dataset must be a ClassificationDataset, got {type(dataset).__name__}")
    was_training = model.training
    model.eval()
    try:
        probs = [model(x, lengths, owner).softmax(-1) for x, lengths, owner, _ in dataset.batches(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(probs)
