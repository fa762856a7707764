"""Benchmark of the fused credit-weighted KL + policy-gradient loss against its baselines.

Times forward+backward from hidden states (median and p20/p80 after warm-up) and measures
peak extra memory for eager PyTorch, torch.compile (CUDA), Liger-Kernel (when it imports) and
ours, all on the same seeded inputs in one run, then checks the targets (docs/kernels.md,
"Benchmark"):

- CUDA, N ∈ {8192, 16384}, H = 4096, V = 151936, bf16: ours ≤ 1.3× the matmul floor
  (8·N·H·V FLOP at the cuBLAS bf16 rate measured in the same run), ≥ 2× faster than eager,
  faster than Liger's JSD + GRPO pair, extra memory beyond the gradients ≤ the fp32 dW
  accumulator + 2 chunk buffers (what kernels/linear_loss.py allocates).
- CPU, N = 4096, H = 256, V = 32000, fp32, 2 threads: faster and smaller than Liger's chunked
  JSD loss, peak memory flat when N grows 8×, exact against the float64 reference. CPU peak
  memory is measured per provider in a fresh subprocess (peak RSS after warm-up minus the
  RSS with inputs built), so providers do not pollute each other.

Usage:  python bench/loss.py [--quick] [--reps R] [--out PATH]
Output: bench/results/loss_<device>.json, also printed as the last line of stdout.
"""

import argparse
import gc
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from common import (
    MIB, RESULTS_DIR, device_slug, peak_rss_bytes, reset_peak_rss, run_json_subprocess, run_metadata, time_fn,
    time_interleaved, write_result,
)
from loss_checks import cpu_targets, cuda_targets, max_errors_vs_reference, memory_plan
from loss_providers import Case, make_inputs, ours_config, providers_for, setup

CPU_THREADS = 2
# glibc would keep freed [chunk, V] buffers resident; a fixed mmap threshold returns them to the
# OS on free, so peak RSS measures live memory rather than the allocator's cache.
MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
FLAT_MEMORY_TOLERANCE = 1.25  # extra memory at 8·N may be at most this multiple of that at N
EXACT_TOLERANCE = {"float32": 1e-4, "bfloat16": 2e-2}  # max error relative to the reference's max


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Targets: docs/kernels.md, \"Benchmark\".")
    parser.add_argument("--quick", action="store_true", help="tiny shapes and 3 reps: a smoke run in seconds")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions (default: 20 on CUDA, 5 on CPU)")
    parser.add_argument("--out", type=Path, default=None, help="result file (default: bench/results/loss_<device>.json)")
    parser.add_argument("--memory-of", metavar="PROVIDER", help="internal: measure one provider's peak extra RSS "
                        "in this process for --case and print it as JSON (the parent runs this in a fresh process)")
    parser.add_argument("--case", type=json.loads, help="internal: the Case for --memory-of, as JSON")
    return parser.parse_args(argv)


def cases_for(device: str, quick: bool) -> list[Case]:
    """The target shapes (docs/kernels.md); on CPU the second case is the same shape at 8·N."""
    if device == "cuda":
        shape = (1024, 256, 4099) if quick else (16384, 4096, 151936)
        tokens = [shape[0] // 2, shape[0]]
        return [Case(n, shape[1], shape[2], "bfloat16", "cuda") for n in tokens]
    N, H, V = (256, 64, 1000) if quick else (4096, 256, 32000)
    return [Case(N, H, V, "float32", "cpu"), Case(8 * N, H, V, "float32", "cpu")]


PRODUCTION = cases_for("cuda", quick=False)[-1]  # what the design's shape gets, on any device


def matmul_rate(case: Case, reps: int) -> dict:
    """The [N, H] x [H, V] matmul rate in the case's dtype: the floor's denominator."""
    inputs = make_inputs(case)
    student_NH, weight_VH = inputs["student_NH"].detach(), inputs["weight_VH"].detach()
    stats = time_fn(lambda: student_NH @ weight_VH.T, reps=reps, warmup=3)
    tflops = 2 * case.num_tokens * case.hidden * case.vocab / stats["median_ms"] / 1e9
    return {"matmul_ms": stats["median_ms"], "matmul_tflops": tflops, "floor_ms": case.matmul_flop / tflops / 1e9}


def first_call(case: Case, provider: str, inputs: dict, quick: bool) -> tuple:
    """Set up one provider and run it once (the compile, if any): (fwd_bwd, stats) or (None,
    error). Any failure (out of memory, an inductor or Liger error) is that provider's row."""
    try:
        fwd_bwd, _ = setup(case, provider, inputs, compile_liger=not quick)
        return fwd_bwd, {"loss": fwd_bwd().item()}
    except Exception as err:  # noqa: BLE001 — reported in the JSON; the other providers go on
        return None, {"error": _describe(err)}
    finally:
        _release()


def memory(case: Case, provider: str, quick: bool) -> dict:
    """Peak memory of one fwd+bwd beyond the inputs: CUDA in this process, CPU in a fresh one;
    a failure is reported as `memory_error`, beside the provider's timings."""
    try:
        if case.device == "cpu":
            argv = [__file__, "--memory-of", provider, "--case", json.dumps(case.as_dict())]
            return run_json_subprocess(argv + (["--quick"] if quick else []), env=MEMORY_ENV)
        return _cuda_memory(case, provider)
    except Exception as err:  # noqa: BLE001
        return {"memory_error": _describe(err)}
    finally:
        _release()


def _cuda_memory(case: Case, provider: str) -> dict:
    fwd_bwd, inputs = setup(case, provider)  # the compiled baselines are reused, not rebuilt
    fwd_bwd()  # warm-up: compilation and autotuning are not part of the peak
    inputs["student_NH"].grad = inputs["weight_VH"].grad = None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fwd_bwd()
    return _extra_memory(torch.cuda.max_memory_allocated() - base, inputs)


def _describe(err: Exception) -> str:
    if isinstance(err, torch.OutOfMemoryError):
        return "out of memory"
    return f"{type(err).__name__}: {str(err)[:500]}"


def _release() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _extra_memory(extra_bytes: int, inputs: dict) -> dict:
    """Peak extra memory, in total and beyond the gradients of h and W (outputs every provider must hold)."""
    grads = sum(inputs[k].numel() * inputs[k].element_size() for k in ("student_NH", "weight_VH"))
    return {"peak_extra_mib": extra_bytes / MIB, "peak_extra_beyond_grads_mib": (extra_bytes - grads) / MIB}


def memory_worker(case: Case, provider: str, quick: bool) -> dict:
    """Run in a fresh process: inputs, warm-up, reset the peak RSS, one measured fwd+bwd."""
    torch.set_num_threads(CPU_THREADS)
    fwd_bwd, inputs = setup(case, provider, compile_liger=not quick)
    fwd_bwd()
    inputs["student_NH"].grad = inputs["weight_VH"].grad = None
    gc.collect()
    base = reset_peak_rss()
    fwd_bwd()
    peak = peak_rss_bytes()
    return {**_extra_memory(peak - base, inputs), "peak_rss_mib": peak / MIB, "rss_with_inputs_mib": base / MIB}


def time_case(case: Case, providers: list[str], reps: int, warmup: int, quick: bool) -> dict:
    """The matmul floor, then every provider's fwd+bwd on the same inputs, timed interleaved;
    achieved TFLOP/s counts the 8·N·H·V FLOP of useful matmul work."""
    result = {"shape": case.as_dict(), **matmul_rate(case, reps=max(reps, 5)), **memory_plan(case), "providers": {}}
    inputs, fns = make_inputs(case), {}
    for provider in providers:
        print(f"[loss bench] N={case.num_tokens} {provider}: first call", file=sys.stderr, flush=True)
        fwd_bwd, result["providers"][provider] = first_call(case, provider, inputs, quick)
        if fwd_bwd is not None:
            fns[provider] = fwd_bwd
    print(f"[loss bench] N={case.num_tokens}: timing {list(fns)}", file=sys.stderr, flush=True)
    for provider, stats in time_interleaved(fns, reps=reps, warmup=warmup - 1).items():
        tflops = case.matmul_flop / stats["median_ms"] / 1e9
        result["providers"][provider].update(stats, tflops=tflops)
    return result


def run_all(device: str, reps: int, warmup: int, quick: bool) -> list[dict]:
    """Time every case, then measure memory. On CPU the 8·N case runs ours only (eager would
    need 8× its ~3 GB) with 3 reps, and the per-provider processes run two at a time: peak RSS
    is per process, so overlapping them changes no number, only the wall time."""
    providers = providers_for(device, liger_available=_liger_importable())
    cases = cases_for(device, quick)
    if device == "cpu":
        runs = [time_case(cases[0], providers, reps, warmup, quick), time_case(cases[1], ["ours"], 3, warmup, quick)]
    else:
        runs = [time_case(case, providers, reps, warmup, quick) for case in cases]
    jobs = [(run, name) for run in runs for name, stats in run["providers"].items() if "error" not in stats]
    with ThreadPoolExecutor(max_workers=1 if device == "cuda" else 2) as pool:
        measured = pool.map(lambda job: memory(Case(**job[0]["shape"]), job[1], quick), jobs)
        for (run, name), stats in zip(jobs, measured):
            run["providers"][name].update(stats)
    return runs


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.memory_of:
        payload = memory_worker(Case(**args.case), args.memory_of, args.quick)
        print(json.dumps(payload))
        return payload
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(CPU_THREADS)
    reps = args.reps or (3 if args.quick else 20 if device == "cuda" else 5)
    warmup = 1 if args.quick or device == "cpu" else 3
    load_at_start = os.getloadavg()[0]
    runs = run_all(device, reps, warmup, args.quick)
    design_case = Case(**(runs[0] if device == "cpu" else runs[-1])["shape"])
    exact = max_errors_vs_reference(design_case, ours_config(design_case))
    if device == "cpu":
        found = cpu_targets(runs[0], runs[1], exact, EXACT_TOLERANCE, FLAT_MEMORY_TOLERANCE)
    else:
        found = cuda_targets(runs[-1])
    payload = {
        "benchmark": "fused_loss_fwd_bwd",
        "meta": run_metadata(),
        "settings": {**_settings(device, reps, warmup, args.quick), "load_avg_1min_at_start": load_at_start},
        "runs": runs,
        "chunk_plan_production": {"shape": PRODUCTION.as_dict(), **memory_plan(PRODUCTION)},
        "exactness": exact,
        "targets": found,
        "all_targets_met": all(t["met"] for t in found.values()),
    }
    write_result(payload, args.out or RESULTS_DIR / f"loss_{device_slug()}{'_quick' if args.quick else ''}.json")
    return payload


def _liger_importable() -> bool:
    try:
        import liger_kernel.chunked_loss  # noqa: F401
    except ImportError:
        return False
    return True


def _settings(device: str, reps: int, warmup: int, quick: bool) -> dict:
    return {
        "quick": quick,
        "reps": reps,
        "warmup": warmup,
        "timer": "CUDA events" if device == "cuda" else "perf_counter wall clock",
        "memory": "torch.cuda.max_memory_allocated over inputs, after warm-up" if device == "cuda"
        else "peak RSS (VmHWM, reset after warm-up) minus RSS with inputs built, one fresh process per provider",
        "loss": "reverse KL + clipped PG (clip 0.2/0.2), credit weights in [1, 2], normalizer N",
        "liger": "beta=1 (reverse KL); CPU: chunked LigerFusedLinearJSDLoss with its default hard CE loss, "
        "no PG term; CUDA: LigerFusedLinearJSD + LigerFusedLinearGRPOLoss (dapo, no ref model)",
    }


if __name__ == "__main__":
    main()
