"""scripts/device_check.sh, the one GPU check: it parses, and its `--cpu` dry run runs every
CPU-runnable part (the CUDA tests collected and skipped, the loss benchmark at tiny shapes, a
1-step chart training run under torchrun, and where vLLM imports its CPU engine's cycle on a
text model and a tiny Qwen3-VL) and writes the one JSON of the five parts (~1 min on 2 cores;
with vLLM an estimated ~4 more, two engine starts, not measured on an idle machine)."""

import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from vsdpo.rollout.vllm import cpu_unsupported_reason

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "device_check.sh"


def test_the_device_check_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_the_cpu_dry_run_reports_every_part_in_one_json(tmp_path):
    """Also without pytest-benchmark (a GPU image may lack it; pyproject's addopts name it)."""
    env = os.environ | {"PYTHON": sys.executable, "DEVICE_CHECK_OUT": str(tmp_path),
                        "PYTEST_ADDOPTS": "-p no:benchmark"}
    env.pop("OUT", None)
    proc = subprocess.run(["bash", str(SCRIPT), "--cpu"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1000)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "device_check_cpu.json").read_text())
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == report  # last stdout line
    assert report["mode"] == "cpu" and report["all_passed"]
    assert {"device", "torch", "triton", "date_utc"} <= set(report["meta"])
    tests, bench, train = (report["parts"][k] for k in ("kernel_tests", "loss_bench", "training"))
    assert tests["failures"] == tests["errors"] == 0 and tests["skipped"] >= 5  # the CUDA ones
    assert (tmp_path / bench["result_file"]).is_file()
    assert {"eager", "ours"} <= set(bench["runs"][0]["providers"])
    assert bench["runs"][0]["floor_ms"] > 0 and bench["runs"][0]["providers"]["ours"]["median_ms"] > 0
    assert [m["step"] for m in train["metrics"]] == [1]
    assert train["metrics"][0]["tokens"] > 0 and train["metrics"][0]["loss"] == train["metrics"][0]["loss"]
    assert (tmp_path / train["result_file"]).is_file()
    for name in ("vllm", "vllm_vl"):  # skipped, not failed, where vLLM does not import
        part = report["parts"][name]
        if importlib.util.find_spec("vllm") is None or cpu_unsupported_reason():
            assert part["skipped"] and part["reason"] and part["passed"]
            continue
        assert part["checks"] and all(part["checks"].values()), part
        assert part["logprob_diffs"]["after_sync"]["tokens"] > 0
        assert (tmp_path / part["result_file"]).is_file()
    vl = report["parts"]["vllm_vl"]
    if not vl.get("skipped"):
        assert vl["architecture"] == "Qwen3VLForConditionalGeneration"
        assert [i["engine"] for i in vl["image_tokens"]] == [i["trainer"] for i in vl["image_tokens"]]
        assert all(i["trainer"] > 0 for i in vl["image_tokens"]) and len(vl["image_tokens"]) == 2


def test_without_torch_in_python3_the_check_runs_on_the_setups_venv(tmp_path):
    """As the README's users run it: no $PYTHON, a python3 without torch, `make setup`'s .venv.
    A copy of the script in a scratch checkout; stopped once its first part starts."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts")
    (tmp_path / "bench").symlink_to(REPO / "bench")
    _executable(tmp_path / "bin" / "python3", "exit 1")  # no torch
    _executable(tmp_path / ".venv" / "bin" / "python", f'exec {shlex.quote(sys.executable)} "$@"')
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "OUT")}
    env |= {"PATH": f"{tmp_path / 'bin'}:{env['PATH']}", "DEVICE_CHECK_OUT": str(tmp_path / "out")}
    proc = subprocess.Popen(["bash", "scripts/device_check.sh", "--cpu"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "kernel_tests" in line:
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert any(".venv/bin/python (torch " in line for line in lines), "".join(lines)
    assert "kernel_tests" in lines[-1], "".join(lines)


def _executable(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
