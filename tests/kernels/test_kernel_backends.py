"""The fused backends (chunked PyTorch, Triton — in the interpreter on CPU) against the
float64 reference: loss, stats and every gradient, at odd sizes, fp32 and bf16."""

import pytest
import torch
from kernel_cases import assert_close, assert_stats_close, reference_on, token_inputs

from kernels import LossConfig, linear_vsdpo_loss, vsdpo_loss
from kernels.token_terms import token_terms
from kernels.vsdpo_triton import MAX_BLOCK_V, fused_chunk_triton

CONFIGS = {
    "reverse_kl": LossConfig(divergence="reverse_kl"),
    "forward_kl": LossConfig(divergence="forward_kl", temperature=0.7, divergence_ratio_clip=1.3,
                             clip_low=0.1, clip_high=0.3),
    "jsd": LossConfig(divergence="jsd", jsd_beta=0.3, temperature=1.3, divergence_ratio_clip=2.0, kl_coef=0.5),
}
# (atol, rtol): bf16 gradients are stored in bf16 (2^-8 relative); bf16 linear chunks also
# round the logits themselves to bf16, so the loss moves by about 1e-2 relative there.
TOLERANCES = {torch.float32: (2e-5, 1e-4), torch.bfloat16: (1e-3, 1e-2)}
LINEAR_TOLERANCES = {torch.float32: (2e-5, 1e-4), torch.bfloat16: (1e-2, 3e-2)}
# (num_tokens, vocab, dtype, mask, grad_output)
LOGITS_CASES = [
    (1, 1, torch.float32, "none", 1.0),
    (7, 33, torch.float32, "some", 1.7),
    (7, 33, torch.bfloat16, "all", 0.6),
    (41, 1031, torch.float32, "some", 1.0),
    (41, 1031, torch.bfloat16, "some", 2.5),
    (3, 2 * MAX_BLOCK_V + 809, torch.float32, "some", 1.3),  # the online log-sum-exp spans 3 blocks
]


def _config(divergence: str, kernel: str) -> LossConfig:
    return LossConfig(**{**CONFIGS[divergence].__dict__, "kernel": kernel})


def _logits(num_tokens, vocab, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    s_NV = (2.0 * torch.randn(num_tokens, vocab, generator=gen)).to(dtype)
    t_NV = (s_NV.float() + torch.randn(num_tokens, vocab, generator=gen)).to(dtype)
    return s_NV, t_NV, gen


def _grad_scale(loss, scale: float):
    (loss * scale).backward() if scale != 1.0 else loss.backward()


@pytest.mark.parametrize("kernel", ["torch", "triton"])
@pytest.mark.parametrize("divergence", list(CONFIGS))
@pytest.mark.parametrize("num_tokens,vocab,dtype,mask,grad_output", LOGITS_CASES)
def test_logits_loss_stats_and_gradient_match_the_float64_reference(
    kernel, divergence, num_tokens, vocab, dtype, mask, grad_output
):
    config = _config(divergence, kernel)
    s_NV, t_NV, gen = _logits(num_tokens, vocab, dtype, seed=num_tokens * vocab)
    tokens = token_inputs(s_NV, gen, mask=mask, temperature=config.temperature)
    student_NV = s_NV.clone().requires_grad_()
    teacher_NV = t_NV.clone().requires_grad_()  # must receive no gradient
    loss, stats = vsdpo_loss(student_NV, teacher_NV, *tokens.args(), config=config)
    _grad_scale(loss, grad_output)

    ref_student_NV = s_NV.double().requires_grad_()
    ref_loss, ref_stats = reference_on(ref_student_NV, t_NV, tokens, config)
    _grad_scale(ref_loss, grad_output)

    atol, rtol = TOLERANCES[dtype]
    assert loss.dtype == torch.float32 and student_NV.grad.dtype == dtype
    assert_close(loss, ref_loss, atol, rtol, "loss")
    assert_close(student_NV.grad, ref_student_NV.grad, atol, rtol, "student_logits.grad")
    assert_stats_close(stats, ref_stats, atol, rtol, num_tokens)
    assert teacher_NV.grad is None
    if mask == "all":
        assert float(loss.detach()) == 0.0 and torch.count_nonzero(student_NV.grad) == 0


@pytest.mark.parametrize("kernel", ["torch", "triton"])
def test_on_policy_loss_without_old_logprobs_matches_the_reference(kernel):
    config = _config("reverse_kl", kernel)
    s_NV, t_NV, gen = _logits(7, 33, torch.float32, seed=3)
    tokens = token_inputs(s_NV, gen, mask="none", on_policy=True)
    student_NV = s_NV.clone().requires_grad_()
    loss, stats = vsdpo_loss(student_NV, t_NV, *tokens.args(), normalizer=5.0, config=config)
    loss.backward()
    ref_student_NV = s_NV.double().requires_grad_()
    ref_loss, _ = reference_on(ref_student_NV, t_NV, tokens, config, normalizer=5.0)
    ref_loss.backward()
    assert_close(loss, ref_loss, 2e-5, 1e-4, "loss")
    assert_close(student_NV.grad, ref_student_NV.grad, 2e-5, 1e-4, "student_logits.grad")
    assert torch.equal(stats["ratio"], torch.ones(7))


def test_triton_kernel_writing_the_gradient_in_place_matches_a_separate_buffer():
    s_NV, t_NV, gen = _logits(7, 1031, torch.float32, seed=5)
    tokens = token_inputs(s_NV, gen)
    config = _config("jsd", "triton")
    scale_N = tokens.mask_N / tokens.mask_N.sum()

    def token_fn(div_C, logp_C):
        return token_terms(div_C, logp_C, tokens.old_N, tokens.credit_weight_N, tokens.adv_N, scale_N, config)

    grad_NV = torch.empty_like(s_NV)
    div_sep, logp_sep, _ = fused_chunk_triton(s_NV, t_NV, grad_NV, tokens.target_N, token_fn, config)
    in_place_NV = s_NV.clone()
    div_in, logp_in, _ = fused_chunk_triton(in_place_NV, t_NV, in_place_NV, tokens.target_N, token_fn, config)
    assert torch.equal(in_place_NV, grad_NV)
    assert torch.equal(div_in, div_sep) and torch.equal(logp_in, logp_sep)


# (num_tokens, hidden, vocab, dtype, chunk_size, separate teacher weight, grad_output)
LINEAR_CASES = [
    (1, 8, 1, torch.float32, None, False, 1.0),
    (41, 16, 33, torch.float32, 8, True, 1.7),
    (41, 24, 1031, torch.float32, 16, False, 0.8),
    (41, 16, 1031, torch.bfloat16, 16, True, 1.0),
]


def _linear_inputs(num_tokens, hidden, vocab, dtype, separate_teacher, seed):
    gen = torch.Generator().manual_seed(seed)
    h_NH = torch.randn(num_tokens, hidden, generator=gen).to(dtype)
    w_VH = (torch.randn(vocab, hidden, generator=gen) / hidden**0.5 * 2).to(dtype)
    ht_NH = (h_NH.float() + 0.5 * torch.randn(num_tokens, hidden, generator=gen)).to(dtype)
    wt_VH = (w_VH.float() + 0.05 * torch.randn(vocab, hidden, generator=gen)).to(dtype) if separate_teacher else None
    return h_NH, w_VH, ht_NH, wt_VH, gen


@pytest.mark.parametrize("kernel", ["torch", "triton"])
@pytest.mark.parametrize("divergence", list(CONFIGS))
@pytest.mark.parametrize("num_tokens,hidden,vocab,dtype,chunk_size,separate_teacher,grad_output", LINEAR_CASES)
def test_linear_loss_and_hidden_and_weight_gradients_match_the_float64_reference(
    kernel, divergence, num_tokens, hidden, vocab, dtype, chunk_size, separate_teacher, grad_output
):
    config = _config(divergence, kernel)
    h_NH, w_VH, ht_NH, wt_VH, gen = _linear_inputs(num_tokens, hidden, vocab, dtype, separate_teacher, seed=vocab)
    s_NV = h_NH.double() @ w_VH.double().T
    tokens = token_inputs(s_NV, gen, mask="some", temperature=config.temperature)
    student_h = h_NH.clone().requires_grad_()
    weight = w_VH.clone().requires_grad_()
    teacher_h = ht_NH.clone().requires_grad_()
    teacher_w = None if wt_VH is None else wt_VH.clone().requires_grad_()
    loss, stats = linear_vsdpo_loss(student_h, weight, teacher_h, *tokens.args(), config=config,
                                    teacher_weight=teacher_w, chunk_size=chunk_size)
    _grad_scale(loss, grad_output)

    ref_h, ref_w = h_NH.double().requires_grad_(), w_VH.double().requires_grad_()
    ref_wt = ref_w.detach() if wt_VH is None else wt_VH.double()
    ref_loss, ref_stats = reference_on(ref_h @ ref_w.T, ht_NH.double() @ ref_wt.T, tokens, config)
    _grad_scale(ref_loss, grad_output)

    atol, rtol = LINEAR_TOLERANCES[dtype]
    assert student_h.grad.dtype == dtype and weight.grad.dtype == dtype
    assert_close(loss, ref_loss, atol, rtol, "loss")
    assert_close(student_h.grad, ref_h.grad, atol, rtol, "student_hidden.grad")
    assert_close(weight.grad, ref_w.grad, atol, rtol, "lm_head_weight.grad")
    flips = 0 if dtype == torch.float32 else 2  # bf16 chunk logits may move a ratio across a clip edge
    assert_stats_close(stats, ref_stats, atol, rtol, num_tokens, flips_allowed=flips)
    assert teacher_h.grad is None and (teacher_w is None or teacher_w.grad is None)


def test_linear_loss_does_not_depend_on_the_chunk_size():
    h_NH, w_VH, ht_NH, _, gen = _linear_inputs(41, 16, 257, torch.float32, False, seed=11)
    tokens = token_inputs(h_NH.double() @ w_VH.double().T, gen)
    results = []
    for chunk_size in (1, 7, 41):
        h = h_NH.clone().requires_grad_()
        w = w_VH.clone().requires_grad_()
        loss, _ = linear_vsdpo_loss(h, w, ht_NH, *tokens.args(), config=LossConfig(kernel="torch"),
                                    chunk_size=chunk_size)
        loss.backward()
        results.append((loss.detach(), h.grad, w.grad))
    for loss, grad_h, grad_w in results[1:]:
        torch.testing.assert_close(loss, results[0][0], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(grad_h, results[0][1], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(grad_w, results[0][2], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kernel", ["torch", "triton"])
def test_non_contiguous_inputs_give_the_same_result_as_contiguous_ones(kernel):
    config = _config("reverse_kl", kernel)
    s_NV, t_NV, gen = _logits(7, 33, torch.float32, seed=13)
    tokens = token_inputs(s_NV, gen)
    results = []
    for student_NV, teacher_NV, target_N in (
        (s_NV.clone(), t_NV, tokens.target_N),
        (s_NV.T.contiguous().T, t_NV.T.contiguous().T, torch.stack([tokens.target_N] * 2, 1)[:, 1]),
    ):
        student_NV.requires_grad_()
        loss, _ = vsdpo_loss(student_NV, teacher_NV, target_N, *tokens.args()[1:], config=config)
        loss.backward()
        results.append((loss.detach(), student_NV.grad))
    torch.testing.assert_close(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1])


def test_torch_and_triton_backends_give_the_same_training_trajectory():
    h_NH, w_VH, ht_NH, _, gen = _linear_inputs(13, 8, 65, torch.float32, False, seed=17)
    tokens = token_inputs(h_NH.double() @ w_VH.double().T, gen)
    weights = {}
    for kernel in ("torch", "triton"):
        weight = w_VH.clone().requires_grad_()
        optimizer = torch.optim.SGD([weight], lr=0.5)
        for _ in range(3):
            optimizer.zero_grad()
            loss, _ = linear_vsdpo_loss(h_NH, weight, ht_NH, *tokens.args(), config=_config("jsd", kernel),
                                        chunk_size=5)
            loss.backward()
            optimizer.step()
        weights[kernel] = weight.detach()
    assert not torch.equal(weights["torch"], w_VH)
    torch.testing.assert_close(weights["triton"], weights["torch"], atol=1e-5, rtol=1e-4)


def test_logits_level_torch_path_over_several_chunks_matches_one_chunk(monkeypatch):
    s_NV, t_NV, gen = _logits(41, 33, torch.bfloat16, seed=19)
    tokens = token_inputs(s_NV, gen)
    results = []
    for elements in (2**24, 4 * 33):  # one chunk of 41 rows, then chunks of 4 rows
        monkeypatch.setattr("kernels.loss.TORCH_CHUNK_ELEMENTS", elements)
        student_NV = s_NV.clone().requires_grad_()
        loss, stats = vsdpo_loss(student_NV, t_NV, *tokens.args(), config=_config("forward_kl", "torch"))
        loss.backward()
        results.append((loss.detach(), student_NV.grad, stats["divergence"]))
    for ours, single in zip(results[1], results[0]):
        torch.testing.assert_close(ours, single)
