"""The trainer's own old log-probs, and the correction for sampling from the engine.

A rollout engine (vLLM: its own kernels, bf16 KV cache, fused sampling) and the trainer
never compute bit-identical log-probs. With `rollout.recompute_logprobs`, the PPO ratio is
taken against the trainer's log-probs of the sampled tokens, and each token's
policy-gradient term is weighted by the truncated importance weight
`min(π_trainer / π_engine, tis_clip)`, because the tokens were drawn from the engine's
distribution (truncated importance sampling). The cost is one no-grad forward of the
student rows. (With one optimizer step per batch the trainer's old log-probs equal the
student's detached ones, so the ratio starts at exactly 1; the correction lives in the weight.)
"""

import dataclasses

import torch

from vsdpo.train.batch import MicroBatch, Sample
from vsdpo.train.model import Policy
from vsdpo.train.step import agreed_micro_batches, to_device

CHUNK_ELEMENTS = 1 << 26  # logits per chunk: 256 MiB in fp32


def recompute_logprobs(policy: Policy, samples: list[Sample], budget: int, pad_id: int,
                       temperature: float, tis_clip: float) -> list[Sample]:
    device = next(policy.parameters()).device
    logp_N = torch.cat([_token_logprobs(policy, to_device(mb, device), temperature)[mb.mask_N > 0]
                        for mb in agreed_micro_batches(samples, budget, pad_id, device)])
    out = []
    for s, trainer_T in zip(samples, logp_N.split([len(s.completion_ids) for s in samples])):
        weight_T = torch.exp(trainer_T - s.old_logprobs).clamp(max=tis_clip)
        out.append(dataclasses.replace(s, old_logprobs=trainer_T, rollout_logprobs=s.old_logprobs,
                                       is_weight=weight_T))
    return out


@torch.no_grad()
def _token_logprobs(policy: Policy, mb: MicroBatch, temperature: float) -> torch.Tensor:
    """log softmax(h·Wᵀ / T)[target] per completion token, in fp32, `[V]`-row chunks."""
    hidden_NH = policy(mb.student_ids_BL, mb.student_mask_BL).flatten(0, 1)[mb.student_rows_N]
    w_VH = policy.lm_head_weight.float()
    rows = max(1, CHUNK_ELEMENTS // w_VH.shape[0])
    out = []
    for h_CH, target_C in zip(hidden_NH.split(rows), mb.target_N.split(rows)):
        logits_CV = (h_CH.float() @ w_VH.T) / temperature
        out.append(logits_CV.gather(1, target_C[:, None])[:, 0] - logits_CV.logsumexp(dim=-1))
    policy.reshard()
    return torch.cat(out).cpu()
