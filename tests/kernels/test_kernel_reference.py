"""The reference loss (kernels/reference.py) against float64 autograd and closed forms."""

import pytest
import torch

from kernels import LossConfig
from kernels.reference import vsdpo_loss_reference

# With divergence_ratio_clip below every ratio (the smallest is 0.61), ρ = divergence_ratio_clip is constant in a
# neighbourhood, so finite differences see the same function as the detached ρ of autograd.
CONFIGS = [
    LossConfig(divergence="reverse_kl"),
    LossConfig(divergence="reverse_kl", divergence_ratio_clip=0.5, temperature=0.7),
    LossConfig(divergence="forward_kl", temperature=1.6, clip_low=0.1, clip_high=0.3),
    LossConfig(divergence="forward_kl", divergence_ratio_clip=0.5),
    LossConfig(divergence="jsd", jsd_beta=0.3, temperature=0.8),
    LossConfig(divergence="jsd", jsd_beta=0.7, divergence_ratio_clip=0.5),
]


def _inputs(num_tokens=5, vocab=6, seed=0, temperature=1.0):
    gen = torch.Generator().manual_seed(seed)
    s_NV = torch.randn(num_tokens, vocab, generator=gen, dtype=torch.float64)
    t_NV = torch.randn(num_tokens, vocab, generator=gen, dtype=torch.float64)
    target_N = torch.randint(0, vocab, (num_tokens,), generator=gen)
    credit_weight_N = 0.5 + torch.rand(num_tokens, generator=gen, dtype=torch.float64)
    adv_N = torch.randn(num_tokens, generator=gen, dtype=torch.float64)
    logp_N = torch.log_softmax(s_NV / temperature, -1).gather(-1, target_N[:, None]).squeeze(-1)
    old_N = logp_N + torch.tensor([-0.6, 0.5, 0.05, -0.4, 0.3], dtype=torch.float64)[:num_tokens]
    mask_N = torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0], dtype=torch.float64)[:num_tokens]
    return s_NV, t_NV, target_N, credit_weight_N, adv_N, old_N, mask_N


@pytest.mark.parametrize("config", CONFIGS,
                         ids=lambda c: f"{c.divergence}-is{c.divergence_ratio_clip}-T{c.temperature}")
def test_reference_gradient_matches_finite_differences_in_float64(config):
    s_NV, t_NV, target_N, credit_weight_N, adv_N, old_N, mask_N = _inputs(temperature=config.temperature)
    s_NV.requires_grad_()

    def loss_of(student):
        return vsdpo_loss_reference(student, t_NV, target_N, credit_weight_N, adv_N, old_N, mask_N, None, config)[0]

    assert torch.autograd.gradcheck(loss_of, (s_NV,), eps=1e-6, atol=1e-7)


def test_reverse_kl_gradient_is_p_s_times_log_ratio_minus_kl():
    s_NV, t_NV, target_N, credit_weight_N, adv_N, old_N, _ = _inputs()
    s_NV.requires_grad_()
    config = LossConfig(divergence="reverse_kl", pg_coef=0.0)
    loss, stats = vsdpo_loss_reference(s_NV, t_NV, target_N, torch.ones(5, dtype=torch.float64), adv_N, old_N,
                                       None, 1.0, config)
    loss.backward()
    logq_s, logq_t = torch.log_softmax(s_NV.detach(), -1), torch.log_softmax(t_NV, -1)
    kl_N = (logq_s.exp() * (logq_s - logq_t)).sum(-1)
    expected_NV = logq_s.exp() * ((logq_s - logq_t) - kl_N[:, None])
    torch.testing.assert_close(s_NV.grad, expected_NV)
    torch.testing.assert_close(stats["divergence"], kl_N)


def test_forward_kl_gradient_is_p_s_minus_p_t():
    s_NV, t_NV, target_N, credit_weight_N, adv_N, old_N, _ = _inputs()
    s_NV.requires_grad_()
    config = LossConfig(divergence="forward_kl", pg_coef=0.0)
    loss, _ = vsdpo_loss_reference(s_NV, t_NV, target_N, torch.ones(5, dtype=torch.float64), adv_N, old_N,
                                   None, 1.0, config)
    loss.backward()
    torch.testing.assert_close(s_NV.grad, torch.softmax(s_NV.detach(), -1) - torch.softmax(t_NV, -1))


@pytest.mark.parametrize("divergence", ["reverse_kl", "forward_kl", "jsd"])
def test_identical_distributions_give_zero_divergence_and_zero_divergence_gradient(divergence):
    s_NV, _, target_N, credit_weight_N, adv_N, old_N, mask_N = _inputs()
    s_NV.requires_grad_()
    config = LossConfig(divergence=divergence, pg_coef=0.0, temperature=0.9)
    loss, stats = vsdpo_loss_reference(s_NV, s_NV.detach() + 3.0, target_N, credit_weight_N, adv_N, old_N, mask_N,
                                       None, config)
    loss.backward()
    torch.testing.assert_close(stats["divergence"], torch.zeros(5, dtype=torch.float64))
    torch.testing.assert_close(s_NV.grad, torch.zeros_like(s_NV))


def test_on_policy_ratio_is_one_and_policy_gradient_is_minus_advantage_times_dlogp():
    s_NV, t_NV, target_N, credit_weight_N, adv_N, _, _ = _inputs()
    s_NV.requires_grad_()
    config = LossConfig(kl_coef=0.0)
    loss, stats = vsdpo_loss_reference(s_NV, t_NV, target_N, credit_weight_N, adv_N, None, None, 1.0, config)
    loss.backward()
    p_NV = torch.softmax(s_NV.detach(), -1)
    onehot_NV = torch.nn.functional.one_hot(target_N, 6).double()
    torch.testing.assert_close(stats["ratio"], torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(s_NV.grad, -adv_N[:, None] * (onehot_NV - p_NV))
    assert float(stats["clip_fraction"]) == 0.0


def test_clip_fraction_counts_unmasked_tokens_on_the_clipped_branch():
    s_NV, t_NV, target_N, credit_weight_N, _, old_N, mask_N = _inputs()
    adv_N = torch.tensor([1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    # ratios: 1.82, 0.61 (masked), 0.95, 1.49, 0.74; clip range [0.8, 1.2]. The clipped branch
    # is active for A > 0 above 1.2 (tokens 0, 3) and for A < 0 below 0.8 (token 4).
    _, stats = vsdpo_loss_reference(s_NV, t_NV, target_N, credit_weight_N, adv_N, old_N, mask_N, None, LossConfig())
    assert float(stats["clip_fraction"]) == pytest.approx(3 / 4)


@pytest.mark.parametrize("divergence", ["reverse_kl", "jsd"])
def test_importance_weight_rho_is_a_constant_in_the_gradient(divergence):
    s_NV, t_NV, target_N, credit_weight_N, adv_N, old_N, mask_N = _inputs()
    rho_N = torch.exp(torch.log_softmax(s_NV, -1).gather(-1, target_N[:, None]).squeeze(-1) - old_N).clamp(max=1.3)
    grads = []
    for config, weights in ((LossConfig(divergence=divergence, divergence_ratio_clip=1.3), credit_weight_N),
                            (LossConfig(divergence=divergence), credit_weight_N * rho_N)):
        student_NV = s_NV.clone().requires_grad_()
        vsdpo_loss_reference(student_NV, t_NV, target_N, weights, adv_N, old_N, mask_N, None, config)[0].backward()
        grads.append(student_NV.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_fully_masked_batch_gives_zero_loss_and_zero_gradient():
    s_NV, t_NV, target_N, credit_weight_N, adv_N, old_N, _ = _inputs()
    s_NV.requires_grad_()
    loss, _ = vsdpo_loss_reference(s_NV, t_NV, target_N, credit_weight_N, adv_N, old_N, torch.zeros(5), None,
                                   LossConfig())
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert torch.count_nonzero(s_NV.grad) == 0
