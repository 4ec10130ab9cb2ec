"""Supervised fine-tuning (SFT): from a Shakespeare text predictor to a small assistant.

Taught in chapter 5. The chapter 4 GPT continues text; fine-tuning on
instruction-response pairs (Ouyang et al. 2022, section 3.5; Wei et al. 2022, FLAN)
teaches it the chat template of :mod:`llmscratch.chat`. The pieces, in the order the
chapter builds them:

* :func:`instruction_data_stats`: what a real instruction dataset looks like, measured.
* :func:`extend_vocab`: the chapter 4 model with new embedding and output rows for the
  new ids (mean initialisation, Hewitt 2021).
* :class:`SFTDataset`: padded examples whose prompt targets are masked, a dataset of the
  training loop, so :func:`llmscratch.train.train` with
  :func:`~llmscratch.objectives.next_token_loss` fine-tunes unchanged.
* :func:`text_loss`: held-out loss on plain text, to measure forgetting.

The cached fine-tuning run the chapters load is :func:`llmscratch.recipes.assistant_sft`;
generation-based evaluation is :mod:`llmscratch.evaluation`.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Sequence

import torch

from .chat import AssistantTokenizer, alpaca_text
from .gpt import GPT
from .lm import IGNORE_INDEX, LanguageModel
from .tasks import Example
from .train import evaluate
from .validate import check_choice, check_int, check_positive_int
from .windows import TokenStream

LOSS_ON = ("response", "all")


def extend_vocab(model: GPT, new_vocab_size: int) -> GPT:
    """A copy of ``model`` with ``new_vocab_size`` token ids: old rows copied, new rows
    the mean.

    Every parameter is copied; the token embedding ``wte`` and the output layer
    ``lm_head`` get ``new_vocab_size - V`` extra rows, each set to the mean of the old
    rows (Hewitt 2021, "Initializing new word embeddings for pretrained language
    models"). Why the mean: a new output row at the mean gives the new token the mean of
    the old logits, and by Jensen's inequality ``exp(mean logit) <= mean exp(logit)``,
    so each new token takes at most the average old token's share: with ``k`` new tokens
    the old tokens keep at least ``V / (V + k)`` of the probability and their KL
    divergence from the old model is at most ``ln(1 + k / V)`` nats. A random row of the
    usual scale could instead give a new token a large logit and make the fine-tuning
    start from a broken model. The new input rows at the mean look, to the first layer,
    like an average character, and diverge during fine-tuning as the tokens occur in
    different contexts. Logits of old tokens for inputs of old tokens are exactly
    unchanged.

    Leaves torch's global random generator untouched.

    Args:
        model: a :class:`~llmscratch.gpt.GPT` (tied or untied weights).
        new_vocab_size: at least ``model.config.vocab_size``.

    Returns:
        A new GPT in the mode (train/eval) of ``model``.

    Raises:
        TypeError: if ``model`` is not a GPT or ``new_vocab_size`` is not an int.
        ValueError: if ``new_vocab_size`` is smaller than the current vocabulary.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a GPT, got {type(model).__name__}")
    old_v = model.config.vocab_size
    check_int("new_vocab_size", new_vocab_size, minimum=old_v)
    config = dataclasses.replace(model.config, vocab_size=new_vocab_size)
    with torch.random.fork_rng(devices=[]):
        new = GPT(config)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for key in ("transformer.wte.weight", "lm_head.weight"):
        old = state[key]  # (V, C)
        extra = old.mean(dim=0, keepdim=True).expand(new_vocab_size - old_v, -1)
        state[key] = torch.cat([old, extra])  # (V', C)
    new.load_state_dict(state)
    new.train(model.training)
    return new


class SFTDataset:
    """Rendered examples, right-padded into ``X (N, L)`` and ``Y (N, L)``, for ``train``.

    ``X[i]`` is an example's ids without the last, ``Y[i]`` the ids shifted by one (the
    next token at every position). Targets are ``IGNORE_INDEX`` (-100) on padding and,
    with ``loss_on="response"``, on the instruction and the template, so the loss is
    the mean cross-entropy (nats per token) of the response tokens and the end token.
    ``loss_on="all"`` keeps a target at every real position (the prompt too).

    Padding uses ``pad_id`` after the example; a causal model's outputs at real
    positions cannot depend on later tokens, and padded targets are ignored, so padding
    never reaches the loss. A minibatch is cut after its last target.

    The dataset protocol of :mod:`llmscratch.train` (``sample``, ``batches``, ``len``),
    plus ``num_targets`` and ``tensors``.

    Args:
        rendered: ``(ids, loss_mask)`` pairs from :meth:`AssistantTokenizer.render`.
        pad_id: the padding id.
        loss_on: ``"response"`` or ``"all"``.
        block_size: the model's context; a longer example raises.

    Raises:
        TypeError: if an example is not a pair of tensors, its ids are not an int64 tensor
            or its mask not a bool tensor (an integer 0/1 mask would be read as indices:
            convert it with ``mask.bool()``), or ``pad_id`` / ``block_size`` is not an int.
        ValueError: for an empty list, an unknown ``loss_on``, ids that are not 1-D or
            negative, a mask of another shape than its ids, a negative ``pad_id``, or an
            example longer than ``block_size`` tokens.
    """

    def __init__(self, rendered: Sequence[tuple[torch.Tensor, torch.Tensor]], *, pad_id: int,
                 loss_on: str = "response", block_size: int | None = None) -> None:
        check_choice("loss_on", loss_on, LOSS_ON)
        check_int("pad_id", pad_id, minimum=0)
        if block_size is not None:
            check_positive_int("block_size", block_size)
        if not isinstance(rendered, Sequence) or isinstance(rendered, (str, bytes)):
            raise TypeError(f"rendered must be a sequence of (ids, loss_mask) pairs, got {type(rendered).__name__}")
        if len(rendered) == 0:
            raise ValueError("rendered is empty: there is no example to train on")
        for i, item in enumerate(rendered):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise TypeError(f"rendered[{i}] must be an (ids, loss_mask) pair, got {type(item).__name__}")
            ids, mask = item
            if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long:
                raise TypeError(f"rendered[{i}]: ids must be an int64 tensor, got {getattr(ids, 'dtype', type(ids))}")
            if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
                raise TypeError(f"rendered[{i}]: loss_mask must be a bool tensor (an integer mask would be "
                                f"read as indices; use mask.bool()), got {getattr(mask, 'dtype', type(mask))}")
            if ids.ndim != 1:
                raise ValueError(f"rendered[{i}]: ids must be 1-D, got shape {tuple(ids.shape)}")
            if ids.numel() and int(ids.min()) < 0:
                raise ValueError(f"rendered[{i}]: ids must be token ids >= 0, got {int(ids.min())}")
        lengths = [len(ids) for ids, _ in rendered]
        if min(lengths) < 2:
            short = lengths.index(min(lengths))
            raise ValueError(f"rendered[{short}] has {lengths[short]} token(s); every example needs at least 2 tokens")
        longest = max(lengths)
        if block_size is not None and longest > block_size:
            raise ValueError(f"an example has {longest} tokens, more than block_size={block_size}")
        n = len(rendered)
        self.X = torch.full((n, longest - 1), pad_id, dtype=torch.long)
        self.Y = torch.full((n, longest - 1), IGNORE_INDEX, dtype=torch.long)
        for i, (ids, mask) in enumerate(rendered):
            if mask.shape != ids.shape:
                raise ValueError(f"example {i}: loss_mask shape {tuple(mask.shape)} != ids shape {tuple(ids.shape)}")
            L = len(ids)
            self.X[i, : L - 1] = ids[:-1]
            y = ids[1:].clone()
            if loss_on == "response":
                y[~mask[1:]] = IGNORE_INDEX  # y[t] is token t+1: a target only if token t+1 is response
            self.Y[i, : L - 1] = y
        self.loss_on = loss_on
        self.pad_id = pad_id

    @classmethod
    def from_examples(cls, tokenizer: AssistantTokenizer, examples: Sequence[Example], *,
                      loss_on: str = "response", block_size: int | None = None) -> SFTDataset:
        """Render ``examples`` (anything with ``instruction`` and ``response``) and pad them."""
        rendered = [tokenizer.render(e.instruction, e.response) for e in examples]
        return cls(rendered, pad_id=tokenizer.pad_id, loss_on=loss_on, block_size=block_size)

    @property
    def tensors(self) -> tuple[torch.Tensor, ...]:
        """``(X, Y)``: what a cache key fingerprints."""
        return self.X, self.Y

    @property
    def num_targets(self) -> int:
        return int((self.Y != IGNORE_INDEX).sum())

    def __len__(self) -> int:
        return self.X.shape[0]

    def _cut(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        has_target = (y != IGNORE_INDEX).any(dim=0)  # (L,)
        end = int(has_target.nonzero().max()) + 1 if has_target.any() else 1
        return x[:, :end].contiguous(), y[:, :end].contiguous()

    def sample(self, batch_size: int, generator: torch.Generator | None = None):
        """A random minibatch ``(x (B, T), y (B, T))`` drawn with replacement."""
        check_positive_int("batch_size", batch_size)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        ix = torch.randint(len(self), (batch_size,), generator=generator)
        return self._cut(self.X[ix], self.Y[ix])

    def batches(self, batch_size: int):
        """Every example once, in order (``batch_size`` is checked at the call)."""
        check_positive_int("batch_size", batch_size)
        return (self._cut(self.X[i : i + batch_size], self.Y[i : i + batch_size])
                for i in range(0, len(self), batch_size))


def instruction_data_stats(records: Sequence[dict] | None = None, *, tokenizer: AssistantTokenizer | None = None,
                           block_size: int = 64) -> dict:
    """Format and size statistics of an instruction dataset (default: ``instruction-data.json``).

    The 1,100 examples of Raschka's ``instruction-data.json`` (``llmscratch.data.fetch(
    "instruction_data")``) are written by people for a GPT-2-sized model; this measures
    how they compare with a 64-token character model.

    Args:
        records: dicts with ``instruction``, ``input`` and ``output``; default: the file.
        tokenizer: if given, count the records whose characters it can all encode.
        block_size: context length in tokens (characters here) to compare with.

    Returns:
        A dict: ``n_examples``, ``n_with_input``, ``keys``, ``chars`` (for ``instruction``,
        ``input``, ``output`` and ``rendered`` -- the whole example in the Alpaca
        template -- the ``mean``, ``median`` and ``max`` length in characters),
        ``n_fit_block`` (rendered examples of at most ``block_size`` characters),
        ``n_distinct_chars``, and ``n_encodable`` (with a tokenizer, else None).
    """
    check_positive_int("block_size", block_size)
    if tokenizer is not None and not isinstance(tokenizer, AssistantTokenizer):
        raise TypeError(f"tokenizer must be an AssistantTokenizer or None, got {type(tokenizer).__name__}")
    if records is not None:
        if isinstance(records, (str, bytes, dict)) or not isinstance(records, Sequence):
            raise TypeError(f"records must be a sequence of dicts, got {type(records).__name__}")
        for i, r in enumerate(records):
            if not isinstance(r, dict):
                raise TypeError(f"records[{i}] must be a dict, got {type(r).__name__}")
    if records is None:
        from .data import fetch

        records = json.loads(fetch("instruction_data").read_text(encoding="utf-8"))
    if len(records) == 0:
        raise ValueError("records is empty")
    rendered = [alpaca_text(r) for r in records]
    lengths = {k: [len(r.get(k, "")) for r in records] for k in ("instruction", "input", "output")}
    lengths["rendered"] = [len(t) for t in rendered]
    chars = set("".join(r.get(k, "") for r in records for k in ("instruction", "input", "output")))
    known = None
    if tokenizer is not None:
        vocab = set(tokenizer.chars.itos)
        known = sum(set(r.get("instruction", "") + r.get("input", "") + r.get("output", "")) <= vocab for r in records)
    return {
        "n_examples": len(records),
        "n_with_input": sum(bool(r.get("input")) for r in records),
        "keys": sorted({k for r in records for k in r}),
        "chars": {k: {"mean": statistics.fmean(v), "median": statistics.median(v), "max": max(v)}
                  for k, v in lengths.items()},
        "n_fit_block": sum(n <= block_size for n in lengths["rendered"]),
        "n_distinct_chars": len(chars),
        "n_encodable": known,
    }


@torch.no_grad()
def text_loss(model: torch.nn.Module, ids: torch.Tensor, *, vocab_limit: int | None = None,
              max_batches: int | None = None, batch_size: int = 256) -> float:
    """Held-out loss on plain text (nats per character), windows of ``block_size`` end to end.

    Measures forgetting: the chapter 4 model and the fine-tuned one on the same
    held-out Shakespeare (``recipes.shakespeare_char_data().val_ids``). Every target is
    predicted once, as in :meth:`llmscratch.windows.TokenStream.batches`.

    Args:
        vocab_limit: if given, the softmax runs over ids ``< vocab_limit`` only (e.g. the
            65 characters of chapter 4), so probability the model now puts on the new
            tokens is not counted as forgetting.
        max_batches: use only the first batches (None: all the text).

    Raises:
        TypeError: if ``model`` is not a LanguageModel, or for ids and counts of the wrong
            type (as :class:`~llmscratch.windows.TokenStream` and :func:`~llmscratch.train.evaluate`).
        ValueError: for ``vocab_limit`` outside ``[1, vocab_size]``, or ids outside the vocabulary.
    """
    if not isinstance(model, LanguageModel):
        raise TypeError(f"model must be a llmscratch.lm.LanguageModel, got {type(model).__name__}")
    vocab_size = model.config.vocab_size
    if vocab_limit is not None:
        check_int("vocab_limit", vocab_limit, minimum=1, maximum=vocab_size)
    check_positive_int("batch_size", batch_size)
    if max_batches is not None:
        check_positive_int("max_batches", max_batches)
    stream = TokenStream(ids, model.config.block_size, targets="all")
    if int(stream.ids.max()) >= vocab_size:
        raise ValueError(f"ids must hold token ids in [0, {vocab_size}), got {int(stream.ids.max())}")
    view = model if vocab_limit is None else _FirstLogits(model, vocab_limit)
    return evaluate(view, stream, batch_size=batch_size, max_batches=max_batches)["loss"]


class _FirstLogits(torch.nn.Module):
    """``model`` with its logits cut to the first ``limit`` ids: the softmax of
    :func:`text_loss` then runs over the old vocabulary only."""

    def __init__(self, model: torch.nn.Module, limit: int) -> None:
        super().__init__()
        self.model, self.limit = model, limit

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.model(idx)[0][..., : self.limit]  # (B, T, limit)
        return logits, LanguageModel.loss_from_logits(logits, targets)
