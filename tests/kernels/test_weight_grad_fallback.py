"""The fp32 weight-gradient accumulation of `linear_vsdpo_loss` where `addmm(out_dtype=fp32)`
is refused: the upcast fallback, found once and remembered, gives the same dW."""

import pytest
import torch

from kernels import linear_loss

V, C, H = 41, 37, 1271  # odd sizes


def _inputs(device):
    gen = torch.Generator().manual_seed(0)
    g_CV = torch.randn(C, V, generator=gen).to(device, torch.bfloat16)
    h_CH = torch.randn(C, H, generator=gen).to(device, torch.bfloat16)
    grad_w32_VH = torch.randn(V, H, generator=gen).to(device)
    return grad_w32_VH, g_CV, h_CH


def test_a_refused_out_dtype_falls_back_to_the_fp32_upcast_once(monkeypatch):
    # the CPU build has no bf16 x bf16 -> fp32 addmm: a faithful stand-in for a refusing build
    monkeypatch.setattr(linear_loss, "_ADDMM_OUT_DTYPE", {"cpu": True})
    grad_w32_VH, g_CV, h_CH = _inputs("cpu")
    expected = (grad_w32_VH.double() + g_CV.T.double() @ h_CH.double()).float()
    linear_loss._accumulate_weight_grad(grad_w32_VH, g_CV, h_CH)
    assert linear_loss._ADDMM_OUT_DTYPE == {"cpu": False}
    torch.testing.assert_close(grad_w32_VH, expected, atol=1e-4, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a CUDA GPU: compares cuBLAS's addmm(out_dtype=fp32) with the fallback")
def test_the_fallback_matches_the_cublas_fp32_accumulation(monkeypatch):
    fast, g_CV, h_CH = _inputs("cuda")
    slow = fast.clone()
    linear_loss._accumulate_weight_grad(fast, g_CV, h_CH)
    monkeypatch.setattr(linear_loss, "_ADDMM_OUT_DTYPE", {"cuda": False})
    linear_loss._accumulate_weight_grad(slow, g_CV, h_CH)
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-5)
