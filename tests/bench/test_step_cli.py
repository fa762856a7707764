"""Smoke test of the step profile: `bench/step.py` runs the real trainer (render pool, fused
loss, FSDP2 in a group of one) on a tiny random model, synchronous, one step off
and streamed, and writes its JSON, a timeline PNG and a profiler trace.
Timings are not asserted, only that every stage was measured and the numbers add up."""

import json
import os
import subprocess
import sys
from pathlib import Path

from vsdpo.model.tiny import save_tiny_model
from vsdpo.train.metrics import TIME_KEYS

REPO = Path(__file__).resolve().parents[2]


def test_step_profile_reports_every_stage_of_each_mode_and_writes_a_timeline(tmp_path):
    model = save_tiny_model(tmp_path / "model")
    out, trace = tmp_path / "step.json", tmp_path / "trace"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp)}
    proc = subprocess.run(
        [sys.executable, "bench/step.py", "--steps", "2", "--warmup", "0", "--profile", str(trace),
         "--out", str(out), "--set", f"model.path='{model}'", "--set", "rollout.max_new_tokens=16",
         "--set", "rollout.recompute_logprobs=true", "--set", "tasks.num_train=8"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result == json.loads(proc.stdout.strip().splitlines()[-1])
    assert not list(tmp.glob("vsdpo-step-*"))  # each mode's run directory is removed
    assert result["samples_per_step"] == 2 * 4 and result["speedup"] > 0
    sync = result["modes"]["0"]["summary"]["median_s"]
    assert sync["sync"] < result["predicted_one_step_off_s"] <= sum(sync[k] for k in TIME_KEYS)
    assert (tmp_path / "step_timeline.png").stat().st_size > 0
    for staleness, mode in result["modes"].items():
        steps = mode["steps"]
        assert [s["staleness"] for s in steps] == {"0": [0, 0], "1": [0, 1],
                                                   "0+stream": [0, 0]}[staleness]
        for step in steps:
            assert all(step[k] > 0 for k in TIME_KEYS), step
            assert sum(step[k] for k in TIME_KEYS) <= step["step_s"]
        summary = mode["summary"]
        assert summary["renders_per_s"] == 8 / summary["median_s"]["render"]
        # the engine's spans by step: one batch each when synchronous; overlapped, step 0
        # samples its own batch and the next one, and the last step samples none ahead
        (spans,) = mode["timeline"]  # one rank
        engine = [sum(s[1] == "engine" and s[4] == i for s in spans) for i in range(2)]
        assert engine == {"0": [1, 1], "1": [2, 0], "0+stream": [1, 1]}[staleness]
        assert all(s[2] <= s[3] for s in spans)
    # streamed: each step renders and teaches its 2 groups on their own threads
    (spans,) = result["modes"]["0+stream"]["timeline"]
    for lane in ("render", "teacher"):
        assert sorted(s[0] for s in spans if s[1] == lane and s[4] == 1) == [
            f"{lane} g0", f"{lane} g1"]
    traces = list((trace / "mode0").glob("rank0*.pt.trace.json"))
    assert traces, list(trace.iterdir())
    events = {e.get("name") for e in json.loads(traces[0].read_text())["traceEvents"]}
    assert set(TIME_KEYS) - {"teacher", "update"} <= events  # stages are named in the trace
