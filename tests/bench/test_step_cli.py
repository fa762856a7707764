"""Smoke test of the step profile: `bench/step.py` runs the real trainer (render pool, fused
loss, FSDP2 in a group of one) on a tiny random model, writes its JSON and a profiler trace.
Timings are not asserted, only that every stage was measured and the numbers add up."""

import json
import os
import subprocess
import sys
from pathlib import Path

from vsdpo.train.metrics import TIME_KEYS
from vsdpo.train.tiny import save_tiny_model

REPO = Path(__file__).resolve().parents[2]


def test_step_profile_reports_every_stage_and_writes_a_trace(tmp_path):
    model = save_tiny_model(tmp_path / "model")
    out, trace = tmp_path / "step.json", tmp_path / "trace"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "bench/step.py", "--steps", "2", "--warmup", "0", "--profile", str(trace),
         "--out", str(out), "--set", f"model.path='{model}'", "--set", "rollout.max_new_tokens=16",
         "--set", "rollout.recompute_logprobs=true", "--set", "tasks.num_train=8"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result == json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result["steps"]) == 2 and result["samples_per_step"] == 2 * 4
    for step in result["steps"]:
        assert all(step[k] > 0 for k in TIME_KEYS), step
        assert sum(step[k] for k in TIME_KEYS) <= step["step_s"]
    summary = result["summary"]
    assert summary["renders_per_s"] == 8 / summary["median_s"]["render"]
    traces = list(trace.glob("rank0*.pt.trace.json"))
    assert traces, list(trace.iterdir())
    events = {e.get("name") for e in json.loads(traces[0].read_text())["traceEvents"]}
    assert set(TIME_KEYS) - {"teacher", "update"} <= events  # stages are named in the trace
