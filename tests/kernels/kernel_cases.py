"""Random inputs for the loss tests and the float64 reference they are checked against.

Ratios are pushed outside the clip range on purpose: old log-probs are the reference's own
log-probs shifted by up to ±0.6, so with clip 0.2 some tokens take the clipped branch, for
advantages of both signs. Legend: N tokens, V vocabulary, H hidden.
"""

from dataclasses import dataclass

import torch

from kernels.reference import vsdpo_loss_reference


@dataclass
class TokenInputs:
    target_N: torch.Tensor
    credit_weight_N: torch.Tensor
    adv_N: torch.Tensor
    old_N: torch.Tensor | None
    mask_N: torch.Tensor | None

    def args(self):
        return self.target_N, self.credit_weight_N, self.adv_N, self.old_N, self.mask_N


def token_inputs(student_logits_NV, gen: torch.Generator, mask: str = "some", on_policy: bool = False,
                 temperature: float = 1.0) -> TokenInputs:
    """mask: "none" (None), "some" (about a third masked, as floats) or "all" (every token masked)."""
    num_tokens, vocab = student_logits_NV.shape
    target_N = torch.randint(0, vocab, (num_tokens,), generator=gen)
    credit_weight_N = 1.0 + 2.0 * torch.rand(num_tokens, generator=gen)
    adv_N = torch.randn(num_tokens, generator=gen)
    logq_NV = torch.log_softmax(student_logits_NV.detach().double() / temperature, dim=-1)
    logp_N = logq_NV.gather(-1, target_N[:, None]).squeeze(-1)
    shift_N = 1.2 * torch.rand(num_tokens, generator=gen, dtype=torch.float64) - 0.6
    old_N = None if on_policy else (logp_N + shift_N).float()
    mask_N = {"none": None,
              "some": (torch.rand(num_tokens, generator=gen) > 0.3).float(),
              "all": torch.zeros(num_tokens, dtype=torch.bool)}[mask]
    return TokenInputs(target_N, credit_weight_N, adv_N, old_N, mask_N)


def reference_on(student_logits_NV, teacher_logits_NV, tokens: TokenInputs, config, normalizer=None):
    """Loss and stats of the float64 reference on the same (possibly bf16-rounded) values."""
    target_N, credit_weight_N, adv_N, old_N, mask_N = tokens.args()
    return vsdpo_loss_reference(
        student_logits_NV.double(), teacher_logits_NV.double(), target_N, credit_weight_N.double(), adv_N.double(),
        None if old_N is None else old_N.double(), mask_N, normalizer, config,
    )


def assert_close(actual, expected, atol, rtol, what: str) -> None:
    torch.testing.assert_close(actual.double(), expected.double(), atol=atol, rtol=rtol, msg=lambda m: f"{what}: {m}")


def assert_stats_close(stats, ref_stats, atol, rtol, num_active: int, flips_allowed: int = 0) -> None:
    """flips_allowed: tokens whose clip decision may differ (ratios computed from bf16 logits)."""
    for name in ("divergence", "logprob", "ratio", "divergence_mean"):
        assert_close(stats[name], ref_stats[name], atol, rtol, f"stats[{name!r}]")
    gap = abs(float(stats["clip_fraction"]) - float(ref_stats["clip_fraction"]))
    assert gap <= flips_allowed / max(num_active, 1) + 1e-6, f"clip_fraction differs by {gap}"
