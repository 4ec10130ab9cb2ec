"""Supervised fine-tuning (SFT): from a Shakespeare text predictor to a small assistant.

Taught in chapter 5. The chapter 4 GPT continues text; fine-tuning on
instruction-response pairs (Ouyang et al. 2022, section 3.5; Wei et al. 2022, FLAN)
teaches it a format: after ``### Instruction:`` comes a request, after
``### Response:`` an answer, then ``<|endoftext|>``, where it stops. The template is the
Alpaca one (Taori et al. 2023) without its preamble.

The pieces, in the order the chapter builds them:

* :class:`AssistantTokenizer`: the chapter 4 characters, the characters the tasks need
  that Tiny Shakespeare lacks (digits but 3, ``+``), and three special tokens, each one id.
* :meth:`AssistantTokenizer.render`: ``(ids, loss_mask)`` for one example; the mask marks
  the response tokens, the only ones whose loss counts.
* :func:`extend_vocab`: the chapter 4 model with new embedding and output rows for the
  new ids (mean initialisation, Hewitt 2021).
* :class:`SFTDataset`: padded examples with the dataset interface of
  :mod:`llmscratch.windows`, so :func:`llmscratch.train.train` fine-tunes unchanged.
* :func:`generate_responses`, :func:`sample_responses` and :func:`evaluate_behaviour`: batched generation on
  held-out prompts, graded with :func:`llmscratch.tasks.grade`.
* :func:`assistant_sft`: the cached recipe the chapters load.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from .checkpoint import tensor_fingerprint, train_or_load
from .gpt import GPT
from .recipes import TRAIN_THREADS, shakespeare_char_data, shakespeare_char_gpt
from .sampling import generate
from .tasks import HANDMADE, TASKS, Example, Grade, Prompt, QualityMix, alphabet, grade, make_sft_examples
from .train import TrainConfig, evaluate, train
from .vocab import CharVocab
from .windows import IGNORE_INDEX, TokenStream

INSTRUCTION = "### Instruction:\n"
RESPONSE = "\n\n### Response:\n"
END_OF_TEXT = "<|endoftext|>"
SPECIAL_TOKENS = (INSTRUCTION, RESPONSE, END_OF_TEXT)
LOSS_ON = ("response", "all")
CODE_ROOTS = ("sft",)  # an SFT checkpoint's key hashes this module and what it imports


class AssistantTokenizer:
    """Characters plus three special tokens, each a single id.

    Ids ``0 .. base.vocab_size - 1`` are the chapter 4 characters, unchanged, so the
    pretrained rows keep their meaning; then come the characters of ``extra_chars`` that
    ``base`` lacks (sorted), then :data:`SPECIAL_TOKENS`: ``"### Instruction:\\n"``,
    ``"\\n\\n### Response:\\n"`` and ``"<|endoftext|>"``. A special token as one id keeps
    examples short (the template costs 3 tokens, not 46 characters) and cannot be
    confused with the same characters typed in a request.

    Padding reuses the end-of-text id (``pad_id == eot_id``): padded positions are never
    targets and, the model being causal, never seen by a real token.

    Args:
        base: the chapter 4 :class:`~llmscratch.vocab.CharVocab`.
        extra_chars: characters to add if missing (default: :func:`llmscratch.tasks.alphabet`).

    Raises:
        TypeError: if ``base`` is not a CharVocab.
    """

    def __init__(self, base: CharVocab, extra_chars: str | None = None) -> None:
        if not isinstance(base, CharVocab):
            raise TypeError(f"base must be a CharVocab, got {type(base).__name__}")
        extra_chars = alphabet() if extra_chars is None else extra_chars
        added = sorted(set(extra_chars) - set(base.itos))
        self.chars = CharVocab([*base.itos, *added])
        self.base_vocab_size = base.vocab_size
        self.added_chars = "".join(added)
        n = self.chars.vocab_size
        self.inst_id, self.resp_id, self.eot_id = n, n + 1, n + 2
        self.pad_id = self.eot_id
        self._special_ids = {INSTRUCTION: self.inst_id, RESPONSE: self.resp_id, END_OF_TEXT: self.eot_id}
        self._split = re.compile("(" + "|".join(re.escape(s) for s in SPECIAL_TOKENS) + ")")

    @property
    def vocab_size(self) -> int:
        """Characters plus the three special tokens (78 for the book's assistant)."""
        return self.chars.vocab_size + len(SPECIAL_TOKENS)

    @property
    def special_ids(self) -> tuple[int, int, int]:
        """``(inst_id, resp_id, eot_id)``."""
        return self.inst_id, self.resp_id, self.eot_id

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; each occurrence of a special token's string becomes its id.

        Raises:
            ValueError: naming a character outside the vocabulary.
        """
        ids: list[int] = []
        for piece in self._split.split(text):
            if piece in self._special_ids:
                ids.append(self._special_ids[piece])
            elif piece:
                ids.extend(self.chars.encode(piece))
        return ids

    def decode(self, ids) -> str:
        """The text of ``ids`` (special tokens written out).

        Raises:
            ValueError: for an id outside ``[0, vocab_size)``.
        """
        names = {v: k for k, v in self._special_ids.items()}
        out = []
        for i in ids:
            i = int(i)
            if i in names:
                out.append(names[i])
            elif 0 <= i < self.chars.vocab_size:
                out.append(self.chars.itos[i])
            else:
                raise ValueError(f"token id {i} is outside [0, {self.vocab_size})")
        return "".join(out)

    def _check_text(self, name: str, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"{name} must be a str, got {type(text).__name__}")
        for special in SPECIAL_TOKENS:
            if special in text:
                raise ValueError(f"{name} must not contain the special token {special!r}")

    def render_prompt(self, instruction: str) -> torch.Tensor:
        """``[INST] instruction [RESP]``: what the model sees before it answers, ``(L,)`` int64.

        Raises:
            TypeError/ValueError: for a non-string, a special token inside the text, or a
                character outside the vocabulary.
        """
        self._check_text("instruction", instruction)
        return torch.tensor([self.inst_id, *self.chars.encode(instruction), self.resp_id], dtype=torch.long)

    def render(self, instruction: str, response: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One training example: ``[INST] instruction [RESP] response [EOT]``.

        Returns:
            ``(ids, loss_mask)``, both ``(L,)``: int64 ids and a bool mask that is True on
            the response tokens and the end token (the tokens the model must learn to
            produce), False on the template and the instruction.

        Raises:
            TypeError/ValueError: as :meth:`render_prompt`, for either text.
        """
        self._check_text("response", response)
        prompt = self.render_prompt(instruction)
        answer = torch.tensor([*self.chars.encode(response), self.eot_id], dtype=torch.long)
        ids = torch.cat([prompt, answer])
        mask = torch.cat([torch.zeros(len(prompt), dtype=torch.bool), torch.ones(len(answer), dtype=torch.bool)])
        return ids, mask

    def __repr__(self) -> str:
        return (f"AssistantTokenizer(vocab_size={self.vocab_size}, base={self.base_vocab_size}, "
                f"added={self.added_chars!r}, specials={SPECIAL_TOKENS!r})")


def extend_vocab(model: GPT, new_vocab_size: int) -> GPT:
    """A copy of ``model`` with ``new_vocab_size`` token ids: old rows copied, new rows the mean.

    Every parameter is copied; the token embedding ``wte`` and the output layer
    ``lm_head`` get ``new_vocab_size - V`` extra rows, each set to the mean of the old
    rows (Hewitt 2021, "Initializing new word embeddings for pretrained language
    models"). Why the mean: a new output row at the mean gives the new token the mean
    of the old logits, and by Jensen's inequality ``exp(mean logit) <= mean exp(logit)``,
    so each new token takes at most the average old token's share: with ``k`` new
    tokens the old tokens keep at least ``V / (V + k)`` of the probability and their
    KL divergence from the old model is at most ``ln(1 + k / V)`` nats. A random row
    of the usual scale could instead give a new token a large logit and make the
    fine-tuning start from a broken model. The new input rows at the mean look, to the
    first layer, like an average character, and diverge during fine-tuning as the
    tokens occur in different contexts. Logits of old tokens for inputs of old tokens
    are exactly unchanged.

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
    if isinstance(new_vocab_size, bool) or not isinstance(new_vocab_size, int):
        raise TypeError(f"new_vocab_size must be an int, got {type(new_vocab_size).__name__}")
    old_v = model.config.vocab_size
    if new_vocab_size < old_v:
        raise ValueError(f"new_vocab_size must be >= the current vocab_size {old_v}, got {new_vocab_size}")
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

    Interface of :mod:`llmscratch.windows`: ``sample``, ``batches``, ``num_targets``,
    ``tensors``.

    Args:
        rendered: ``(ids, loss_mask)`` pairs from :meth:`AssistantTokenizer.render`.
        pad_id: the padding id.
        loss_on: ``"response"`` or ``"all"``.
        block_size: the model's context; a longer example raises.

    Raises:
        ValueError: for an empty list, an unknown ``loss_on``, a mask of another shape
            than its ids, or an example longer than ``block_size`` tokens.
    """

    def __init__(self, rendered: Sequence[tuple[torch.Tensor, torch.Tensor]], *, pad_id: int,
                 loss_on: str = "response", block_size: int | None = None) -> None:
        if loss_on not in LOSS_ON:
            raise ValueError(f"loss_on must be one of {LOSS_ON}, got {loss_on!r}")
        if len(rendered) == 0:
            raise ValueError("rendered is empty: there is no example to train on")
        lengths = [len(ids) for ids, _ in rendered]
        if min(lengths) < 2:
            raise ValueError("every example needs at least 2 tokens")
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
        ix = torch.randint(len(self), (batch_size,), generator=generator)
        return self._cut(self.X[ix], self.Y[ix])

    def batches(self, batch_size: int):
        """Every example once, in order."""
        for i in range(0, len(self), batch_size):
            yield self._cut(self.X[i : i + batch_size], self.Y[i : i + batch_size])


# -- a look at a real instruction dataset ------------------------------------------------


def alpaca_text(record: dict) -> str:
    """An ``instruction``/``input``/``output`` record in the Alpaca template (Taori et al. 2023),
    with an ``### Input:`` section only when the input is not empty."""
    text = INSTRUCTION + record["instruction"]
    if record.get("input"):
        text += "\n\n### Input:\n" + record["input"]
    return text + RESPONSE + record["output"]


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
    import statistics

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


# -- generation and behaviour ----------------------------------------------------------


@dataclass(frozen=True)
class Generation:
    """One generated response.

    Attributes:
        prompt: the :class:`~llmscratch.tasks.Prompt`.
        response: the generated text before the end token (everything generated if the
            end token never came).
        well_formed: format adherence: the end token came within the length limit and
            no other special token came before it.
        n_tokens: generated tokens, the end token included.
        grade: :func:`llmscratch.tasks.grade` of ``response``.
        prompt_index: the position of ``prompt`` in the list that was answered.
    """

    prompt: Prompt
    response: str
    well_formed: bool
    n_tokens: int
    grade: Grade
    prompt_index: int = 0

    @property
    def correct(self) -> bool:
        """Exact match in a well-formed response."""
        return self.well_formed and self.grade.correct

    def to_dict(self) -> dict:
        return {**self.prompt.to_dict(), "response": self.response, "well_formed": self.well_formed,
                "n_tokens": self.n_tokens, "prompt_index": self.prompt_index,
                **{f"grade_{k}": v for k, v in self.grade.to_dict().items()}}


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


@torch.no_grad()
def generate_responses(
    model: torch.nn.Module,
    tokenizer: AssistantTokenizer,
    prompts: Sequence[Prompt],
    *,
    greedy: bool = True,
    samples: int = 1,
    temperature: float = 1.0,
    seed: int = 0,
    max_new_tokens: int = 40,
) -> list[Generation]:
    """Answer every prompt, ``samples`` times each, in batches of prompts of equal length.

    Prompts are grouped by token length so that each batch is a rectangle without
    padding (the GPT has no padding mask), and each group is extended by
    :func:`llmscratch.sampling.generate` with ``stop_id=eot_id``. A response may take at
    most ``max_new_tokens`` tokens and never more than fits in the context
    (``block_size - prompt length``), so the window never slides.

    Args:
        model: a GPT over the tokenizer's ids.
        prompts: :class:`~llmscratch.tasks.Prompt` objects.
        greedy: argmax decoding (then ``samples`` must be 1).
        samples: responses per prompt when sampling.
        temperature: sampling temperature (ignored when greedy).
        seed: seeds the sampler; groups are processed in a fixed order, so a seed gives
            the same responses.
        max_new_tokens: the length limit of a response, in tokens (end token included).

    Returns:
        Generations in the order of ``prompts`` (each prompt's samples together).

    Raises:
        TypeError/ValueError: for a bad count, ``greedy`` with ``samples > 1``, or a
            prompt that leaves no room in the context.
    """
    _check_positive_int("samples", samples)
    _check_positive_int("max_new_tokens", max_new_tokens)
    if greedy and samples != 1:
        raise ValueError(f"greedy decoding gives one response per prompt; got samples={samples}")
    block_size = model.config.block_size
    rendered = [tokenizer.render_prompt(p.instruction) for p in prompts]
    groups: dict[int, list[int]] = defaultdict(list)
    for i, ids in enumerate(rendered):
        if len(ids) >= block_size:
            raise ValueError(f"prompt {i} has {len(ids)} tokens, leaving no room in block_size={block_size}")
        groups[len(ids)].append(i)
    generator = torch.Generator().manual_seed(seed)
    results: dict[int, list[Generation]] = {}
    special = set(tokenizer.special_ids)
    for length in sorted(groups):
        members = groups[length]
        idx = torch.stack([rendered[i] for i in members]).repeat_interleave(samples, dim=0)  # (n*s, L)
        limit = min(max_new_tokens, block_size - length)
        out = generate(model, idx, limit, greedy=greedy, temperature=temperature,
                       stop_id=tokenizer.eot_id, generator=generator)[:, length:]  # (n*s, <=limit)
        for row, new_ids in enumerate(out.tolist()):
            i = members[row // samples]
            if tokenizer.eot_id in new_ids:
                n_tokens = new_ids.index(tokenizer.eot_id) + 1
                body = new_ids[: n_tokens - 1]
                well_formed = not (special & set(body))
            else:
                body, n_tokens, well_formed = new_ids, len(new_ids), False
            text = tokenizer.decode(body)
            results.setdefault(i, []).append(
                Generation(prompts[i], text, well_formed, n_tokens, grade(prompts[i], text), i))
    return [g for i in range(len(prompts)) for g in results[i]]


def _rate(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def summarise(generations: Sequence[Generation]) -> dict:
    """Behaviour measured on graded generations, as a dict of numbers.

    Keys: ``n``; ``format_adherence`` (share well-formed); ``exact_match`` (share correct:
    well-formed and the extracted answer equals the true one); ``wrong_rate`` (1 -
    exact_match); ``rude_rate`` (share holding an insult); ``wrong_or_rude_rate``;
    ``terse_rate``; ``mean_length_chars`` (mean response length); ``exact_match_seen``
    and ``exact_match_unseen`` (by phrasing); ``by_task``: for each task, ``n``,
    ``exact_match``, ``rude_rate``, ``wrong_or_rude_rate``, ``format_adherence``,
    ``mean_length_chars``.

    Raises:
        ValueError: if there are no generations.
    """
    if not generations:
        raise ValueError("generations is empty")

    def stats(gs: Sequence[Generation]) -> dict:
        return {
            "n": len(gs),
            "format_adherence": _rate(g.well_formed for g in gs),
            "exact_match": _rate(g.correct for g in gs),
            "rude_rate": _rate(g.grade.rude for g in gs),
            "wrong_or_rude_rate": _rate((not g.correct) or g.grade.rude for g in gs),
            "mean_length_chars": _rate(g.grade.length for g in gs),
        }

    out = stats(generations)
    out["wrong_rate"] = 1.0 - out["exact_match"]
    out["terse_rate"] = _rate(g.grade.terse for g in generations)
    out["exact_match_seen"] = _rate(g.correct for g in generations if g.prompt.seen_phrasing)
    out["exact_match_unseen"] = _rate(g.correct for g in generations if not g.prompt.seen_phrasing)
    tasks = [t for t in TASKS if any(g.prompt.task == t for g in generations)]
    out["by_task"] = {t: stats([g for g in generations if g.prompt.task == t]) for t in tasks}
    return out


def evaluate_behaviour(model: torch.nn.Module, tokenizer: AssistantTokenizer, prompts: Sequence[Prompt], *,
                       greedy: bool = True, samples: int = 1, temperature: float = 1.0, seed: int = 0,
                       max_new_tokens: int = 40) -> dict:
    """:func:`summarise` of :func:`generate_responses` (same arguments)."""
    return summarise(generate_responses(model, tokenizer, prompts, greedy=greedy, samples=samples,
                                        temperature=temperature, seed=seed, max_new_tokens=max_new_tokens))


EVAL_SAMPLES = 2  # sampled answers per prompt in the book's behaviour evaluation (chapters 5 and 6)


def sample_responses(model: torch.nn.Module, tokenizer: AssistantTokenizer, prompts: Sequence[Prompt], *,
                     samples: int = EVAL_SAMPLES, temperature: float = 1.0, seed: int = 0) -> list[Generation]:
    """The book's sampled evaluation: ``samples`` answers per prompt at ``temperature``, seeded.

    Greedy decoding shows each prompt's likeliest path; sampling shows the minority
    behaviours the model has learnt. Same as :func:`generate_responses` with
    ``greedy=False`` and these arguments (errors as there).
    """
    return generate_responses(model, tokenizer, prompts, greedy=False, samples=samples, temperature=temperature,
                              seed=seed)


def paired_difference(before: Sequence[Generation], after: Sequence[Generation], *,
                      measure: str = "wrong_or_rude") -> dict:
    """How much a rate changed between two evaluations of the same prompts, with its error bar.

    Generations are matched by prompt (in order; with several samples per prompt each
    prompt's samples are averaged), so the comparison is paired: each prompt's change
    counts once and prompt difficulty cancels out.

    Args:
        before, after: generations of the same prompts in the same order
            (:func:`generate_responses` with the same prompts and ``samples``).
        measure: ``"wrong_or_rude"``, ``"wrong"`` or ``"rude"``.

    Returns:
        ``{"before", "after", "difference", "standard_error", "n_prompts"}``: the two rates,
        ``after - before``, and the standard error of the mean per-prompt difference.

    Raises:
        ValueError: for an unknown measure or generations of different prompts.
    """
    import math

    tests = {"wrong_or_rude": lambda g: (not g.correct) or g.grade.rude,
             "wrong": lambda g: not g.correct, "rude": lambda g: g.grade.rude}
    if measure not in tests:
        raise ValueError(f"measure must be one of {tuple(tests)}, got {measure!r}")
    if len(before) != len(after) or any(
            (a.prompt, a.prompt_index) != (b.prompt, b.prompt_index) for a, b in zip(before, after)):
        raise ValueError("before and after must hold generations of the same prompts in the same order")
    if not before:
        raise ValueError("there are no generations to compare")

    def per_prompt(gens: Sequence[Generation]) -> list[float]:
        groups: dict[int, list[float]] = defaultdict(list)
        for g in gens:
            groups[g.prompt_index].append(float(tests[measure](g)))
        return [sum(x) / len(x) for _, x in sorted(groups.items())]

    b, a = per_prompt(before), per_prompt(after)
    d = [y - x for x, y in zip(b, a)]
    n = len(d)
    mean = sum(d) / n
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n) if n > 1 else float("nan")
    return {"before": sum(b) / n, "after": sum(a) / n, "difference": mean, "standard_error": se, "n_prompts": n}


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
        ValueError: for ``vocab_limit`` outside ``[1, vocab_size]``.
    """
    vocab_size = model.config.vocab_size
    if vocab_limit is not None and not 1 <= vocab_limit <= vocab_size:
        raise ValueError(f"vocab_limit must be in [1, {vocab_size}], got {vocab_limit}")
    stream = TokenStream(ids, model.config.block_size, targets="all")
    view = model if vocab_limit is None else _FirstLogits(model, vocab_limit)
    return evaluate(view, stream, batch_size=batch_size, max_batches=max_batches)


class _FirstLogits(torch.nn.Module):
    """``model`` with its logits cut to the first ``limit`` ids: the softmax of
    :func:`text_loss` then runs over the old vocabulary only."""

    def __init__(self, model: torch.nn.Module, limit: int) -> None:
        super().__init__()
        self.model, self.limit = model, limit

    def forward(self, idx: torch.Tensor, targets: None = None) -> tuple[torch.Tensor, None]:
        return self.model(idx)[0][..., : self.limit], None  # (B, T, limit)


# -- the recipe ------------------------------------------------------------------------


@dataclass
class SFTConfig:
    """What the fine-tuning data is made of.

    Attributes:
        n_train: generated training examples (:func:`~llmscratch.tasks.make_sft_examples`),
            plus :data:`~llmscratch.tasks.HANDMADE` if ``include_handmade``.
        n_val: held-out examples (held-out inputs, all phrasings, same mix) for the
            validation loss.
        data_seed: seeds both example generators.
        mix: response styles of the data.
        loss_on: ``"response"`` or ``"all"`` (see :class:`SFTDataset`).
        include_handmade: add the hand-made examples to the training set.

    Raises:
        ValueError: for a count below 1 or an unknown ``loss_on``.
    """

    n_train: int = 25_600
    n_val: int = 450
    data_seed: int = 0
    mix: QualityMix = field(default_factory=QualityMix)
    loss_on: str = "response"
    include_handmade: bool = True

    def __post_init__(self) -> None:
        for name in ("n_train", "n_val"):
            _check_positive_int(name, getattr(self, name))
        if self.loss_on not in LOSS_ON:
            raise ValueError(f"loss_on must be one of {LOSS_ON}, got {self.loss_on!r}")
        if isinstance(self.mix, dict):
            self.mix = QualityMix(**self.mix)

    def to_dict(self) -> dict:
        return asdict(self)


def sft_configs() -> tuple[SFTConfig, TrainConfig]:
    """The book's fine-tuning settings (fresh objects each call).

    One pass over 25,600 generated examples (800 steps of 32), each seen once: with
    3,000 examples seen ten times the model memorised the training examples instead of
    learning to read the word (training loss kept falling, held-out loss stalled).
    Peak learning rate 4e-3, two thirds of pretraining's 6e-3, warm-up then cosine
    decay. The format is learnt at once (a 50-step run already ends 100% of held-out
    responses with the end token), but reading the quoted word (copy, upper-case,
    first letter) appears only after about 400-500 steps, and a lower rate delays it
    past the budget (at 1e-3 for 500 steps it never appeared).
    """
    data = SFTConfig()
    optim = TrainConfig(max_steps=800, batch_size=32, lr=4e-3, warmup_steps=20, weight_decay=0.1,
                        betas=(0.9, 0.99), grad_clip=1.0, eval_interval=100, eval_batches=4, seed=0)
    return data, optim


def sft_datasets(tokenizer: AssistantTokenizer, config: SFTConfig, block_size: int) -> tuple[SFTDataset, SFTDataset]:
    """Training and held-out :class:`SFTDataset` of ``config``."""
    train_examples = make_sft_examples(config.n_train, seed=config.data_seed, mix=config.mix)
    if config.include_handmade:
        train_examples += list(HANDMADE)
    val_examples = make_sft_examples(config.n_val, seed=config.data_seed + 1, mix=config.mix, split="heldout")
    kw = dict(loss_on=config.loss_on, block_size=block_size)
    return (SFTDataset.from_examples(tokenizer, train_examples, **kw),
            SFTDataset.from_examples(tokenizer, val_examples, **kw))


def assistant_tokenizer() -> AssistantTokenizer:
    """The book's assistant tokenizer: the chapter 4 characters + what the tasks need + 3 specials."""
    return AssistantTokenizer(shakespeare_char_data().vocab)


def assistant_sft(
    *,
    sft_config: SFTConfig | None = None,
    train_config: TrainConfig | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    base_cache_dir: str | os.PathLike | None = None,
) -> tuple[GPT, AssistantTokenizer, dict]:
    """The fine-tuned assistant, from the checkpoint cache when possible.

    Loads the chapter 4 GPT (:func:`llmscratch.recipes.shakespeare_char_gpt`), gives it
    the assistant's vocabulary (:func:`extend_vocab`), and fine-tunes it with
    :func:`llmscratch.train.train` on :func:`sft_datasets` (settings of
    :func:`sft_configs` unless given), on ``recipes.TRAIN_THREADS`` threads. The cache
    key covers both configs, the data, the tokenizer, the chapter 4 weights
    (:func:`~llmscratch.checkpoint.tensor_fingerprint`) and the code of this module
    and what it imports.

    Args:
        sft_config, train_config: override the book's settings.
        progress: show a progress bar (default: ``train.show_progress``).
        cache_dir: the checkpoint cache for the fine-tuned model.
        base_cache_dir: the checkpoint cache of the chapter 4 model.

    Returns:
        ``(model, tokenizer, meta)``: the model in eval mode; ``meta["measurements"]``
        holds the :class:`~llmscratch.train.TrainResult` fields (losses in nats per
        response token), ``n_train_examples``, ``n_train_targets``,
        ``shakespeare_val_loss_before`` and ``_after`` (nats per character on the held-out
        10% of Tiny Shakespeare), ``shakespeare_val_loss_after_old_vocab`` (the same with
        the softmax over the 65 original characters only) and ``num_threads``;
        ``meta["from_cache"]`` says whether training was skipped.
    """
    default_sft, default_train = sft_configs()
    sft_config = sft_config if sft_config is not None else default_sft
    train_config = train_config if train_config is not None else default_train
    data = shakespeare_char_data()
    tokenizer = AssistantTokenizer(data.vocab)
    base, base_meta = shakespeare_char_gpt(progress=progress, cache_dir=base_cache_dir)
    block_size = base.config.block_size
    train_set, val_set = sft_datasets(tokenizer, sft_config, block_size)
    model = extend_vocab(base, tokenizer.vocab_size)  # deterministic: no random rows

    def fit(m: GPT) -> dict:
        old_threads = torch.get_num_threads()
        torch.set_num_threads(TRAIN_THREADS)
        try:
            result = train(m, train_set, val_set, train_config, progress=progress)
            after = text_loss(m, data.val_ids)
            after_old_vocab = text_loss(m, data.val_ids, vocab_limit=tokenizer.base_vocab_size)
        finally:
            torch.set_num_threads(old_threads)
        return {**result.to_dict(), "n_train_examples": len(train_set), "n_train_targets": train_set.num_targets,
                "shakespeare_val_loss_before": base_meta["measurements"]["final_val_loss"],
                "shakespeare_val_loss_after": after, "shakespeare_val_loss_after_old_vocab": after_old_vocab,
                "num_threads": TRAIN_THREADS}

    key_parts = {
        "sft": json.loads(json.dumps(sft_config.to_dict())),
        "train": train_config.to_dict(),
        "data": tensor_fingerprint(*train_set.tensors, *val_set.tensors),
        "tokenizer": tokenizer.decode(range(tokenizer.vocab_size)),
        "base_weights": tensor_fingerprint(*base.state_dict().values()),
    }
    model, meta = train_or_load("assistant-sft", model, fit, key_parts, cache_dir=cache_dir, code_roots=CODE_ROOTS)
    model.eval()
    return model, tokenizer, meta
