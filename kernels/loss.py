"""The public fused loss: `vsdpo_loss` (logits level) and `linear_vsdpo_loss` (from hidden
states, never holding [N, V] logits), each one autograd Function.

The loss is a scalar, so the gradient is computed during the forward pass (as if
grad_output = 1) and only scaled in backward. Tokens are processed in chunks of C rows; a
chunk kernel (Triton on CUDA, plain PyTorch on CPU) turns the chunk's logits into the loss
terms and the logits gradient. Legend: N tokens, C tokens of a chunk, V vocabulary, H hidden.
"""

import os

import torch

from kernels.config import LossConfig
from kernels.token_terms import token_terms
from kernels.validate import check_logits, check_token_inputs
from kernels.vsdpo_torch import fused_chunk_torch
from kernels.vsdpo_triton import fused_chunk_triton

def use_triton(config: LossConfig, device: torch.device) -> bool:
    """kernel="auto": Triton on CUDA tensors, PyTorch otherwise."""
    if config.kernel == "auto":
        return device.type == "cuda"
    if config.kernel == "triton" and device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(
            "config.kernel='triton' with CPU tensors needs TRITON_INTERPRET=1 in the environment "
            "before kernels is imported; use kernel='torch' (or 'auto') on CPU"
        )
    return config.kernel == "triton"


TORCH_CHUNK_ELEMENTS = 2**24  # one fp32 [C, V] buffer of the torch kernel (64 MB)
CUDA_CHUNK_BYTES = 2**29  # one [C, V] logits buffer on CUDA (512 MiB), unless that is < 2048 rows
CUDA_MIN_ROWS = 2048


def default_chunk_size(num_tokens: int, vocab: int, dtype: torch.dtype,
                       device: torch.device) -> int:
    """Rows per chunk, sized by the bytes of one [C, V] logits buffer.

    CUDA: 512 MiB per buffer, and at least 2048 rows. Each chunk's `dW += gᵀ·h` reads and writes
    the whole fp32 [V, H] accumulator, 2C FLOP per 8 B of it: from ~1200 rows that traffic
    hides under the matmul on an H100 (~300 FLOP/B), so 2048 rows keep it compute-bound (at
    ~440 rows it would cost ~1.4× the floor). Peak extra memory: two buffers of
    max(512 MiB, 2048·V·itemsize) + the fp32 dW (1.2 GiB + 2.3 GiB at
    V = 151936, H = 4096, bf16).
    CPU: a fixed 2^24-element fp32 buffer (three of them, ~200 MB): big chunks keep MKL efficient
    and the op count low, and a size independent of N keeps peak memory flat as the batch grows."""
    if device.type == "cuda":
        rows = max(CUDA_MIN_ROWS, CUDA_CHUNK_BYTES // (vocab * dtype.itemsize))
    else:
        rows = TORCH_CHUNK_ELEMENTS // vocab
    return max(1, min(num_tokens, rows))


class Tokens:
    """The [N] inputs in fp32 and the per-chunk `token_fn` the chunk kernels call."""

    def __init__(self, target_N, credit_weight_N, adv_N, old_N, mask_N, normalizer, config):
        self.target_N, self.config = target_N.contiguous(), config
        self.credit_weight_N, self.adv_N = credit_weight_N.float(), adv_N.float()
        self.old_N = None if old_N is None else old_N.float()
        self.m_N = torch.ones_like(self.adv_N) if mask_N is None else mask_N.float()
        norm = self.m_N.sum().clamp(min=torch.finfo(torch.float32).tiny) if normalizer is None else float(normalizer)
        self.scale_N = self.m_N / norm  # a fully masked batch gives 0, not NaN

    def fn(self, rows: slice):
        old_C = None if self.old_N is None else self.old_N[rows]
        return lambda div_C, logp_C: token_terms(
            div_C, logp_C, old_C, self.credit_weight_N[rows], self.adv_N[rows], self.scale_N[rows], self.config
        )


def run_chunks(tokens: Tokens, num_tokens: int, chunk_rows: int, chunk_fn):
    """Calls chunk_fn(rows, token_fn) -> (div_C, logp_C, terms) over all chunks; returns the
    loss and the stats tensors (divergence, logprob, ratio, clipped)."""
    loss = torch.zeros((), dtype=torch.float32, device=tokens.adv_N.device)
    parts = []
    for start in range(0, num_tokens, chunk_rows):
        rows = slice(start, min(start + chunk_rows, num_tokens))
        div_C, logp_C, terms = chunk_fn(rows, tokens.fn(rows))
        loss += terms.loss_sum
        parts.append((div_C, logp_C, terms.ratio_C, terms.clipped_C))
    return loss, [torch.cat(column) for column in zip(*parts)]


def build_stats(tokens: Tokens, div_N, logp_N, ratio_N, clipped_N) -> dict:
    active_N = tokens.m_N > 0
    return {
        "divergence": div_N,
        "logprob": logp_N,
        "ratio": ratio_N,
        "clip_fraction": (clipped_N & active_N).sum() / active_N.sum().clamp(min=1),
        "divergence_mean": (tokens.m_N * div_N).sum() / tokens.m_N.sum().clamp(min=torch.finfo(torch.float32).tiny),
    }


def scaled_grad(grad: torch.Tensor, grad_loss: torch.Tensor) -> torch.Tensor:
    """Scales a gradient computed for grad_output = 1 (in place: backward runs once)."""
    return grad if torch.equal(grad_loss, torch.ones_like(grad_loss)) else grad.mul_(grad_loss.to(grad.dtype))


class VSDPOLossFunction(torch.autograd.Function):
    """loss = Σ_t m_t·(kl_coef·w_t·ρ_t·D_t + pg_coef·pg_t) / normalizer over [N, V] logits.
    The gradient w.r.t. the student logits is written during forward into a fresh [N, V]
    buffer of the logits' dtype (the caller's logits are left untouched)."""

    @staticmethod
    def forward(ctx, s_NV, t_NV, tokens: Tokens, config: LossConfig):
        s_NV, t_NV = s_NV.contiguous(), t_NV.detach().contiguous()
        grad_NV = torch.empty_like(s_NV)
        num_tokens, vocab = s_NV.shape
        if use_triton(config, s_NV.device):
            loss, stats = run_chunks(tokens, num_tokens, num_tokens, lambda rows, fn: fused_chunk_triton(
                s_NV, t_NV, grad_NV, tokens.target_N, fn, config))
        else:
            chunk_rows = max(1, min(num_tokens, TORCH_CHUNK_ELEMENTS // vocab))
            buf_3CV = torch.empty(3, chunk_rows, vocab, dtype=torch.float32, device=s_NV.device)

            def chunk_fn(rows, fn):
                s_CV, t_CV, x_CV = buf_3CV[:, : rows.stop - rows.start]
                s_CV.copy_(s_NV[rows])
                t_CV.copy_(t_NV[rows])
                out = fused_chunk_torch(s_CV, t_CV, x_CV, tokens.target_N[rows], fn, config)
                grad_NV[rows].copy_(s_CV)
                return out

            loss, stats = run_chunks(tokens, num_tokens, chunk_rows, chunk_fn)
        ctx.save_for_backward(grad_NV)
        ctx.mark_non_differentiable(*stats)
        return (loss, *stats)

    @staticmethod
    def backward(ctx, grad_loss, *unused_stats_grads):
        (grad_NV,) = ctx.saved_tensors
        return scaled_grad(grad_NV, grad_loss), None, None, None


def vsdpo_loss(student_logits, teacher_logits, target_ids, credit_weight, advantages, old_logprobs,
               mask=None, normalizer=None, config: LossConfig = LossConfig()):
    """Credit-weighted self-distillation divergence + clipped policy gradient, fused.

    With p = softmax(logits / temperature) for student s and teacher T, per token t:
      D_t  = KL(p_s‖p_T) | KL(p_T‖p_s) | β·KL(p_T‖M) + (1−β)·KL(p_s‖M), M = β p_T + (1−β) p_s
      logp_t = log p_s(target_t), ratio_t = exp(logp_t − old_t)
      pg_t = −min(ratio_t·A_t, clip(ratio_t, 1 − clip_low, 1 + clip_high)·A_t)
      ρ_t  = min(ratio_t, divergence_ratio_clip) (detached) if divergence_ratio_clip is set, else 1
      loss = Σ_t m_t·(kl_coef·w_t·ρ_t·D_t + pg_coef·pg_t) / normalizer
    old_logprobs=None means on-policy: old = logp.detach() (ratio 1, gradient −A_t still flows).

    student_logits [N, V] fp32|bf16 (gets the gradient); teacher_logits [N, V] (constant);
    target_ids [N] int64; credit_weight, advantages, old_logprobs [N] float; mask [N] bool or
    float (None: all ones); normalizer: float (None: mask.sum(), or 1 when that is 0).
    Returns (loss: fp32 scalar, stats: dict of detached tensors — per-token `divergence`,
    `logprob`, `ratio` [N] and scalars `clip_fraction`, `divergence_mean`).
    The gradient is stored during forward and scaled in place by backward, so backward runs
    once per call (as with Liger's fused losses).
    """
    check_logits(student_logits, teacher_logits)
    num_tokens, vocab = student_logits.shape
    check_token_inputs(num_tokens, vocab, student_logits.device, target_ids, credit_weight, advantages,
                       old_logprobs, mask, normalizer)
    tokens = Tokens(target_ids, credit_weight, advantages, old_logprobs, mask, normalizer, config)
    loss, *stats = VSDPOLossFunction.apply(student_logits, teacher_logits, tokens, config)
    return loss, build_stats(tokens, *stats)
