"""The CUDA memory target of bench/loss.py is what kernels/linear_loss.py promises: beyond the
gradients of h and W, the fp32 dW accumulator and two [C, V] chunk buffers, no more."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from common import MIB  # noqa: E402
from loss_checks import cuda_targets, memory_plan  # noqa: E402
from loss_providers import Case  # noqa: E402

TARGET_CASE = Case(num_tokens=16384, hidden=4096, vocab=151936, dtype="bfloat16", device="cuda")


def _run(extra_mib: float) -> dict:
    return {"floor_ms": 1.0, **memory_plan(TARGET_CASE), "providers": {
        "eager": {"error": "out of memory"},
        "ours": {"median_ms": 1.2, "peak_extra_beyond_grads_mib": extra_mib}}}


def test_the_plan_counts_the_fp32_accumulator_and_two_input_dtype_buffers():
    plan = memory_plan(TARGET_CASE)
    assert plan["accumulator_mib"] == 151936 * 4096 * 4 / MIB
    assert plan["chunk_buffer_mib"] == plan["chunk_rows"] * 151936 * 2 / MIB
    assert plan["promised_extra_mib"] == plan["accumulator_mib"] + 2 * plan["chunk_buffer_mib"]


def test_a_run_that_keeps_the_promise_meets_the_memory_target_and_a_third_buffer_does_not():
    plan = memory_plan(TARGET_CASE)
    kept = cuda_targets(_run(plan["accumulator_mib"] + 2 * plan["chunk_buffer_mib"]))
    assert kept["extra_memory_as_promised"]["met"]
    broken = cuda_targets(_run(plan["accumulator_mib"] + 3 * plan["chunk_buffer_mib"]))
    assert not broken["extra_memory_as_promised"]["met"]


def test_a_failed_memory_measurement_fails_the_target_without_raising():
    run = _run(0.0)
    del run["providers"]["ours"]["peak_extra_beyond_grads_mib"]
    assert not cuda_targets(run)["extra_memory_as_promised"]["met"]
