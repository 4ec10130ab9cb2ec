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

The pieces: :func:`~llmscratch.logprobs.sequence_logprob` (log-probability of the response
tokens only, :mod:`llmscratch.logprobs`), :func:`frozen_reference`, :func:`dpo_loss`,
:class:`~llmscratch.preference_data.PreferenceDataset` (a dataset of the training loop,
:mod:`llmscratch.preference_data`; both are re-exported here), :class:`DPOObjective` (the
loss as an objective of the one training loop, :func:`llmscratch.train.train`), and
:func:`preference_metrics` and :func:`drift` for held-out evaluation. The cached run the chapter loads is
:func:`llmscratch.recipes.assistant_dpo`.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .logprobs import (  # noqa: F401  (re-exported: `from llmscratch.dpo import sequence_logprob` keeps working)
    sequence_logprob,
    token_logprobs,
)
from .preference_data import (  # noqa: F401  (re-exported: `from llmscratch.dpo import PreferenceDataset` works)
    PreferenceDataset,
    _check_dataset,
    dataset_logprobs,
)
from .tasks import PAIR_KINDS
from .validate import check_float, check_float_tensor, check_module


def _check_logps(**tensors: object) -> None:
    for name, t in tensors.items():
        check_float_tensor(name, t)


def _check_pair_batch(batch: object) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` as ``(ids, mask)``, a :meth:`PreferenceDataset.batch` block of ``2B`` rows."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"batch must be an (ids, mask) pair from PreferenceDataset.batch, got {type(batch).__name__}")
    ids, mask = batch
    if isinstance(ids, torch.Tensor) and ids.ndim >= 1 and ids.shape[0] % 2:
        raise ValueError(f"batch ids must hold 2B rows (B chosen, then B rejected), got {ids.shape[0]}")
    return ids, mask


def frozen_reference(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``model`` that cannot train: ``requires_grad=False``, eval mode.

    DPO's reference ``pi_ref`` is the SFT model as it was before DPO; it must not move
    when the policy (initially the same weights) does.

    Raises:
        TypeError: if ``model`` is not a torch module.
    """
    check_module("model", model)
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
            (:func:`~llmscratch.logprobs.sequence_logprob`) of the chosen and rejected
            responses under the policy, in nats.
        reference_chosen_logps, reference_rejected_logps: the same under the reference.
        beta: the strength of the implicit KL penalty (> 0): small beta lets the policy
            move far from the reference, large beta keeps it close.

    Returns:
        ``(loss, chosen_rewards, rejected_rewards)``: the mean of
        ``-log sigmoid(beta * (log-ratio chosen - log-ratio rejected))`` (a 0-d tensor,
        ``ln 2`` when policy and reference agree), and the implicit rewards
        ``beta * (log pi - log pi_ref)`` of each response, ``(B,)``, detached.

    Raises:
        TypeError: if ``beta`` is not a number or a log-probability is not a
            floating-point tensor.
        ValueError: if ``beta`` is not finite and > 0, or the four tensors do not share
            one 1-D shape.
    """
    beta = check_float("beta", beta, minimum=0.0, min_inclusive=False)
    _check_logps(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        reference_chosen_logps=reference_chosen_logps,
        reference_rejected_logps=reference_rejected_logps,
    )
    shapes = {
        tuple(t.shape)
        for t in (policy_chosen_logps, policy_rejected_logps,
                  reference_chosen_logps, reference_rejected_logps)
    }
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(
            "the four log-probability tensors must share one shape (B,), "
            f"got {sorted(shapes)}"
        )
    chosen_log_ratio = policy_chosen_logps - reference_chosen_logps  # (B,)
    rejected_log_ratio = policy_rejected_logps - reference_rejected_logps  # (B,)
    loss = -F.logsigmoid(beta * (chosen_log_ratio - rejected_log_ratio)).mean()
    return loss, beta * chosen_log_ratio.detach(), beta * rejected_log_ratio.detach()


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

    Raises:
        TypeError: if an argument is not a floating-point tensor.
    """
    _check_logps(chosen_rewards=chosen_rewards, rejected_rewards=rejected_rewards,
                 policy_chosen_logps=policy_chosen_logps, policy_rejected_logps=policy_rejected_logps)
    return {
        "accuracy": (chosen_rewards > rejected_rewards).float().mean().item(),
        "margin": (chosen_rewards - rejected_rewards).mean().item(),
        "chosen_reward": chosen_rewards.mean().item(),
        "rejected_reward": rejected_rewards.mean().item(),
        "logp_accuracy": (policy_chosen_logps > policy_rejected_logps).float().mean().item(),
    }


class DPOObjective:
    """The DPO loss as an objective of the training loop.

    ``objective(policy, batch) -> (loss, metrics)``, where ``batch`` is what
    ``PreferenceDataset.sample`` returns: ``ids (2B, T)`` and ``mask (2B, T)``, the
    ``B`` chosen responses first. The policy scores both halves in one forward pass;
    the frozen reference scores them too, without gradients (:meth:`reference_logps`,
    which keeps each distinct batch's scores: the reference never changes, so the
    held-out set, scored whole at every evaluation, costs one reference pass, not one
    per evaluation);
    :meth:`loss` turns the four log-probabilities into the loss (:func:`dpo_loss` with
    this ``beta``) and the metrics of :func:`reward_metrics`, to which ``count``
    (pairs) and ``tokens`` are added. A variant of DPO overrides :meth:`loss` (another
    loss of the same log-probabilities, e.g. IPO) or :meth:`reference_logps` (another
    reference).

    Args:
        reference: the frozen reference model (:func:`frozen_reference`).
        beta: the strength of the implicit KL penalty, > 0.

    Raises:
        TypeError: if ``reference`` is not a torch module or ``beta`` not a number.
        ValueError: if ``reference`` has trainable parameters, or ``beta`` is not
            finite and > 0.
    """

    def __init__(self, reference: torch.nn.Module, beta: float) -> None:
        check_module("reference", reference)
        if any(p.requires_grad for p in reference.parameters()):
            raise ValueError(
                "reference must be frozen (requires_grad=False); "
                "use frozen_reference(model)"
            )
        self.reference = reference
        self.beta = check_float("beta", beta, minimum=0.0, min_inclusive=False)
        self._reference_cache: dict[tuple, torch.Tensor] = {}

    def __call__(self, policy: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        ids, mask = _check_pair_batch(batch)
        n = ids.shape[0] // 2
        logps = sequence_logprob(policy, ids, mask)  # (2B,): chosen, then rejected
        ref = self.reference_logps(ids, mask)  # (2B,)
        loss, metrics = self.loss(logps[:n], logps[n:], ref[:n], ref[n:])
        return loss, {**metrics, "count": n, "tokens": ids.numel()}

    @torch.no_grad()
    def reference_logps(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sequence log-probabilities ``(2B,)`` of the batch under the frozen
        reference, computed once per distinct batch (keyed by its ids and mask) and
        then read back: the values are the ones a new pass would give."""
        key = (tuple(ids.shape), ids.numpy().tobytes(), mask.numpy().tobytes())
        if key not in self._reference_cache:
            self._reference_cache[key] = sequence_logprob(self.reference, ids, mask)
        return self._reference_cache[key]

    def loss(
        self,
        policy_chosen_logps: torch.Tensor,
        policy_rejected_logps: torch.Tensor,
        reference_chosen_logps: torch.Tensor,
        reference_rejected_logps: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """:func:`dpo_loss` of the four ``(B,)`` log-probabilities, and
        :func:`reward_metrics`."""
        loss, chosen, rejected = dpo_loss(
            policy_chosen_logps, policy_rejected_logps,
            reference_chosen_logps, reference_rejected_logps, self.beta,
        )
        return loss, reward_metrics(
            chosen, rejected, policy_chosen_logps, policy_rejected_logps
        )


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
    check_float("beta", beta, minimum=0.0, min_inclusive=False)
    check_module("policy", policy)
    check_module("reference", reference)
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
    check_module("policy", policy)
    check_module("reference", reference)
    _check_dataset(dataset)
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
