"""Triton kernels of the fused loss at the logits level (Liger `ops/` style).

One program per token row. `_vsdpo_fwd_kernel` streams the vocabulary in BLOCK_V blocks with
an online log-sum-exp in fp32 for student and teacher and accumulates the divergence (for the
KL variants a rescaled running Σ exp(z − m)·(z_s − z_T); JSD needs log M, which depends on
both final log-sum-exps, so it makes a second pass). The host then turns (D, log p) into
per-token coefficients (token_terms.py), and `_vsdpo_bwd_kernel` writes
    g = c_kl·∂D/∂z + c_pg·(onehot(target) − p_s)
into the gradient buffer, which may be the student logits buffer itself (in place).
The divergence is a constexpr: 0 reverse KL, 1 forward KL, 2 JSD.
Legend: N token rows, V vocabulary.
"""

import math

import torch
import triton
import triton.language as tl

from kernels.config import LossConfig

DIVERGENCE_IDS = {"reverse_kl": 0, "forward_kl": 1, "jsd": 2}
MAX_BLOCK_V = 4096
NUM_WARPS = 8


@triton.jit
def _vsdpo_fwd_kernel(
    s_ptr, s_stride,  # [N, V] student logits, fp32|bf16
    t_ptr, t_stride,  # [N, V] teacher logits, fp32|bf16
    target_ptr,  # [N] int64
    lse_s_ptr, lse_t_ptr,  # [N] fp32 out: log-sum-exp of z = logits / T
    div_ptr,  # [N] fp32 out: D
    aux_ptr,  # [N] fp32 out: the KL term the gradient needs (reverse: D; JSD: KL(p_s‖M))
    logp_ptr,  # [N] fp32 out: log p_s(target)
    V, inv_temp, log_beta, log_1m_beta,
    DIVERGENCE: tl.constexpr,
    BLOCK_V: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    s_row = s_ptr + row * s_stride
    t_row = t_ptr + row * t_stride

    # Pass 1: online log-sum-exp of both rows; KL variants also carry Σ e·(z_s − z_T).
    m_s = float("-inf")
    d_s = 0.0
    m_t = float("-inf")
    d_t = 0.0
    acc = 0.0
    for start in range(0, V, BLOCK_V):
        offs = start + tl.arange(0, BLOCK_V)
        valid = offs < V
        z_s = tl.load(s_row + offs, mask=valid, other=0.0).to(tl.float32) * inv_temp
        z_t = tl.load(t_row + offs, mask=valid, other=0.0).to(tl.float32) * inv_temp
        diff = z_s - z_t  # 0 on masked lanes
        z_s = tl.where(valid, z_s, float("-inf"))
        z_t = tl.where(valid, z_t, float("-inf"))
        new_m_s = tl.maximum(m_s, tl.max(z_s, axis=0))
        new_m_t = tl.maximum(m_t, tl.max(z_t, axis=0))
        alpha_s = tl.exp(m_s - new_m_s)
        alpha_t = tl.exp(m_t - new_m_t)
        e_s = tl.exp(z_s - new_m_s)  # 0 on masked lanes
        e_t = tl.exp(z_t - new_m_t)
        if DIVERGENCE == 0:
            acc = acc * alpha_s + tl.sum(e_s * diff, axis=0)
        elif DIVERGENCE == 1:
            acc = acc * alpha_t - tl.sum(e_t * diff, axis=0)
        d_s = d_s * alpha_s + tl.sum(e_s, axis=0)
        d_t = d_t * alpha_t + tl.sum(e_t, axis=0)
        m_s = new_m_s
        m_t = new_m_t
    lse_s = m_s + tl.log(d_s)
    lse_t = m_t + tl.log(d_t)

    if DIVERGENCE == 0:  # Σ p_s (z_s − z_T) − lse_s + lse_T
        div = acc / d_s - lse_s + lse_t
        aux = div
    elif DIVERGENCE == 1:  # Σ p_T (z_T − z_s) − lse_T + lse_s
        div = acc / d_t - lse_t + lse_s
        aux = div
    else:
        # Pass 2 (JSD only): log M = logaddexp(log β + log p_T, log(1 − β) + log p_s).
        kl_t = 0.0
        kl_s = 0.0
        for start in range(0, V, BLOCK_V):
            offs = start + tl.arange(0, BLOCK_V)
            valid = offs < V
            lq_s = tl.load(s_row + offs, mask=valid, other=0.0).to(tl.float32) * inv_temp - lse_s
            lq_t = tl.load(t_row + offs, mask=valid, other=0.0).to(tl.float32) * inv_temp - lse_t
            log_m = _log_mixture(lq_s, lq_t, log_beta, log_1m_beta)
            kl_s += tl.sum(tl.where(valid, tl.exp(lq_s) * (lq_s - log_m), 0.0), axis=0)
            kl_t += tl.sum(tl.where(valid, tl.exp(lq_t) * (lq_t - log_m), 0.0), axis=0)
        beta = tl.exp(log_beta)
        div = beta * kl_t + (1.0 - beta) * kl_s
        aux = kl_s

    target = tl.load(target_ptr + row)
    logp = tl.load(s_row + target).to(tl.float32) * inv_temp - lse_s
    tl.store(lse_s_ptr + row, lse_s)
    tl.store(lse_t_ptr + row, lse_t)
    tl.store(div_ptr + row, div)
    tl.store(aux_ptr + row, aux)
    tl.store(logp_ptr + row, logp)


@triton.jit
def _log_mixture(lq_s, lq_t, log_beta, log_1m_beta):
    """log(β·p_T + (1 − β)·p_s) from log-probabilities, stable for tiny probabilities."""
    a = lq_t + log_beta
    b = lq_s + log_1m_beta
    hi = tl.maximum(a, b)
    return hi + tl.log(1.0 + tl.exp(tl.minimum(a, b) - hi))


@triton.jit
def _vsdpo_bwd_kernel(
    s_ptr, s_stride,  # [N, V] student logits, fp32|bf16
    t_ptr, t_stride,  # [N, V] teacher logits, fp32|bf16
    g_ptr, g_stride,  # [N, V] out: d loss / d student logits (may alias s_ptr)
    target_ptr,  # [N] int64
    lse_s_ptr, lse_t_ptr, aux_ptr,  # [N] fp32 from the forward kernel
    coef_kl_ptr, coef_pg_ptr,  # [N] fp32 per-token coefficients, 1/T folded in
    V, inv_temp, log_beta, log_1m_beta,
    DIVERGENCE: tl.constexpr,
    BLOCK_V: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    s_row = s_ptr + row * s_stride
    t_row = t_ptr + row * t_stride
    g_row = g_ptr + row * g_stride
    lse_s = tl.load(lse_s_ptr + row)
    lse_t = tl.load(lse_t_ptr + row)
    aux = tl.load(aux_ptr + row)
    coef_kl = tl.load(coef_kl_ptr + row)
    coef_pg = tl.load(coef_pg_ptr + row)
    target = tl.load(target_ptr + row)

    for start in range(0, V, BLOCK_V):
        offs = start + tl.arange(0, BLOCK_V)
        valid = offs < V
        lq_s = tl.load(s_row + offs, mask=valid, other=0.0).to(tl.float32) * inv_temp - lse_s
        lq_t = tl.load(t_row + offs, mask=valid, other=0.0).to(tl.float32) * inv_temp - lse_t
        p_s = tl.exp(lq_s)
        if DIVERGENCE == 0:  # p_s ⊙ ((log p_s − log p_T) − KL(p_s‖p_T))
            d_div = p_s * ((lq_s - lq_t) - aux)
        elif DIVERGENCE == 1:  # p_s − p_T
            d_div = p_s - tl.exp(lq_t)
        else:  # (1 − β)·p_s ⊙ ((log p_s − log M) − KL(p_s‖M))
            log_m = _log_mixture(lq_s, lq_t, log_beta, log_1m_beta)
            d_div = tl.exp(log_1m_beta) * p_s * ((lq_s - log_m) - aux)
        onehot = tl.where(offs == target, 1.0, 0.0)
        grad = coef_kl * d_div + coef_pg * (onehot - p_s)
        tl.store(g_row + offs, grad.to(g_ptr.dtype.element_ty), mask=valid)


def _block_v(vocab: int) -> int:
    return min(MAX_BLOCK_V, triton.next_power_of_2(vocab))


def fused_chunk_triton(s_CV, t_CV, grad_CV, target_C, token_fn, config: LossConfig):
    """Loss terms of a chunk of rows; writes d loss / d student logits into grad_CV.

    s_CV, t_CV: logits (fp32|bf16, last dim contiguous); grad_CV may be s_CV (in place).
    token_fn(div_C, logp_C) -> TokenTerms. Returns (div_C, logp_C, terms).
    """
    num_rows, vocab = s_CV.shape
    stats_5C = torch.empty(5, num_rows, dtype=torch.float32, device=s_CV.device)
    lse_s_C, lse_t_C, div_C, aux_C, logp_C = stats_5C.unbind(0)
    beta = config.jsd_beta
    scalars = (vocab, 1.0 / config.temperature, math.log(beta), math.log1p(-beta))
    meta = dict(DIVERGENCE=DIVERGENCE_IDS[config.divergence], BLOCK_V=_block_v(vocab), num_warps=NUM_WARPS)
    _vsdpo_fwd_kernel[(num_rows,)](
        s_CV, s_CV.stride(0), t_CV, t_CV.stride(0), target_C,
        lse_s_C, lse_t_C, div_C, aux_C, logp_C, *scalars, **meta,
    )
    terms = token_fn(div_C, logp_C)
    coef_kl_C = terms.coef_kl_C.float().contiguous()
    coef_pg_C = terms.coef_pg_C.float().contiguous()
    _vsdpo_bwd_kernel[(num_rows,)](
        s_CV, s_CV.stride(0), t_CV, t_CV.stride(0), grad_CV, grad_CV.stride(0), target_C,
        lse_s_C, lse_t_C, aux_C, coef_kl_C, coef_pg_C, *scalars, **meta,
    )
    return div_C, logp_C, terms
