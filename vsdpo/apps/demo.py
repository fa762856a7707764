"""`vsdpo demo` (`make demo`): the main job on the embedded default, end to end.

Warm-starts the tiny model (cached; another `model.path` is taken as it is), trains
Visual-SDPO with `torchrun` on K CPU processes, then evaluates the model before and after on
the held-out synthetic prompts (`EVAL_SAMPLES` programs each, for intervals tight enough to
read) and the change between them, paired per prompt; prints the table (kept as
`<run_dir>/eval.json`) and ends with the run's report (`vsdpo report`:
`<run_dir>/report.html`).
A finished run directory is reused (it resumes at its last step); delete it, or pass
`--set run_dir=...`, to train again.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from vsdpo.apps.evaluate import evaluate_rows, format_table, paired_change, summarize
from vsdpo.apps.report import write_report
from vsdpo.config import load_config
from vsdpo.model.pretrained import resolve_model_path

EVAL_SAMPLES = 4


def run_demo(config_path: str, overrides: list[str], nproc: int) -> None:
    cfg = load_config(config_path, overrides)  # a bad config fails here, before any work
    t0 = time.perf_counter()
    start = resolve_model_path(cfg.model.path)  # "warmstart": built once, then cached
    _banner(f"1/3 the model to train: {start}")
    _banner(f"2/3 train Visual-SDPO, {cfg.train.steps} steps on {nproc} processes -> {cfg.run_dir}")
    sets = [arg for kv in overrides for arg in ("--set", kv)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # torchrun's default; one thread per rank
    trained = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                              f"--nproc_per_node={nproc}", "-m", "vsdpo.train", "--config",
                              config_path, *sets], env=env)
    if trained.returncode:  # the trainer and torchrun have said why, above
        raise SystemExit(f"vsdpo demo: training failed (exit status {trained.returncode}); "
                         "its reason is printed above")
    _banner("3/3 evaluate before and after on the held-out prompts")
    rows = {}
    for name, path in (("before", start), ("after", str(Path(cfg.run_dir) / "final"))):
        cfg_model = load_config(config_path, overrides + [f"model.path='{path}'"])
        rows[name] = evaluate_rows(cfg_model, EVAL_SAMPLES)
    columns = {name: summarize(r, EVAL_SAMPLES) for name, r in rows.items()}
    columns["after - before"] = paired_change(rows["before"], rows["after"], EVAL_SAMPLES)
    print(format_table(columns))
    (Path(cfg.run_dir) / "eval.json").write_text(json.dumps(columns, indent=1))
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s; per-step metrics in "
          f"{cfg.run_dir}/metrics.jsonl")
    print(f"report: {write_report(cfg.run_dir)}")


def _banner(text: str) -> None:
    print(f"\n== {text}", flush=True)
