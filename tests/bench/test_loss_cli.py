"""Smoke test of the fused-loss benchmark CLI: `bench/loss.py --quick` runs end to end on CPU,
prints its JSON as the last stdout line, saves the same JSON and reports sane numbers.

It runs the real script in a subprocess at tiny shapes; timings are not asserted (they live in
the benchmark's JSON, not in tests), only their consistency.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("bench") / "loss_quick.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the checkout need not be pip-installed
    proc = subprocess.run(
        [sys.executable, "bench/loss.py", "--quick", "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), json.loads(out.read_text())


def test_quick_run_prints_the_json_it_saves(quick_run):
    printed, saved = quick_run
    assert printed == saved


def test_quick_run_records_device_versions_date_and_settings(quick_run):
    meta = quick_run[0]["meta"]
    for key in ("device", "date_utc", "python", "torch", "triton", "torch_threads"):
        assert meta[key], key
    assert quick_run[0]["settings"]["quick"] is True


def test_every_provider_reports_ordered_percentiles_flops_and_memory(quick_run):
    runs = quick_run[0]["runs"]
    assert {"eager", "ours"} <= set(runs[0]["providers"])
    assert list(runs[1]["providers"]) == ["ours"]
    assert runs[1]["shape"]["num_tokens"] == 8 * runs[0]["shape"]["num_tokens"]
    for run in runs:
        assert run["floor_ms"] > 0 and run["matmul_tflops"] > 0
        for name, stats in run["providers"].items():
            assert 0 < stats["p20_ms"] <= stats["median_ms"] <= stats["p80_ms"], name
            assert stats["tflops"] > 0 and stats["peak_extra_mib"] >= 0, name


def test_the_json_shows_the_chunk_plan_at_the_production_shape(quick_run):
    plan = quick_run[0]["chunk_plan_production"]
    assert plan["shape"] == {"num_tokens": 16384, "hidden": 4096, "vocab": 151936,
                             "dtype": "bfloat16", "device": "cuda"}
    assert plan["chunk_rows"] >= 2048 and plan["num_chunks"] * plan["chunk_rows"] >= 16384
    assert plan["promised_extra_mib"] == plan["accumulator_mib"] + 2 * plan["chunk_buffer_mib"]


def test_ours_and_eager_compute_the_same_loss_and_match_the_float64_reference(quick_run):
    payload = quick_run[0]
    providers = payload["runs"][0]["providers"]
    assert providers["ours"]["loss"] == pytest.approx(providers["eager"]["loss"], rel=1e-4)
    exact = payload["exactness"]
    assert max(exact["loss"], exact["grad_hidden"], exact["grad_weight"]) < 1e-4
    assert payload["targets"]["exact_vs_float64"]["met"]


def test_targets_carry_a_description_a_value_and_a_verdict(quick_run):
    targets = quick_run[0]["targets"]
    assert {"flat_memory_8x_tokens", "exact_vs_float64"} <= set(targets)
    for name, target in targets.items():
        assert set(target) == {"target", "value", "met"}, name
        assert isinstance(target["met"], bool), name
    assert quick_run[0]["all_targets_met"] == all(t["met"] for t in targets.values())
