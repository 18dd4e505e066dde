"""Sigmoid DPO loss (Rafailov et al. 2023) with an optional SFT term: pure tensor maths.

``loss = -logsigmoid(beta * ((pc - rc) - (pr - rr)))`` averaged over pairs, where ``pc``/``pr``
are the policy's summed log-probs of the chosen/rejected completions and ``rc``/``rr`` the
frozen reference's. The implicit rewards are ``beta * (pc - rc)`` and ``beta * (pr - rr)``.

Example:
    >>> import torch
    >>> loss, m = dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]),
    ...                    torch.tensor([-2.0]), torch.tensor([-2.0]), beta=0.5)
    >>> round(loss.item(), 4), m["reward_accuracy"]
    (0.3133, 1.0)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dpo_loss(
    policy_chosen_logp: torch.Tensor,
    policy_rejected_logp: torch.Tensor,
    ref_chosen_logp: torch.Tensor,
    ref_rejected_logp: torch.Tensor,
    beta: float = 0.1,
    sft_weight: float = 0.0,
    chosen_lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """DPO loss over a batch of pairs (all inputs shape ``(N,)``, summed completion log-probs).

    ``sft_weight`` > 0 adds ``sft_weight * mean(-policy_chosen_logp / chosen_lengths)`` (the
    per-token NLL of the chosen completion; ``chosen_lengths`` is required then).
    Returns ``(loss, metrics)``; metrics are floats: ``loss``, ``dpo_loss``, ``sft_loss``,
    ``reward_chosen``, ``reward_rejected``, ``reward_margin``, ``reward_accuracy`` (ties
    count 0.5), ``logp_chosen``, ``logp_rejected``.
    """
    shapes = {t.shape for t in (policy_chosen_logp, policy_rejected_logp,
                                ref_chosen_logp, ref_rejected_logp)}
    if len(shapes) != 1:
        raise ValueError(f"dpo_loss: inputs must have one shape, got {sorted(map(tuple, shapes))}")
    ref_c = ref_chosen_logp.to(policy_chosen_logp.dtype).detach()
    ref_r = ref_rejected_logp.to(policy_rejected_logp.dtype).detach()
    chosen_reward = beta * (policy_chosen_logp - ref_c)  # (N,)
    rejected_reward = beta * (policy_rejected_logp - ref_r)  # (N,)
    margin = chosen_reward - rejected_reward
    dpo = -F.logsigmoid(margin).mean()
    loss = dpo
    sft = torch.zeros((), dtype=dpo.dtype, device=dpo.device)
    if sft_weight:
        if chosen_lengths is None:
            raise ValueError("dpo_loss: sft_weight > 0 needs chosen_lengths (tokens per chosen)")
        lengths = chosen_lengths.to(policy_chosen_logp.dtype).clamp_min(1)
        sft = (-policy_chosen_logp / lengths).mean()
        loss = dpo + sft_weight * sft
    with torch.no_grad():
        acc = (margin > 0).float() + 0.5 * (margin == 0).float()
        metrics = {
            "loss": float(loss),
            "dpo_loss": float(dpo),
            "sft_loss": float(sft),
            "reward_chosen": float(chosen_reward.mean()),
            "reward_rejected": float(rejected_reward.mean()),
            "reward_margin": float(margin.mean()),
            "reward_accuracy": float(acc.mean()),
            "logp_chosen": float(policy_chosen_logp.mean()),
            "logp_rejected": float(policy_rejected_logp.mean()),
        }
    return loss, metrics
