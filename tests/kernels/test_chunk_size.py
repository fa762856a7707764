"""Chunk sizing by bytes: on CUDA at least 2048 rows (each chunk's fp32 dW read-modify-write
then hides under its matmul) within a stated byte budget; the CPU rule is unchanged; and the
Triton kernel at the CUDA rule's chunks (a full chunk and an odd remainder) matches float64."""

import pytest
import torch
from kernel_cases import assert_close, reference_on, token_inputs

from kernels import LossConfig, linear_vsdpo_loss
from kernels.loss import CUDA_CHUNK_BYTES, CUDA_MIN_ROWS, TORCH_CHUNK_ELEMENTS, default_chunk_size

CUDA, CPU = torch.device("cuda"), torch.device("cpu")


@pytest.mark.parametrize("vocab", [257, 32000, 151936, 262144])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_cuda_chunks_hold_at_least_2048_rows_within_their_byte_budget(vocab, dtype):
    rows = default_chunk_size(16384, vocab, dtype, CUDA)
    assert rows >= CUDA_MIN_ROWS == 2048
    assert rows * vocab * dtype.itemsize <= max(CUDA_CHUNK_BYTES, 2048 * vocab * dtype.itemsize)
    assert default_chunk_size(100, vocab, dtype, CUDA) == 100  # never more rows than tokens


def test_the_cpu_chunk_is_a_fixed_fp32_buffer():
    assert default_chunk_size(16384, 32000, torch.float32, CPU) == TORCH_CHUNK_ELEMENTS // 32000


def test_triton_at_the_cuda_rules_smallest_chunk_matches_the_float64_reference():
    num_tokens, hidden, vocab = 2051, 8, 33  # one 2048-row chunk and a 3-row remainder
    gen = torch.Generator().manual_seed(3)
    h_NH = torch.randn(num_tokens, hidden, generator=gen)
    w_VH = torch.randn(vocab, hidden, generator=gen) / hidden**0.5 * 2
    ht_NH = h_NH + 0.5 * torch.randn(num_tokens, hidden, generator=gen)
    tokens = token_inputs(h_NH.double() @ w_VH.double().T, gen, mask="some")
    config = LossConfig(kernel="triton")
    h, w = h_NH.clone().requires_grad_(), w_VH.clone().requires_grad_()
    loss, _ = linear_vsdpo_loss(h, w, ht_NH, *tokens.args(), config=config, chunk_size=CUDA_MIN_ROWS)
    loss.backward()
    ref_h, ref_w = h_NH.double().requires_grad_(), w_VH.double().requires_grad_()
    ref_loss, _ = reference_on(ref_h @ ref_w.T, ht_NH.double() @ ref_w.detach().T, tokens, config)
    ref_loss.backward()
    assert_close(loss, ref_loss, 2e-5, 1e-4, "loss")
    assert_close(h.grad, ref_h.grad, 2e-5, 1e-4, "student_hidden.grad")
    assert_close(w.grad, ref_w.grad, 2e-5, 1e-4, "lm_head_weight.grad")
