"""Pass/fail for the fused-loss benchmark: exactness against the float64 reference and the
targets of docs/kernels.md, computed from the measured runs of bench/loss.py."""

import torch

from kernels import LossConfig, linear_vsdpo_loss
from kernels.loss import default_chunk_size
from kernels.reference import vsdpo_loss_reference
from common import MIB
from loss_providers import Case, make_inputs

BEYOND_GRADS = "peak_extra_beyond_grads_mib"
EXACT_SLICE_TOKENS = 64  # a [64, V] float64 reference fits easily, even at V = 151936


def max_errors_vs_reference(case: Case, config: LossConfig) -> dict:
    """Ours on the first tokens of `case` vs the float64 reference on the same values.

    Errors are max |ours − ref| / max |ref| for the loss, dh and dW.
    """
    inputs = make_inputs(case)
    n = min(EXACT_SLICE_TOKENS, case.num_tokens)
    small = {k: (v if k == "weight_VH" else v[:n]).detach() for k, v in inputs.items()}
    args = [small[k] for k in ("teacher_NH", "target_N", "credit_weight_N", "adv_N", "old_logp_N")]

    student_NH, weight_VH = (small[k].clone().requires_grad_(True) for k in ("student_NH", "weight_VH"))
    loss, _ = linear_vsdpo_loss(student_NH, weight_VH, *args, config=config)
    loss.backward()

    ref_h, ref_w = (small[k].double().requires_grad_(True) for k in ("student_NH", "weight_VH"))
    ref_loss, _ = vsdpo_loss_reference(ref_h @ ref_w.T, args[0].double() @ ref_w.detach().T, *args[1:], config=config)
    ref_loss.backward()

    def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
        return ((ours.double() - ref).abs().max() / ref.abs().max().clamp(min=1e-30)).item()

    return {
        "tokens": n,
        "dtype": case.dtype,
        "loss": rel_err(loss.detach(), ref_loss.detach()),
        "grad_hidden": rel_err(student_NH.grad, ref_h.grad),
        "grad_weight": rel_err(weight_VH.grad, ref_w.grad),
    }


MEMORY_SLACK = 1.02  # the [N] inputs and stats, and the allocator's rounding


def memory_plan(case: Case) -> dict:
    """Ours' chunk and the extra memory the design promises beyond the gradients of h and W
    (kernels/linear_loss.py): k [C, V] logits buffers (2 in the input dtype for Triton on CUDA,
    3 fp32 on CPU) plus the fp32 dW [V, H] accumulator, which is the gradient itself when W is
    fp32, and an extra tensor beside W's gradient otherwise."""
    rows = default_chunk_size(case.num_tokens, case.vocab, case.torch_dtype,
                              torch.device(case.device))
    cuda = case.device == "cuda"
    buffer_mib = rows * case.vocab * (case.torch_dtype.itemsize if cuda else 4) / MIB
    accumulator_mib = 0.0 if case.dtype == "float32" else case.vocab * case.hidden * 4 / MIB
    buffers = 2 if cuda else 3
    return {"chunk_rows": rows, "num_chunks": -(-case.num_tokens // rows), "chunk_buffers": buffers,
            "chunk_buffer_mib": buffer_mib,
            "accumulator_mib": accumulator_mib,
            "promised_extra_mib": accumulator_mib + buffers * buffer_mib}


def _target(description: str, value, met: bool) -> dict:
    return {"target": description, "value": value, "met": bool(met)}


def _median(run: dict, provider: str) -> float | None:
    return run["providers"].get(provider, {}).get("median_ms")


def _extra(run: dict, provider: str, key: str = "peak_extra_mib") -> float | None:
    return run["providers"].get(provider, {}).get(key)


def cpu_targets(run: dict, run_8n: dict, exact: dict, exact_tol: dict, flat_tol: float) -> dict:
    """CPU: faster and smaller than Liger's chunked JSD, flat memory as N grows 8×, exact."""
    ours_ms, ours_mib = _median(run, "ours"), _extra(run, "ours")
    growth = _extra(run_8n, "ours", BEYOND_GRADS) / _extra(run, "ours", BEYOND_GRADS)
    worst = max(exact["loss"], exact["grad_hidden"], exact["grad_weight"])
    found = {
        "flat_memory_8x_tokens": _target(f"ours' peak beyond inputs and grads at 8·N ≤ {flat_tol}× that at N", growth, growth <= flat_tol),
        "exact_vs_float64": _target(f"max relative error ≤ {exact_tol[exact['dtype']]}", worst,
                                    worst <= exact_tol[exact["dtype"]]),
    }
    if _median(run, "eager") is not None:
        found["speedup_vs_eager"] = _target("reported only (no CPU target)", _median(run, "eager") / ours_ms, True)
    if _median(run, "liger_jsd") is not None:
        liger_ms, liger_mib = _median(run, "liger_jsd"), _extra(run, "liger_jsd")
        found["faster_than_liger"] = _target("ours' median < Liger's", liger_ms / ours_ms, ours_ms < liger_ms)
        found["smaller_than_liger"] = _target("ours' peak extra < Liger's", liger_mib / ours_mib, ours_mib < liger_mib)
    return found


def cuda_targets(run: dict) -> dict:
    """CUDA, at the design shape: ≤ 1.3× floor, ≥ 2× eager, faster than Liger's pair, and no
    more extra memory than `memory_plan` promises."""
    ours_ms = _median(run, "ours")
    if ours_ms is None:
        return {"ours_ran": _target("ours completes", run["providers"]["ours"].get("error"), False)}
    extra = _extra(run, "ours", BEYOND_GRADS)
    found = {
        "floor_multiple": _target("ours ≤ 1.3× the matmul floor", ours_ms / run["floor_ms"],
                                  ours_ms <= 1.3 * run["floor_ms"]),
        "extra_memory_as_promised": _target(
            f"peak beyond inputs and grads ≤ the fp32 dW accumulator + {run['chunk_buffers']} "
            f"chunk buffers (×{MEMORY_SLACK})", extra and extra / run["promised_extra_mib"],
            extra is not None and extra <= MEMORY_SLACK * run["promised_extra_mib"]),
    }
    eager_ms = _median(run, "eager")
    eager_oom = run["providers"].get("eager", {}).get("error") == "out of memory"
    speedup = "eager out of memory" if eager_oom else eager_ms and eager_ms / ours_ms
    found["speedup_vs_eager"] = _target(
        "ours ≥ 2× faster than eager (met if eager runs out of memory)", speedup,
        eager_oom or (eager_ms is not None and speedup >= 2))
    if "liger_pair" in run["providers"]:
        liger_ms = _median(run, "liger_pair")
        found["faster_than_liger_pair"] = _target("ours' median < Liger JSD + GRPO", liger_ms and liger_ms / ours_ms,
                                                  liger_ms is not None and ours_ms < liger_ms)
    return found
