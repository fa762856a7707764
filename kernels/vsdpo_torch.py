"""Chunk kernel of the fused loss in plain PyTorch: the CPU hot path (`kernel="torch"`).

Given one chunk of student and teacher logits already in fp32 buffers, it computes the
divergence and log-prob of every token, asks `token_fn` for the per-token coefficients, and
overwrites the student buffer with d loss / d student-logits. Every step works in place on
three persistent [C, V] buffers (student, teacher, scratch), so the cost per element is seven
streaming passes for the KL variants: two fused row-wise log-softmaxes, one exp, a
subtraction, a dot product and two for the gradient. JSD needs log M and allocates one more
[C, V] temporary.
Legend: C tokens of the chunk, V vocabulary.
"""

import math

import torch

from kernels.config import LossConfig


def _rowdot(a_CV: torch.Tensor, b_CV: torch.Tensor) -> torch.Tensor:
    """Σ_v a·b per row without a [C, V] product temporary."""
    return torch.bmm(a_CV.unsqueeze(1), b_CV.unsqueeze(2)).view(-1)


def _reverse_kl(s_CV, t_CV, x_CV, target_C, token_fn):
    torch.log_softmax(s_CV, dim=-1, out=s_CV)  # s = log p_s
    torch.log_softmax(t_CV, dim=-1, out=t_CV)  # t = log p_T
    torch.exp(s_CV, out=x_CV)  # x = p_s
    logp_C = s_CV.gather(1, target_C[:, None]).squeeze(1)
    t_CV.sub_(s_CV)  # t = log p_T − log p_s
    div_C = -_rowdot(x_CV, t_CV)
    terms = token_fn(div_C, logp_C)
    # g = p_s ⊙ (c_kl·((log p_s − log p_T) − D) − c_pg) + c_pg·onehot
    bias_C = -terms.coef_kl_C * div_C - terms.coef_pg_C
    torch.addcmul(bias_C[:, None], t_CV, -terms.coef_kl_C[:, None], out=s_CV)
    s_CV.mul_(x_CV)
    return div_C, logp_C, terms


def _forward_kl(s_CV, t_CV, x_CV, target_C, token_fn):
    torch.log_softmax(s_CV, dim=-1, out=s_CV)  # s = log p_s
    torch.log_softmax(t_CV, dim=-1, out=t_CV)  # t = log p_T
    torch.exp(t_CV, out=x_CV)  # x = p_T
    logp_C = s_CV.gather(1, target_C[:, None]).squeeze(1)
    t_CV.sub_(s_CV)  # t = log p_T − log p_s
    div_C = _rowdot(x_CV, t_CV)
    terms = token_fn(div_C, logp_C)
    # g = c_kl·(p_s − p_T) + c_pg·(onehot − p_s)
    s_CV.exp_().mul_((terms.coef_kl_C - terms.coef_pg_C)[:, None])
    s_CV.addcmul_(x_CV, -terms.coef_kl_C[:, None])
    return div_C, logp_C, terms


def _jsd(s_CV, t_CV, x_CV, target_C, token_fn, beta):
    torch.log_softmax(s_CV, dim=-1, out=x_CV)  # x = log p_s
    torch.log_softmax(t_CV, dim=-1, out=t_CV)  # t = log p_T
    logp_C = x_CV.gather(1, target_C[:, None]).squeeze(1)
    p_CV = torch.add(t_CV, math.log(beta))  # the one extra [C, V] temporary
    torch.add(x_CV, math.log1p(-beta), out=s_CV)
    torch.logaddexp(s_CV, p_CV, out=s_CV)  # s = log M, M = β p_T + (1 − β) p_s
    torch.exp(t_CV, out=p_CV)  # p = p_T
    t_CV.sub_(s_CV)
    kl_t_C = _rowdot(p_CV, t_CV)  # KL(p_T‖M)
    torch.exp(x_CV, out=p_CV)  # p = p_s
    x_CV.sub_(s_CV)  # x = log p_s − log M
    kl_s_C = _rowdot(p_CV, x_CV)  # KL(p_s‖M)
    div_C = beta * kl_t_C + (1.0 - beta) * kl_s_C
    terms = token_fn(div_C, logp_C)
    # g = p_s ⊙ (c_kl·(1 − β)·((log p_s − log M) − KL(p_s‖M)) − c_pg) + c_pg·onehot
    scale_C = terms.coef_kl_C * (1.0 - beta)
    torch.addcmul((-scale_C * kl_s_C - terms.coef_pg_C)[:, None], x_CV, scale_C[:, None], out=s_CV)
    s_CV.mul_(p_CV)
    return div_C, logp_C, terms


def fused_chunk_torch(s_CV, t_CV, x_CV, target_C, token_fn, config: LossConfig):
    """Loss terms of one chunk; overwrites s_CV with d loss / d logits and clobbers t_CV, x_CV.

    s_CV, t_CV: raw student / teacher logits (fp32, contiguous); x_CV: fp32 scratch.
    token_fn(div_C, logp_C) -> TokenTerms. Returns (div_C, logp_C, terms).
    """
    if config.temperature != 1.0:
        s_CV.mul_(1.0 / config.temperature)
        t_CV.mul_(1.0 / config.temperature)
    if config.divergence == "reverse_kl":
        div_C, logp_C, terms = _reverse_kl(s_CV, t_CV, x_CV, target_C, token_fn)
    elif config.divergence == "forward_kl":
        div_C, logp_C, terms = _forward_kl(s_CV, t_CV, x_CV, target_C, token_fn)
    else:
        div_C, logp_C, terms = _jsd(s_CV, t_CV, x_CV, target_C, token_fn, config.jsd_beta)
    s_CV.scatter_add_(1, target_C[:, None], terms.coef_pg_C[:, None])
    return div_C, logp_C, terms
