"""The PyTorch reference of the visual-SDPO loss: its readable specification (the formulas
are in docs/kernels.md).

Plain autograd over materialised [N, V] log-probabilities, computed in float64 when given
float64 (and at least float32 otherwise). Tests check the fused kernels against it and
benchmarks use it as the eager baseline. Legend: N tokens, V vocabulary.
"""

import math

import torch

from kernels.config import LossConfig


def divergence_reference(logq_s_NV: torch.Tensor, logq_t_NV: torch.Tensor, config: LossConfig) -> torch.Tensor:
    """Per-token divergence D_t [N] between student and teacher log-probabilities."""
    p_s_NV, p_t_NV = logq_s_NV.exp(), logq_t_NV.exp()
    if config.divergence == "reverse_kl":
        return (p_s_NV * (logq_s_NV - logq_t_NV)).sum(-1)
    if config.divergence == "forward_kl":
        return (p_t_NV * (logq_t_NV - logq_s_NV)).sum(-1)
    beta = config.jsd_beta
    # log M = log(β p_T + (1 − β) p_s), computed without leaving log space.
    log_m_NV = torch.logaddexp(logq_t_NV + math.log(beta), logq_s_NV + math.log1p(-beta))
    kl_t_N = (p_t_NV * (logq_t_NV - log_m_NV)).sum(-1)
    kl_s_N = (p_s_NV * (logq_s_NV - log_m_NV)).sum(-1)
    return beta * kl_t_N + (1.0 - beta) * kl_s_N


def policy_gradient_reference(logp_N, old_logp_N, adv_N, config: LossConfig):
    """Clipped PPO/GRPO term per token: returns (pg_N, ratio_N, clipped_N).

    clipped_N is True where the clipped branch is the (strictly) smaller objective, i.e. where
    the token gets no policy gradient.
    """
    ratio_N = torch.exp(logp_N - old_logp_N)
    clipped_ratio_N = ratio_N.clamp(1.0 - config.clip_low, 1.0 + config.clip_high)
    unclipped_obj_N, clipped_obj_N = ratio_N * adv_N, clipped_ratio_N * adv_N
    pg_N = -torch.minimum(unclipped_obj_N, clipped_obj_N)
    return pg_N, ratio_N, (clipped_obj_N < unclipped_obj_N).detach()


def vsdpo_loss_reference(
    student_logits_NV: torch.Tensor,
    teacher_logits_NV: torch.Tensor,
    target_ids_N: torch.Tensor,
    credit_weight_N: torch.Tensor,
    advantages_N: torch.Tensor,
    old_logprobs_N: torch.Tensor | None,
    mask_N: torch.Tensor | None = None,
    normalizer: float | None = None,
    config: LossConfig = LossConfig(),
):
    """loss = Σ_t m_t·(kl_coef·w_t·ρ_t·D_t + pg_coef·pg_t) / normalizer, with stats.

    old_logprobs_N=None means on-policy: old = logp.detach(), so the ratio is 1 in value while
    the policy gradient still flows through logp. The teacher and ρ are constants.
    Returns (loss [], stats dict of detached tensors).
    """
    dtype = torch.promote_types(student_logits_NV.dtype, torch.float32)
    num_tokens = student_logits_NV.shape[0]
    logq_s_NV = torch.log_softmax(student_logits_NV.to(dtype) / config.temperature, dim=-1)
    logq_t_NV = torch.log_softmax(teacher_logits_NV.detach().to(dtype) / config.temperature, dim=-1)
    div_N = divergence_reference(logq_s_NV, logq_t_NV, config)

    logp_N = logq_s_NV.gather(-1, target_ids_N[:, None]).squeeze(-1)
    old_N = logp_N.detach() if old_logprobs_N is None else old_logprobs_N.to(dtype)
    pg_N, ratio_N, clipped_N = policy_gradient_reference(logp_N, old_N, advantages_N.to(dtype), config)
    clip = config.divergence_ratio_clip
    rho_N = torch.ones_like(ratio_N) if clip is None else ratio_N.detach().clamp(max=clip)

    m_N = torch.ones(num_tokens, dtype=dtype, device=logp_N.device) if mask_N is None else mask_N.to(dtype)
    if normalizer is None:
        normalizer = m_N.sum().clamp(min=torch.finfo(dtype).tiny)  # a fully masked batch gives 0, not NaN
    per_token_N = config.kl_coef * credit_weight_N.to(dtype) * rho_N * div_N + config.pg_coef * pg_N
    loss = (m_N * per_token_N).sum() / normalizer

    active_N = m_N > 0
    stats = {
        "divergence": div_N.detach(),
        "logprob": logp_N.detach(),
        "ratio": ratio_N.detach(),
        "clip_fraction": (clipped_N & active_N).sum() / active_N.sum().clamp(min=1),
        "divergence_mean": (m_N * div_N).detach().sum() / m_N.sum().clamp(min=torch.finfo(dtype).tiny),
    }
    return loss, stats
