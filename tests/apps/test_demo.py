"""`vsdpo demo` (`make demo`'s job) end to end, shrunk: one training step on two gloo
processes from a random tiny model, then before, after and the paired change."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SMALL = ["train.steps=1", "train.checkpoint_every=0", "rollout.prompts_per_step=1",
         "rollout.max_new_tokens=16", "tasks.domains=['web']", "tasks.num_eval=3"]


def test_the_demo_trains_the_given_model_and_tables_before_after_and_the_change(
        tiny_model_dir, tmp_path):
    run_dir = tmp_path / "run"
    sets = [f"model.path='{tiny_model_dir}'", f"run_dir='{run_dir}'", *SMALL]
    done = subprocess.run([sys.executable, "-m", "vsdpo.cli", "demo", "--config",
                           "configs/tiny.toml", *[a for s in sets for a in ("--set", s)]],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"1/3 the model to train: {tiny_model_dir}" in done.stdout  # not the warm start
    columns = json.loads((run_dir / "eval.json").read_text())
    assert list(columns) == ["before", "after", "after - before"]
    for key in ("exec_rate", "defect_rate", "reward"):  # in every row: the change is exact
        change = columns["after"][key] - columns["before"][key]
        assert columns["after - before"][key] == pytest.approx(change, abs=1e-12)
    assert columns["before"]["exec_rate@lo"] <= columns["before"]["exec_rate"]
    assert "after - before" in done.stdout and (run_dir / "report.html").is_file()
