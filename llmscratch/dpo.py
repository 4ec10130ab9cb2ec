"""Direct preference optimisation (DPO): align the assistant with pairs of better and worse answers.

Taught in chapter 6. RLHF (Ouyang et al. 2022) fits a reward model to human
preferences, then maximises it with reinforcement learning while a KL penalty keeps
the policy near the fine-tuned model. Rafailov et al. 2023 ("Direct Preference
Optimization: Your Language Model is Secretly a Reward Model") show that the optimal
policy of that KL-regularised objective defines its own reward,
``r(x, y) = beta * log(pi(y|x) / pi_ref(y|x))`` (up to a term of x alone), so the
Bradley-Terry likelihood of the preferences can be maximised over the policy directly.
Their equation 7 is the loss::

    L = -log sigmoid( beta * [ (log pi(y_w|x) - log pi_ref(y_w|x))
                             - (log pi(y_l|x) - log pi_ref(y_l|x)) ] )

with ``y_w`` the chosen and ``y_l`` the rejected response. No reward model, no sampling
during training: only log-probabilities of given responses under two models.

The pieces: :func:`sequence_logprob` (log-probability of the response tokens only),
:func:`frozen_reference`, :func:`dpo_loss`, :class:`PreferenceDataset` (a dataset of the
training loop), :class:`DPOObjective` (the loss as an objective of the one training
loop, :func:`llmscratch.train.train`), and :func:`preference_metrics` and
:func:`drift` for held-out evaluation. The cached run the chapter loads is
:func:`llmscratch.recipes.assistant_dpo`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .chat import AssistantTokenizer
from .tasks import PAIR_KINDS, PreferencePair
from .validate import check_float

def _check_ids_mask(ids: torch.Tensor, response_mask: torch.Tensor) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.ndim != 2:
        raise TypeError(f"ids must be an int64 tensor (B, T), got {getattr(ids, 'dtype', type(ids))}")
    if not isinstance(response_mask, torch.Tensor) or response_mask.dtype != torch.bool:
        raise TypeError("response_mask must be a bool tensor (B, T)")
    if response_mask.shape != ids.shape:
        raise ValueError(f"response_mask shape {tuple(response_mask.shape)} != ids shape {tuple(ids.shape)}")
    if ids.shape[1] < 2:
        raise ValueError(f"ids need at least 2 positions, got T={ids.shape[1]}")
    if bool(response_mask[:, 0].any()):
        raise ValueError("response_mask[:, 0] must be False: the first token has no context to score it")


def token_logprobs(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """``log p(ids[:, t] | ids[:, :t])`` for ``t >= 1``: ``(B, T - 1)``, nats."""
    logits, _ = model(ids[:, :-1])  # (B, T-1, V): position t-1 predicts token t
    return logits.log_softmax(dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)  # (B, T-1)


def sequence_logprob(model: torch.nn.Module, ids: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Log-probability of each row's response under ``model``: ``(B,)``, nats.

    ``sum_t log p(ids[b, t] | ids[b, :t])`` over the positions ``t`` where
    ``response_mask[b, t]`` is True: the response tokens and the end token. The prompt
    is context only, and padding after the end token is neither scored nor (the model
    being causal) seen by a scored position, so padding cannot change the result.

    Args:
        model: a language model, ``model(idx) -> (logits (B, T, V), _)``.
        ids: ``(B, T)`` int64, prompt + response + end token, right-padded.
        response_mask: ``(B, T)`` bool, e.g. the ``loss_mask`` of
            :meth:`llmscratch.sft.AssistantTokenizer.render` (False on padding).

    Raises:
        TypeError: for a wrong dtype or rank.
        ValueError: for mismatched shapes, ``T < 2``, or a True mask at position 0.
    """
    _check_ids_mask(ids, response_mask)
    logp = token_logprobs(model, ids)  # (B, T-1)
    return torch.where(response_mask[:, 1:], logp, torch.zeros_like(logp)).sum(dim=-1)  # (B,)


def frozen_reference(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``model`` that cannot train: ``requires_grad=False``, eval mode.

    DPO's reference ``pi_ref`` is the SFT model as it was before DPO; it must not move
    when the policy (initially the same weights) does.
    """
    reference = copy.deepcopy(model)
    reference.requires_grad_(False)
    reference.eval()
    return reference


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO loss (Rafailov et al. 2023, eq. 7) and the implicit rewards.

    Args:
        policy_chosen_logps, policy_rejected_logps: ``(B,)`` sequence log-probabilities
            (:func:`sequence_logprob`) of the chosen and rejected responses under the
            policy, in nats.
        reference_chosen_logps, reference_rejected_logps: the same under the reference.
        beta: the strength of the implicit KL penalty (> 0): small beta lets the policy
            move far from the reference, large beta keeps it close.

    Returns:
        ``(loss, chosen_rewards, rejected_rewards)``: the mean of
        ``-log sigmoid(beta * (log-ratio chosen - log-ratio rejected))`` (a 0-d tensor,
        ``ln 2`` when policy and reference agree), and the implicit rewards
        ``beta * (log pi - log pi_ref)`` of each response, ``(B,)``, detached.

    Raises:
        TypeError: if ``beta`` is not a number.
        ValueError: if ``beta`` is not finite and > 0, or the four tensors do not share
            one 1-D shape.
    """
    beta = check_float("beta", beta, minimum=0.0, min_inclusive=False)
    shapes = {tuple(t.shape) for t in (policy_chosen_logps, policy_rejected_logps,
                                       reference_chosen_logps, reference_rejected_logps)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"the four log-probability tensors must share one shape (B,), got {sorted(shapes)}")
    chosen_log_ratio = policy_chosen_logps - reference_chosen_logps  # (B,)
    rejected_log_ratio = policy_rejected_logps - reference_rejected_logps  # (B,)
    loss = -F.logsigmoid(beta * (chosen_log_ratio - rejected_log_ratio)).mean()
    return loss, beta * chosen_log_ratio.detach(), beta * rejected_log_ratio.detach()


class PreferenceDataset:
    """Preference pairs rendered and right-padded: chosen and rejected ids with response masks.

    A dataset of the training loop (:mod:`llmscratch.train`): ``sample`` and ``batches``
    give :meth:`batch` blocks, which :class:`DPOObjective` reads.

    Attributes:
        chosen_ids, rejected_ids: ``(N, L)`` int64, padded with ``tokenizer.pad_id``.
        chosen_mask, rejected_mask: ``(N, L)`` bool, True on response tokens and the end token.
        pairs: the :class:`~llmscratch.tasks.PreferencePair` objects; ``kinds`` their kinds.

    Raises:
        ValueError: for no pairs, or a pair longer than ``block_size`` tokens.
    """

    def __init__(self, tokenizer: AssistantTokenizer, pairs: Sequence[PreferencePair], *,
                 block_size: int | None = None) -> None:
        if len(pairs) == 0:
            raise ValueError("pairs is empty")
        chosen = [tokenizer.render(p.instruction, p.chosen) for p in pairs]
        rejected = [tokenizer.render(p.instruction, p.rejected) for p in pairs]
        longest = max(len(ids) for ids, _ in chosen + rejected)
        if block_size is not None and longest > block_size:
            raise ValueError(f"a pair has {longest} tokens, more than block_size={block_size}")
        n = len(pairs)
        self.chosen_ids = torch.full((n, longest), tokenizer.pad_id, dtype=torch.long)
        self.rejected_ids = torch.full((n, longest), tokenizer.pad_id, dtype=torch.long)
        self.chosen_mask = torch.zeros((n, longest), dtype=torch.bool)
        self.rejected_mask = torch.zeros((n, longest), dtype=torch.bool)
        for i, ((c, cm), (r, rm)) in enumerate(zip(chosen, rejected)):
            self.chosen_ids[i, : len(c)], self.chosen_mask[i, : len(c)] = c, cm
            self.rejected_ids[i, : len(r)], self.rejected_mask[i, : len(r)] = r, rm
        self.pairs = list(pairs)
        self.kinds = [p.kind for p in pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def sample(self, batch_size: int, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` random pairs (with replacement), as :meth:`batch`."""
        return self.batch(torch.randint(len(self), (batch_size,), generator=generator))

    def batches(self, batch_size: int):
        """Every pair once, in order, as :meth:`batch` blocks."""
        for start in range(0, len(self), batch_size):
            yield self.batch(torch.arange(start, min(start + batch_size, len(self))))

    @property
    def tensors(self) -> tuple[torch.Tensor, ...]:
        """What a cache key fingerprints."""
        return self.chosen_ids, self.chosen_mask, self.rejected_ids, self.rejected_mask

    def batch(self, ix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``ix`` as one block: ``ids (2B, T)`` and ``mask (2B, T)``, chosen first.

        Chosen and rejected go through the model together (one forward pass), cut after
        the last response token of the block.
        """
        ids = torch.cat([self.chosen_ids[ix], self.rejected_ids[ix]])  # (2B, L)
        mask = torch.cat([self.chosen_mask[ix], self.rejected_mask[ix]])  # (2B, L)
        end = int(mask.any(dim=0).nonzero().max()) + 1
        return ids[:, :end].contiguous(), mask[:, :end].contiguous()


@torch.no_grad()
def dataset_logprobs(model: torch.nn.Module, dataset: PreferenceDataset, *, batch_size: int = 256
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence log-probabilities ``(chosen (N,), rejected (N,))`` of every pair, in eval mode."""
    was_training = model.training
    model.eval()
    chosen, rejected = [], []
    try:
        for ids, mask in dataset.batches(batch_size):
            logps = sequence_logprob(model, ids, mask)  # (2n,): chosen, then rejected
            n = len(logps) // 2
            chosen.append(logps[:n])
            rejected.append(logps[n:])
    finally:
        model.train(was_training)
    return torch.cat(chosen), torch.cat(rejected)


def reward_metrics(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor,
                   policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor) -> dict[str, float]:
    """What the implicit rewards of :func:`dpo_loss` say about a batch of pairs, as means.

    Args:
        chosen_rewards, rejected_rewards: ``(B,)`` implicit rewards ``beta * log-ratio``.
        policy_chosen_logps, policy_rejected_logps: ``(B,)`` sequence log-probabilities
            under the policy, nats.

    Returns:
        ``accuracy`` (share of pairs whose chosen reward beats the rejected one; 0 when
        policy == reference, every margin then being 0), ``margin`` (mean reward
        difference), ``chosen_reward`` and ``rejected_reward`` (means), ``logp_accuracy``
        (share of pairs where the policy itself gives the chosen response the higher
        probability: the preference a model expresses when it generates).
    """
    return {
        "accuracy": (chosen_rewards > rejected_rewards).float().mean().item(),
        "margin": (chosen_rewards - rejected_rewards).mean().item(),
        "chosen_reward": chosen_rewards.mean().item(),
        "rejected_reward": rejected_rewards.mean().item(),
        "logp_accuracy": (policy_chosen_logps > policy_rejected_logps).float().mean().item(),
    }


class DPOObjective:
    """The DPO loss as an objective of the training loop: ``objective(policy, batch) -> (loss, metrics)``.

    ``batch`` is a :meth:`PreferenceDataset.batch` block, ``ids (2B, T)`` and
    ``mask (2B, T)`` with the ``B`` chosen responses first. The policy scores both halves
    in one forward pass; the frozen reference scores them too, without gradients
    (:meth:`reference_logps`); :meth:`loss` turns the four log-probabilities into the
    loss (:func:`dpo_loss` with this ``beta``) and the metrics of :func:`reward_metrics`,
    to which ``count`` (pairs) and ``tokens`` are added. A variant of DPO overrides
    :meth:`loss` (another loss of the same log-probabilities, e.g. IPO) or
    :meth:`reference_logps` (another reference).

    Args:
        reference: the frozen reference model (:func:`frozen_reference`).
        beta: the strength of the implicit KL penalty, > 0.

    Raises:
        ValueError: if ``reference`` has trainable parameters, or ``beta`` is not > 0.
    """

    def __init__(self, reference: torch.nn.Module, beta: float) -> None:
        if any(p.requires_grad for p in reference.parameters()):
            raise ValueError("reference must be frozen (requires_grad=False); use frozen_reference(model)")
        self.reference = reference
        self.beta = check_float("beta", beta, minimum=0.0, min_inclusive=False)

    def __call__(self, policy: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        ids, mask = batch
        n = ids.shape[0] // 2
        logps = sequence_logprob(policy, ids, mask)  # (2B,): chosen, then rejected
        ref = self.reference_logps(ids, mask)  # (2B,)
        loss, metrics = self.loss(logps[:n], logps[n:], ref[:n], ref[n:])
        return loss, {**metrics, "count": n, "tokens": ids.numel()}

    @torch.no_grad()
    def reference_logps(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sequence log-probabilities ``(2B,)`` of the batch under the frozen reference."""
        return sequence_logprob(self.reference, ids, mask)

    def loss(self, policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             reference_chosen_logps: torch.Tensor, reference_rejected_logps: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """:func:`dpo_loss` of the four ``(B,)`` log-probabilities, and :func:`reward_metrics`."""
        loss, chosen, rejected = dpo_loss(policy_chosen_logps, policy_rejected_logps,
                                          reference_chosen_logps, reference_rejected_logps, self.beta)
        return loss, reward_metrics(chosen, rejected, policy_chosen_logps, policy_rejected_logps)


@dataclass
class DPOConfig:
    """DPO's own setting, beside the optimiser's :class:`~llmscratch.train.TrainConfig`.

    Attributes:
        beta: the strength of the implicit KL penalty (Rafailov et al. 2023, eq. 7), > 0.

    Raises:
        TypeError, ValueError: if ``beta`` is not a finite number > 0.
    """

    beta: float = 0.1

    def __post_init__(self) -> None:
        self.beta = check_float("beta", self.beta, minimum=0.0, min_inclusive=False)

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def preference_metrics(policy: torch.nn.Module, reference: torch.nn.Module, dataset: PreferenceDataset,
                       beta: float) -> dict:
    """How well ``policy`` separates the pairs of ``dataset``, relative to ``reference``.

    Returns a dict: ``loss`` (mean DPO loss, nats), the metrics of :func:`reward_metrics`,
    and ``accuracy_by_kind`` (for each pair kind present, the share of its pairs whose
    chosen reward is higher).
    """
    pc, pr = dataset_logprobs(policy, dataset)
    rc, rr = dataset_logprobs(reference, dataset)
    loss, chosen, rejected = dpo_loss(pc, pr, rc, rr, beta)
    metrics = reward_metrics(chosen, rejected, pc, pr)
    win = (pc - rc) > (pr - rr)  # (N,): the chosen reward is higher (beta > 0 cancels)
    kinds = dataset.kinds
    by_kind = {k: win[[i for i, x in enumerate(kinds) if x == k]].float().mean().item()
               for k in PAIR_KINDS if k in kinds}
    return {"loss": loss.item(), **metrics, "accuracy_by_kind": by_kind}


@torch.no_grad()
def drift(policy: torch.nn.Module, reference: torch.nn.Module, dataset: PreferenceDataset) -> dict:
    """How far the policy has moved from the reference on the responses of ``dataset``.

    Returns a dict: ``token_kl_nats``, the mean over response positions (chosen and
    rejected responses, teacher-forced) of the exact ``KL(pi(.|context) || pi_ref(.|context))``
    over the vocabulary; ``chosen_log_ratio`` and ``rejected_log_ratio``, the mean
    ``log pi(y|x) - log pi_ref(y|x)`` of whole responses (nats).
    """
    modes = [(model, model.training) for model in (policy, reference)]
    policy.eval()
    reference.eval()
    try:
        ids, mask = dataset.batch(torch.arange(len(dataset)))
        logp = policy(ids[:, :-1])[0].log_softmax(-1)  # (2N, T-1, V)
        logq = reference(ids[:, :-1])[0].log_softmax(-1)
        kl = (logp.exp() * (logp - logq)).sum(-1)  # (2N, T-1)
        m = mask[:, 1:]
        pc, pr = dataset_logprobs(policy, dataset)
        rc, rr = dataset_logprobs(reference, dataset)
    finally:
        for model, was in modes:
            model.train(was)
    return {"token_kl_nats": kl[m].mean().item(), "chosen_log_ratio": (pc - rc).mean().item(),
            "rejected_log_ratio": (pr - rr).mean().item()}
