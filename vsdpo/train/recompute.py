"""The trainer's own old log-probs, and the correction for sampling from the engine.

A rollout engine (vLLM: its own kernels, bf16 KV cache, fused sampling) and the trainer
never compute bit-identical log-probs. With `rollout.recompute_logprobs`, the PPO ratio is
taken against the trainer's log-probs of the sampled tokens, and each token's
policy-gradient term is weighted by the truncated importance weight
`min(π_trainer / π_engine, is_weight_clip)`, because the tokens were drawn from the engine's
distribution (truncated importance sampling). The cost is one no-grad forward of the
student rows. (With one optimizer step per batch the trainer's old log-probs equal the
student's detached ones, so the ratio starts at exactly 1; the correction lives in the weight.)

"Exactly" needs the same arithmetic on both sides: the old log-probs are the fused loss's
own `stats["logprob"]`, from the same micro-batches, hidden states, head weight, chunking,
kernel and temperature as the training step, so they match its log-probs bit for bit in
fp32 and bf16. (A separate fp32 log-softmax differed in the last bits on CPU and by bf16
rounding on CUDA, where the loss makes its logits in bf16.)
"""

import dataclasses

import torch

from kernels import LossConfig, linear_vsdpo_loss
from vsdpo.model.policy import Policy
from vsdpo.train.batch import MicroBatch, Sample
from vsdpo.train.step import agreed_micro_batches, to_device


def recompute_logprobs(policy: Policy, samples: list[Sample], budget: int, pad_id: int,
                       temperature: float, is_weight_clip: float,
                       kernel: str = "auto") -> list[Sample]:
    """`budget`, `temperature` and `kernel` must be the training step's (micro_batch_tokens,
    loss.temperature, loss.kernel) for its ratio to start at exactly 1."""
    device = next(policy.parameters()).device
    config = LossConfig(temperature=temperature, kernel=kernel)
    logp_N = torch.cat([_token_logprobs(policy, to_device(mb, device), config)[mb.mask_N > 0]
                        for mb in agreed_micro_batches(samples, budget, pad_id, device)])
    out = []
    for s, trainer_T in zip(samples, logp_N.split([len(s.completion_ids) for s in samples])):
        weight_T = torch.exp(trainer_T - s.engine_logprobs).clamp(max=is_weight_clip)
        out.append(dataclasses.replace(s, old_logprobs=trainer_T, is_weight=weight_T))
    return out


@torch.no_grad()
def _token_logprobs(policy: Policy, mb: MicroBatch, config: LossConfig) -> torch.Tensor:
    """log softmax(h·Wᵀ / T)[target] per completion token `[N]` fp32, as the loss computes it:
    the same call as `step._micro_step` with the student as its own teacher (divergence 0)
    and on-policy terms; only the per-token log-probs are kept."""
    hidden_NH = policy(mb.student_ids_BL, mb.student_mask_BL,
                       mb.student_images).flatten(0, 1)[mb.student_rows_N]
    zeros_N = torch.zeros_like(mb.adv_N)
    _, stats = linear_vsdpo_loss(hidden_NH, policy.lm_head_weight, hidden_NH, mb.target_N,
                                 zeros_N, zeros_N, None, mask=mb.mask_N, config=config)
    policy.reshard()
    return stats["logprob"].cpu()
