"""`bench/ablation.py --quick`: every arm trains from the same model and is evaluated before
and after; the JSON (curves, per-sample rows, the paired report), the plot and the table come
out."""

import json
import os
import subprocess
import sys
from pathlib import Path

from vsdpo.model.tiny import save_tiny_model

ROOT = Path(__file__).resolve().parents[1]
ARMS = ["grpo", "sdpo", "visual_sdpo", "random_credit", "opsd", "one_step_off"]


def test_quick_ablation_over_two_jobs_writes_curves_rows_report_plot_and_table(tmp_path):
    """Both seeds' jobs run every arm; their JSON merges into one paired report."""
    model = save_tiny_model(tmp_path / "model")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ablation.py"), "--quick", "--set",
         f"model.path='{model}'", "--out", str(out), "--seeds", "0,1", "--jobs", "2"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    payload = json.loads((out / "ablation.json").read_text())
    assert list(payload["arms"]) == ARMS
    assert not list(out.glob("job*"))  # the jobs' folders are removed once merged
    for arm in payload["arms"].values():  # each job ran its own seed, and only that one
        assert [arm["seeds"][seed]["job"] for seed in ("0", "1")] == [0, 1]
    assert payload["arms"]["random_credit"]["settings"]["credit"] == "random"
    assert payload["arms"]["sdpo"]["settings"]["teacher_sees"] == "plain"
    for seed in ("0", "1"):
        step0 = []
        for arm in payload["arms"].values():
            run = arm["seeds"][seed]
            assert run["steps"] == [0, 1] and run["rollouts"] == [0, 2]
            assert all(len(run[k]) == 2 for k in ("defect_rate", "content_fidelity", "reward"))
            rows = run["samples"]
            assert rows["prompt"] == [0, 0, 1, 1, 2, 2]  # 3 held-out prompts × 2 samples
            assert all(len(rows[k]) == 2 and len(rows[k][0]) == 6
                       for k in ("defect_rate", "content_fidelity", "reward"))
            assert set(run["train"]) >= {"grad_norm_kl", "grad_norm_pg", "divergence_blamed"}
            step0.append([rows[k][0] for k in ("defect_rate", "reward")])
        assert all(s == step0[0] for s in step0)  # every arm starts from the seed's same eval
    report = payload["report"]
    pair = report["paired"]["visual_sdpo - grpo"]
    assert pair["seeds"] == ["0", "1"]
    assert pair["defect_auc"]["lo"] <= pair["defect_auc"]["mean"] <= pair["defect_auc"]["hi"]
    assert {"seeds_defect_auc_below_both", "content_non_inferior"} <= report["verdict"].keys()
    assert (out / "ablation.png").stat().st_size > 10_000
    table = (out / "ablation.md").read_text()
    assert all(f"| {arm} |" in table for arm in ARMS) and "wall time" in table
    assert "| visual_sdpo - random_credit |" in table
