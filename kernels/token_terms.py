"""Per-token scalar terms shared by the fused kernels: ratio, clipping, ρ, the loss of each
token and the two coefficients that turn ∂D/∂z and ∂logp/∂z into the logits gradient.

Everything here is [C] (one chunk of tokens) in fp32, so it is cheap plain PyTorch; the
[C, V] work lives in vsdpo_torch.py / vsdpo_triton.py.
"""

from dataclasses import dataclass

import torch

from kernels.config import LossConfig


@dataclass
class TokenTerms:
    loss_sum: torch.Tensor  # [] Σ_t m_t·(kl_coef·w_t·ρ_t·D_t + pg_coef·pg_t) / normalizer
    coef_kl_C: torch.Tensor  # [C] multiplies ∂D/∂z in the logits gradient (1/T folded in)
    coef_pg_C: torch.Tensor  # [C] multiplies (onehot(target) − p_s) (1/T folded in)
    ratio_C: torch.Tensor  # [C] π/π_old
    clipped_C: torch.Tensor  # [C] bool: the clipped branch is active (no policy gradient)


def token_terms(div_C, logp_C, old_C, credit_weight_C, adv_C, scale_C, config: LossConfig) -> TokenTerms:
    """scale_C = m_t / normalizer. old_C=None is on-policy (ratio 1, gradient −A)."""
    ratio_C = torch.ones_like(logp_C) if old_C is None else torch.exp(logp_C - old_C)
    unclipped_obj_C = ratio_C * adv_C
    clipped_obj_C = ratio_C.clamp(1.0 - config.clip_low, 1.0 + config.clip_high) * adv_C
    clipped_C = clipped_obj_C < unclipped_obj_C
    pg_C = -torch.minimum(unclipped_obj_C, clipped_obj_C)
    # ∂pg/∂logp = −A·ratio on the unclipped branch, 0 where the clip is active.
    dpg_C = torch.where(clipped_C, 0.0, -unclipped_obj_C)
    clip = config.divergence_ratio_clip
    rho_C = ratio_C.clamp(max=clip) if clip is not None else torch.ones_like(ratio_C)

    kl_scale_C = scale_C * config.kl_coef * credit_weight_C * rho_C
    loss_sum = (kl_scale_C * div_C + scale_C * config.pg_coef * pg_C).sum()
    inv_temp = 1.0 / config.temperature
    return TokenTerms(
        loss_sum=loss_sum,
        coef_kl_C=kl_scale_C * inv_temp,
        coef_pg_C=scale_C * config.pg_coef * dpg_C * inv_temp,
        ratio_C=ratio_C,
        clipped_C=clipped_C,
    )
