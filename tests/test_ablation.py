"""`bench/ablation.py --quick`: every method trains from the same model and is evaluated
before and after; the JSON, the plot and the table come out with intervals."""

import json
import os
import subprocess
import sys
from pathlib import Path

from vsdpo.train.tiny import save_tiny_model

ROOT = Path(__file__).resolve().parents[1]


def test_quick_ablation_writes_curves_plot_and_table(tmp_path):
    model = save_tiny_model(tmp_path / "model")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ablation.py"), "--quick", "--set",
         f"model.path='{model}'", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = (tmp_path / "out").glob("ablation_*_quick.json")
    payload = json.loads(result.read_text())
    methods = ["grpo", "sdpo", "visual_sdpo", "opsd"]
    assert list(payload["curves"]) == methods == list(payload["table"])
    for seeds in payload["curves"].values():
        (points,) = seeds
        assert [p["step"] for p in points] == [0, 1] and points[1]["rollouts"] == 2
        assert {"reward", "defect_rate", "content_fidelity"} <= points[-1]["metrics"].keys()
    for row in payload["table"].values():
        final = row["final"]
        assert final["reward@lo"] <= final["reward"] <= final["reward@hi"]
        assert "rollouts_to_grpo_final_defect_rate" in row
    assert result.with_suffix(".png").stat().st_size > 10_000
    table = result.with_suffix(".md").read_text()
    assert all(f"| {m} |" in table for m in methods) and "wall time" in table
