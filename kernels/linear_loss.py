"""`linear_vsdpo_loss`: the fused loss straight from hidden states, one chunk of tokens at a
time. Peak memory beyond the gradients of h and W: two [C, V] chunk buffers in the input dtype
(three fp32 ones on CPU) plus, when W is not fp32, the fp32 dW [V, H] accumulator beside W's
gradient (bench/loss_checks.py's `memory_plan` checks this bound).

Per chunk: logits = h_C @ W.T and teacher logits = ht_C @ Wt.T (cuBLAS / MKL), the chunk
kernel overwrites the student logits with their gradient g, then dh_C = g @ W and
dW += g.T @ h_C, accumulated in fp32. Legend: N tokens, C chunk, V vocabulary, H hidden.
"""

import torch

from kernels.config import LossConfig
from kernels.loss import Tokens, build_stats, default_chunk_size, run_chunks, scaled_grad, use_triton
from kernels.validate import check_linear, check_token_inputs
from kernels.vsdpo_torch import fused_chunk_torch
from kernels.vsdpo_triton import fused_chunk_triton


_ADDMM_OUT_DTYPE = {"cuda": True}  # device type -> accepts addmm(bf16, bf16, out_dtype=fp32)


def _accumulate_weight_grad(grad_w32_VH, g_CV, h_CH) -> None:
    """dW += g.T @ h in fp32: cuBLAS accumulates bf16 products in fp32 directly; elsewhere the
    chunk is upcast (the CPU, and torch builds that refuse `out_dtype`: found on the first
    call, then remembered)."""
    kind = g_CV.device.type
    if g_CV.dtype != torch.float32 and _ADDMM_OUT_DTYPE.get(kind, False):
        try:
            torch.addmm(grad_w32_VH, g_CV.T, h_CH, out_dtype=torch.float32, out=grad_w32_VH)
            return
        except torch.OutOfMemoryError:
            raise
        except (TypeError, RuntimeError):  # no such keyword, or no kernel in this build
            _ADDMM_OUT_DTYPE[kind] = False
    grad_w32_VH.addmm_(g_CV.T.float(), h_CH.float())


def _triton_chunk_fn(h_NH, w_VH, ht_NH, wt_VH, grad_h_NH, grad_w32_VH, tokens, config, chunk_rows):
    """Chunk logits in the input dtype; the Triton kernel writes the gradient in place."""
    s_buf = torch.empty(chunk_rows, w_VH.shape[0], dtype=h_NH.dtype, device=h_NH.device)
    t_buf = torch.empty(chunk_rows, wt_VH.shape[0], dtype=ht_NH.dtype, device=h_NH.device)

    def chunk_fn(rows, fn):
        num_rows = rows.stop - rows.start
        s_CV, t_CV = s_buf[:num_rows], t_buf[:num_rows]
        torch.mm(h_NH[rows], w_VH.T, out=s_CV)
        torch.mm(ht_NH[rows], wt_VH.T, out=t_CV)
        out = fused_chunk_triton(s_CV, t_CV, s_CV, tokens.target_N[rows], fn, config)
        if grad_h_NH is not None:
            torch.mm(s_CV, w_VH, out=grad_h_NH[rows])
            _accumulate_weight_grad(grad_w32_VH, s_CV, h_NH[rows])
        return out

    return chunk_fn


def _torch_chunk_fn(h_NH, w_VH, ht_NH, wt_VH, grad_h_NH, grad_w32_VH, tokens, config, chunk_rows):
    """Chunk logits in fp32 (each chunk upcast); PyTorch ops overwrite them with the gradient."""
    w32_VH = w_VH.float()
    wt32_VH = w32_VH if wt_VH.data_ptr() == w_VH.data_ptr() else wt_VH.float()  # one upcast when shared
    buf_3CV = torch.empty(3, chunk_rows, w_VH.shape[0], dtype=torch.float32, device=h_NH.device)

    def chunk_fn(rows, fn):
        s_CV, t_CV, x_CV = buf_3CV[:, : rows.stop - rows.start]
        h32_CH = h_NH[rows].float()
        torch.mm(h32_CH, w32_VH.T, out=s_CV)
        torch.mm(ht_NH[rows].float(), wt32_VH.T, out=t_CV)
        out = fused_chunk_torch(s_CV, t_CV, x_CV, tokens.target_N[rows], fn, config)
        if grad_h_NH is None:
            return out
        if grad_h_NH.dtype == torch.float32:
            torch.mm(s_CV, w32_VH, out=grad_h_NH[rows])
        else:
            grad_h_NH[rows].copy_(s_CV @ w32_VH)
        grad_w32_VH.addmm_(s_CV.T, h32_CH)
        return out

    return chunk_fn


class LinearVSDPOLossFunction(torch.autograd.Function):
    """loss = Σ_t m_t·(kl_coef·w_t·ρ_t·D_t + pg_coef·pg_t) / normalizer with logits = h @ W.T.
    Gradients for h and W are computed during forward (skipped when no gradient is wanted:
    the same log-probs, two head-sized matmuls fewer); the teacher gets none."""

    @staticmethod
    def forward(ctx, h_NH, w_VH, ht_NH, wt_VH, tokens: Tokens, config: LossConfig, chunk_rows: int,
                needs_grad: bool):
        h_NH, w_VH = h_NH.contiguous(), w_VH.contiguous()
        ht_NH = ht_NH.detach().contiguous()
        wt_VH = w_VH if wt_VH is None else wt_VH.detach().contiguous()
        grad_h_NH = grad_w32_VH = None
        if needs_grad:
            grad_h_NH = torch.empty_like(h_NH)
            grad_w32_VH = torch.zeros(w_VH.shape, dtype=torch.float32, device=w_VH.device)
        build = _triton_chunk_fn if use_triton(config, h_NH.device) else _torch_chunk_fn
        chunk_fn = build(h_NH, w_VH.detach(), ht_NH, wt_VH.detach(), grad_h_NH, grad_w32_VH, tokens, config, chunk_rows)
        loss, stats = run_chunks(tokens, h_NH.shape[0], chunk_rows, chunk_fn)
        if needs_grad:
            ctx.save_for_backward(grad_h_NH, grad_w32_VH.to(w_VH.dtype))
        ctx.mark_non_differentiable(*stats)
        return (loss, *stats)

    @staticmethod
    def backward(ctx, grad_loss, *unused_stats_grads):
        grad_h_NH, grad_w_VH = ctx.saved_tensors
        return (scaled_grad(grad_h_NH, grad_loss), scaled_grad(grad_w_VH, grad_loss),
                None, None, None, None, None, None)


def linear_vsdpo_loss(student_hidden, lm_head_weight, teacher_hidden, target_ids, credit_weight, advantages,
                      old_logprobs, mask=None, normalizer=None, config: LossConfig = LossConfig(),
                      teacher_weight=None, chunk_size=None):
    """`vsdpo_loss` (same math, arguments and stats) with logits = student_hidden @ lm_head_weight.T
    and teacher logits = teacher_hidden @ (teacher_weight or lm_head_weight).T, computed one chunk
    of `chunk_size` tokens at a time (None: `default_chunk_size`).

    student_hidden [N, H] and lm_head_weight [V, H] (fp32|bf16, same dtype) get gradients of their
    own dtype (the weight gradient is accumulated in fp32); teacher_hidden [N, H'] and
    teacher_weight [V, H'] (None: the shared lm_head_weight, e.g. self-distillation with live
    weights; a tensor: an EMA or frozen teacher) are constants.
    """
    check_linear(student_hidden, lm_head_weight, teacher_hidden, teacher_weight, chunk_size)
    num_tokens, vocab = student_hidden.shape[0], lm_head_weight.shape[0]
    check_token_inputs(num_tokens, vocab, student_hidden.device, target_ids, credit_weight, advantages,
                       old_logprobs, mask, normalizer)
    tokens = Tokens(target_ids, credit_weight, advantages, old_logprobs, mask, normalizer, config)
    chunk_rows = chunk_size or default_chunk_size(num_tokens, vocab, student_hidden.dtype,
                                                  student_hidden.device)
    needs_grad = torch.is_grad_enabled() and (student_hidden.requires_grad or lm_head_weight.requires_grad)
    loss, *stats = LinearVSDPOLossFunction.apply(
        student_hidden, lm_head_weight, teacher_hidden, teacher_weight, tokens, config, min(chunk_rows, num_tokens),
        needs_grad,
    )
    return loss, build_stats(tokens, *stats)
