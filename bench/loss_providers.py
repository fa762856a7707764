"""The fused-loss benchmark's cases and providers: one `setup(case, provider)` for speed and memory.

Every provider gets the same seeded inputs and returns a closure that runs one forward and
backward pass from hidden states (the loss includes the lm-head matmuls), so every provider
does the same 8·N·H·V FLOP of useful matmul work:

- `eager`: materialised logits, fp32 log-softmax for student and teacher, reverse KL + PG.
- `compile`: `torch.compile` of the same function.
- `ours`: `kernels.linear_vsdpo_loss` (reverse KL + PG, chunked, fused).
- `liger_jsd` (CPU): Liger-Kernel's chunked `LigerFusedLinearJSDLoss` under torch.compile,
  β = 1 (reverse KL in Liger's convention) plus its hard CE loss; it computes no PG term.
- `liger_pair` (CUDA): Liger's Triton `LigerFusedLinearJSD` (β = 1) and its chunked
  `LigerFusedLinearGRPOLoss`, run one after the other, as a user of Liger would combine them.

Shapes: N tokens, H hidden size, V vocabulary, B sequences of T tokens (N = B·T).
"""

import functools
import math
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from kernels import LossConfig, linear_vsdpo_loss

CLIP_LOW = CLIP_HIGH = 0.2
SEQ_LEN = 1024  # T: tokens per sequence, for the per-sequence advantages GRPO expects


@dataclass(frozen=True)
class Case:
    num_tokens: int  # N
    hidden: int  # H
    vocab: int  # V
    dtype: str  # "float32" | "bfloat16"
    device: str  # "cpu" | "cuda"

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @property
    def matmul_flop(self) -> int:
        """Useful work of fwd+bwd: student and teacher logits, dh and dW, 2·N·H·V each."""
        return 8 * self.num_tokens * self.hidden * self.vocab

    def as_dict(self) -> dict:
        return asdict(self)


def make_inputs(case: Case, seed: int = 0) -> dict:
    """Seeded inputs: a teacher close to the student, advantages of both signs, ratios around 1."""
    gen = torch.Generator(device=case.device).manual_seed(seed)  # on the device: V·H values are GBs on GPU
    N, H, V = case.num_tokens, case.hidden, case.vocab
    seq_len = min(SEQ_LEN, N)
    if N % seq_len:
        raise ValueError(f"num_tokens={N}: must be a multiple of {seq_len} (tokens per sequence)")

    def randn(*shape):
        return torch.randn(*shape, generator=gen, device=case.device)

    student_NH = randn(N, H)
    weight_VH = randn(V, H) * (2.0 / H**0.5)  # logits with std ~2
    teacher_NH = student_NH + 0.5 * randn(N, H)
    adv_B = randn(N // seq_len)
    inputs = {
        "student_NH": student_NH.to(case.torch_dtype),
        "weight_VH": weight_VH.to(case.torch_dtype),
        "teacher_NH": teacher_NH.to(case.torch_dtype),
        "target_N": torch.randint(0, V, (N,), generator=gen, device=case.device),
        "credit_weight_N": 1.0 + torch.rand(N, generator=gen, device=case.device),
        "adv_N": adv_B.repeat_interleave(seq_len),
        "old_logp_N": -math.log(V) + 0.3 * randn(N),
    }
    inputs["student_NH"].requires_grad_(True)
    inputs["weight_VH"].requires_grad_(True)
    return inputs


def eager_loss(student_NH, weight_VH, teacher_NH, target_N, credit_weight_N, adv_N, old_logp_N):
    """Reverse KL + clipped PG the way one writes it in plain PyTorch: full fp32 [N, V] tensors."""
    logp_s_NV = F.log_softmax((student_NH @ weight_VH.T).float(), dim=-1)
    with torch.no_grad():
        logp_t_NV = F.log_softmax((teacher_NH @ weight_VH.T).float(), dim=-1)
    kl_N = (logp_s_NV.exp() * (logp_s_NV - logp_t_NV)).sum(dim=-1)
    ratio_N = torch.exp(logp_s_NV.gather(1, target_N[:, None]).squeeze(1) - old_logp_N)
    clipped_N = ratio_N.clamp(1 - CLIP_LOW, 1 + CLIP_HIGH)
    pg_N = -torch.minimum(ratio_N * adv_N, clipped_N * adv_N)
    return (credit_weight_N * kl_N + pg_N).sum() / target_N.numel()


def ours_config(case: Case) -> LossConfig:
    kernel = "triton" if case.device == "cuda" else "torch"
    return LossConfig(divergence="reverse_kl", clip_low=CLIP_LOW, clip_high=CLIP_HIGH, kernel=kernel)


def ours_loss(student_NH, weight_VH, teacher_NH, target_N, credit_weight_N, adv_N, old_logp_N, case: Case):
    loss, _ = linear_vsdpo_loss(
        student_NH, weight_VH, teacher_NH, target_N, credit_weight_N, adv_N, old_logp_N, config=ours_config(case)
    )
    return loss


def liger_jsd_loss_fn(compiled: bool) -> Callable:
    """Liger's chunked fused-linear JSD loss (CPU-capable), β = 1: reverse KL, as ours computes."""
    from liger_kernel.chunked_loss import LigerFusedLinearJSDLoss

    module = LigerFusedLinearJSDLoss(beta=1.0, compiled=compiled)

    def loss_fn(student_NH, weight_VH, teacher_NH, target_N, credit_weight_N, adv_N, old_logp_N):
        return module(student_NH, weight_VH, teacher_NH, weight_VH, target_N)

    return loss_fn


def liger_pair_loss_fn() -> Callable:
    """Liger's Triton fused-linear JSD (β = 1) plus its chunked fused-linear GRPO loss."""
    from liger_kernel.chunked_loss import LigerFusedLinearGRPOLoss
    from liger_kernel.transformers import LigerFusedLinearJSD

    jsd = LigerFusedLinearJSD(jsd_beta=1.0)
    grpo = LigerFusedLinearGRPOLoss(
        beta=0.0, use_ref_model=False, epsilon_low=CLIP_LOW, epsilon_high=CLIP_HIGH, loss_type="dapo"
    )

    def loss_fn(student_NH, weight_VH, teacher_NH, target_N, credit_weight_N, adv_N, old_logp_N):
        seq_len = min(SEQ_LEN, target_N.numel())
        B = target_N.numel() // seq_len
        kl = jsd(student_NH, weight_VH, teacher_NH, weight_VH, target_N)
        pg, _ = grpo(
            student_NH.view(B, seq_len, -1), weight_VH, target_N.view(B, seq_len),
            torch.ones(B, seq_len, device=target_N.device), adv_N.view(B, seq_len)[:, 0],
            old_per_token_logps=old_logp_N.view(B, seq_len),
        )
        return kl + pg

    return loss_fn


def providers_for(device: str, liger_available: bool) -> list[str]:
    """Baselines first, ours last; Liger only where it imports."""
    names = ["eager", "compile"] if device == "cuda" else ["eager"]
    if liger_available:
        names.append("liger_pair" if device == "cuda" else "liger_jsd")
    return [*names, "ours"]


@functools.cache
def baseline_loss_fn(provider: str, compile_liger: bool = True) -> Callable:
    """A baseline's loss function, built once per process: the memory run reuses what the
    timing run compiled (torch.compile's graphs, Liger's compiled chunks) instead of rebuilding
    and recompiling it."""
    if provider == "eager":
        return eager_loss
    if provider == "compile":
        return torch.compile(eager_loss)
    if provider == "liger_jsd":
        return liger_jsd_loss_fn(compiled=compile_liger)
    if provider == "liger_pair":
        return liger_pair_loss_fn()
    raise ValueError(f"provider={provider!r}: expected one of eager, compile, ours, liger_jsd, "
                     "liger_pair")


def setup(case: Case, provider: str, inputs: dict | None = None,
          compile_liger: bool = True) -> tuple[Callable[[], torch.Tensor], dict]:
    """A closure running one fwd+bwd of `provider` (returning the loss) on `inputs`, or on fresh
    seeded inputs for `case`; providers timed together share one set of inputs."""
    inputs = inputs or make_inputs(case)
    if provider == "ours":
        loss_fn = functools.partial(ours_loss, case=case)
    else:
        loss_fn = baseline_loss_fn(provider, compile_liger)
    args = tuple(inputs.values())
    student_NH, weight_VH = inputs["student_NH"], inputs["weight_VH"]

    def fwd_bwd() -> torch.Tensor:
        student_NH.grad = weight_VH.grad = None
        loss = loss_fn(*args)
        loss.backward()
        return loss.detach()

    return fwd_bwd, inputs
