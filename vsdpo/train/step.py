"""One optimizer step on a batch of scored samples: teacher forward, student forward, the
fused loss, backward per micro-batch, then clip, AdamW, LR schedule.

A step whose loss (on any rank) or global gradient norm is not finite is skipped: the
gradients are dropped and the weights, AdamW state, EMA teacher and LR schedule stay as
they were — the schedule counts updates, so warm-up is not eaten by skipped steps. The
ranks agree (the norm is global; the loss flag is all-reduced), so they skip together.

Every rank must run the same number of forwards (FSDP all-gathers are collectives), so the
micro-batch count is agreed with an all-reduce and short ranks add masked-out ones. The
loss of each rank is normalised by its own completion-token count and FSDP averages the
gradients over ranks, so the step is the mean over ranks of per-token means — and does not
depend on how the tokens were cut into micro-batches.

For the logs, each micro-batch also yields the divergence on blamed and unblamed tokens and
the squared norms of the KL and PG terms' gradients w.r.t. its final hidden states: the full
gradient (kept by `retain_grad`) minus a KL-only pass of the fused loss — one extra loss pass,
no model forward or backward, and none when either coefficient is 0.
"""

import dataclasses
import math
import time

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor

from kernels import LossConfig, linear_vsdpo_loss
from vsdpo.model.policy import Policy
from vsdpo.train.batch import MicroBatch, Sample, empty_micro_batch, split_micro_batches
from vsdpo.train.teacher import Teacher

STAT_KEYS = ("tokens", "divergence", "clipped", "loss", "blamed_tokens", "blamed_weight",
             "divergence_blamed", "grad_sq_kl", "grad_sq_pg", "mismatch", "image_tokens",
             "teacher_image_tokens")


def train_step(policy: Policy, teacher: Teacher, optimizer, scheduler, samples: list[Sample],
               loss_cfg: LossConfig, budget: int, grad_clip: float, pad_id: int) -> dict:
    """Returns summed statistics (over this rank), the global `grad_norm`, `skipped` (1.0 when
    the update was skipped, on every rank alike) and the time spent in teacher/update."""
    sums = accumulate_gradients(policy, teacher, samples, loss_cfg, budget, pad_id)
    t0 = time.perf_counter()
    params = [p for p in policy.parameters() if p.grad is not None]
    total = torch.nn.utils.get_total_norm([p.grad for p in params])  # = clip_grad_norm_'s
    norm = float(total.full_tensor() if isinstance(total, DTensor) else total)  # global
    skip = not finite_on_every_rank(sums["loss"], norm, total.device)
    if not skip:
        torch.nn.utils.clip_grads_with_norm_(params, grad_clip, total)
        optimizer.step()
        scheduler.step()
        teacher.update()
    optimizer.zero_grad(set_to_none=True)
    sums |= {"grad_norm": norm, "skipped": float(skip)}
    sums["update_s"] += time.perf_counter() - t0
    return sums


def finite_on_every_rank(loss: float, grad_norm: float, device: torch.device) -> bool:
    bad = torch.tensor([float(not (math.isfinite(loss) and math.isfinite(grad_norm)))],
                       device=device)
    dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    return not bool(bad)


def accumulate_gradients(policy: Policy, teacher: Teacher, samples: list[Sample],
                         loss_cfg: LossConfig, budget: int, pad_id: int) -> dict:
    """Forward and backward over every micro-batch; gradients add up in the shards."""
    device = next(policy.parameters()).device
    micro = agreed_micro_batches(samples, budget, pad_id, device)
    normalizer = float(max(1, sum(mb.num_tokens for mb in micro)))
    sums = dict.fromkeys(STAT_KEYS, 0.0) | {"teacher_s": 0.0, "update_s": 0.0}
    for mb in micro:
        _accumulate(sums, _micro_step(policy, teacher, to_device(mb, device), loss_cfg, normalizer))
    return sums


def agreed_micro_batches(samples: list[Sample], budget: int, pad_id: int,
                         device: torch.device) -> list[MicroBatch]:
    """This rank's micro-batches, padded with empty ones to the largest count of any rank
    (hidden states read ahead included, so that no rank runs a teacher forward alone)."""
    micro = split_micro_batches(samples, budget, pad_id)
    count = torch.tensor([len(micro)], device=device)
    dist.all_reduce(count, op=dist.ReduceOp.MAX)
    pads = [empty_micro_batch(pad_id) for _ in range(int(count) - len(micro))]
    for mb in pads if samples[0].teacher_hidden is not None else ():
        mb.teacher_hidden_NH = torch.zeros_like(samples[0].teacher_hidden[:1])
    return micro + pads


def teacher_hidden_states(teacher: Teacher, samples: list[Sample], budget: int,
                          pad_id: int) -> list[Sample]:
    """The samples with their teacher hidden states `[T, H]` read now, in agreed
    micro-batches (`rollout.stream` reads each group's as soon as it is scored); the step's
    `_micro_step` then skips the teacher forward."""
    device = next(teacher.student.parameters()).device
    hidden = []
    for mb in agreed_micro_batches(samples, budget, pad_id, device):
        mb = to_device(mb, device)
        t_hidden_BLH, _ = teacher.hidden(mb.teacher_ids_BL, mb.teacher_mask_BL,
                                         mb.teacher_images)
        hidden.append(t_hidden_BLH.flatten(0, 1)[mb.teacher_rows_N])
        teacher.release()
    lengths = [len(s.completion_ids) for s in samples]
    hidden_NH = torch.cat(hidden)[:sum(lengths)]  # the padding micro-batches' rows come last
    return [dataclasses.replace(s, teacher_hidden=h_TH)
            for s, h_TH in zip(samples, hidden_NH.split(lengths))]


def _micro_step(policy, teacher, mb: MicroBatch, loss_cfg, normalizer) -> dict:
    t0 = time.perf_counter()
    if mb.teacher_hidden_NH is None:
        t_hidden_BLH, t_weight = teacher.hidden(mb.teacher_ids_BL, mb.teacher_mask_BL,
                                                mb.teacher_images)
        t_hidden_NH = t_hidden_BLH.flatten(0, 1)[mb.teacher_rows_N]
    else:  # read as the group was scored (`rollout.stream`)
        t_hidden_NH, t_weight = mb.teacher_hidden_NH, teacher.head_weight()
    t1 = time.perf_counter()
    hidden_NH = policy(mb.student_ids_BL, mb.student_mask_BL,
                       mb.student_images).flatten(0, 1)[mb.student_rows_N]
    hidden_NH.retain_grad()
    weight_VH = policy.lm_head_weight  # unsharded until backward (`vsdpo/model/policy.py`)
    # the fused loss takes one per-token advantage: the importance weight multiplies in here
    loss_args = (t_hidden_NH, mb.target_N, mb.credit_weight_N, mb.adv_N * mb.is_weight_N,
                 mb.old_logp_N)
    loss_kwargs = dict(mask=mb.mask_N, normalizer=normalizer, teacher_weight=t_weight)
    grad_kl_NH = _kl_grad(hidden_NH, weight_VH, loss_args, loss_kwargs, loss_cfg)
    loss, stats = linear_vsdpo_loss(hidden_NH, weight_VH, *loss_args, config=loss_cfg,
                                    **loss_kwargs)
    loss.backward()
    teacher.release()
    t2 = time.perf_counter()
    m_N = mb.mask_N
    blamed_N = _blamed(mb)
    divergence_N = stats["divergence"] * m_N
    return {
        "tokens": float(m_N.sum()), "loss": float(loss.detach()) * normalizer,
        "divergence": float(divergence_N.sum()),
        "clipped": float(stats["clip_fraction"]) * float(m_N.sum()),
        "blamed_tokens": float(blamed_N.sum()),
        "blamed_weight": float(mb.credit_weight_N[blamed_N].sum()),
        "divergence_blamed": float(divergence_N[blamed_N].sum()),
        **_term_grad_sq(hidden_NH.grad.float(), grad_kl_NH, loss_cfg),
        "mismatch": float((m_N * (stats["logprob"].detach() - mb.engine_logp_N).abs()).sum()),
        "image_tokens": _count(mb.student_ids_BL, policy.image_token_id),
        "teacher_image_tokens": _count(mb.teacher_ids_BL, policy.image_token_id),
        "teacher_s": t1 - t0, "update_s": t2 - t1,
    }


def _kl_grad(hidden_NH, weight_VH, loss_args, loss_kwargs, loss_cfg: LossConfig):
    """The KL term's gradient w.r.t. `hidden_NH`, fp32 `[N, H]`, from a KL-only pass on
    detached inputs; None when the term is the whole loss or absent (read it off `.grad`)."""
    if loss_cfg.kl_coef == 0 or loss_cfg.pg_coef == 0:
        return None
    h_NH = hidden_NH.detach().requires_grad_()
    kl_only = dataclasses.replace(loss_cfg, pg_coef=0.0)
    kl, _ = linear_vsdpo_loss(h_NH, weight_VH.detach(), *loss_args, config=kl_only,
                              **loss_kwargs)
    (grad_NH,) = torch.autograd.grad(kl, h_NH)
    return grad_NH.float()


def _blamed(mb: MicroBatch) -> torch.Tensor:
    """`[N]` bool: a token weighted above its sequence's lowest weight, the unblamed level
    (credit is renormalised per sequence, `feedback/credit.py`)."""
    row_N = mb.student_rows_N // mb.student_ids_BL.shape[1]  # the sample of each token
    level_B = torch.full((mb.student_ids_BL.shape[0],), math.inf, device=mb.credit_weight_N.device)
    level_B = level_B.scatter_reduce(0, row_N, mb.credit_weight_N, reduce="amin")
    return (mb.credit_weight_N > level_B[row_N]) & (mb.mask_N > 0)


def _term_grad_sq(grad_NH: torch.Tensor, grad_kl_NH: torch.Tensor | None,
                  loss_cfg: LossConfig) -> dict[str, float]:
    """Squared norms of the KL and PG terms' parts of the loss's gradient `grad_NH`."""
    if grad_kl_NH is None:  # one term only
        whole = float(grad_NH.square().sum())
        return {"grad_sq_kl": whole if loss_cfg.pg_coef == 0 else 0.0,
                "grad_sq_pg": whole if loss_cfg.kl_coef == 0 else 0.0}
    return {"grad_sq_kl": float(grad_kl_NH.square().sum()),
            "grad_sq_pg": float((grad_NH - grad_kl_NH).square().sum())}


def _count(ids_BL: torch.Tensor, token_id: int | None) -> float:
    return 0.0 if token_id is None else float((ids_BL == token_id).sum())


def _accumulate(sums: dict, new: dict) -> None:
    for k, v in new.items():
        sums[k] += v


def to_device(mb: MicroBatch, device) -> MicroBatch:
    return MicroBatch(**{k: None if v is None else v.to(device) for k, v in vars(mb).items()})
