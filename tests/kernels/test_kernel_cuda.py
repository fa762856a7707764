"""The Triton kernel on a real GPU against the float64 reference (skipped without CUDA)."""

import pytest
import torch
from kernel_cases import assert_close, assert_stats_close, reference_on, token_inputs

from kernels import LossConfig, linear_vsdpo_loss, vsdpo_loss

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: torch.cuda.is_available() is False"),
]


@pytest.mark.parametrize("divergence", ["reverse_kl", "forward_kl", "jsd"])
def test_triton_logits_loss_on_cuda_matches_the_reference_in_bf16(divergence):
    gen = torch.Generator().manual_seed(0)
    s_NV = (2 * torch.randn(512, 50021, generator=gen)).bfloat16()
    t_NV = (s_NV.float() + torch.randn(512, 50021, generator=gen)).bfloat16()
    tokens = token_inputs(s_NV, gen)
    config = LossConfig(divergence=divergence, divergence_ratio_clip=1.5, kernel="auto")
    student_NV = s_NV.cuda().requires_grad_()
    on_gpu = [None if x is None else x.cuda() for x in tokens.args()]
    loss, stats = vsdpo_loss(student_NV, t_NV.cuda(), *on_gpu, config=config)
    (2.0 * loss).backward()
    ref_student_NV = s_NV.double().requires_grad_()
    ref_loss, ref_stats = reference_on(ref_student_NV, t_NV, tokens, config)
    (2.0 * ref_loss).backward()
    assert_close(loss.cpu(), ref_loss, 1e-3, 1e-2, "loss")
    assert_close(student_NV.grad.cpu(), ref_student_NV.grad, 1e-3, 1e-2, "student_logits.grad")
    assert_stats_close({k: v.cpu() for k, v in stats.items()}, ref_stats, 1e-3, 1e-2, 512)


def test_triton_linear_loss_on_cuda_matches_the_reference_in_bf16():
    gen = torch.Generator().manual_seed(1)
    h_NH = torch.randn(1000, 256, generator=gen).bfloat16()
    w_VH = (torch.randn(32003, 256, generator=gen) / 8).bfloat16()
    ht_NH = (h_NH.float() + 0.5 * torch.randn(1000, 256, generator=gen)).bfloat16()
    tokens = token_inputs(h_NH.double() @ w_VH.double().T, gen)
    h, w = h_NH.cuda().requires_grad_(), w_VH.cuda().requires_grad_()
    on_gpu = [None if x is None else x.cuda() for x in tokens.args()]
    loss, _ = linear_vsdpo_loss(h, w, ht_NH.cuda(), *on_gpu, config=LossConfig(), chunk_size=256)
    loss.backward()
    ref_h, ref_w = h_NH.double().requires_grad_(), w_VH.double().requires_grad_()
    ref_loss, _ = reference_on(ref_h @ ref_w.T, ht_NH.double() @ ref_w.detach().T, tokens, LossConfig())
    ref_loss.backward()
    assert_close(loss.cpu(), ref_loss, 1e-2, 3e-2, "loss")
    assert_close(h.grad.cpu(), ref_h.grad, 1e-2, 3e-2, "student_hidden.grad")
    assert_close(w.grad.cpu(), ref_w.grad, 1e-2, 3e-2, "lm_head_weight.grad")
