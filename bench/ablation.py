"""The ablation, at toy scale on the embedded tasks: at an equal rollout budget, Visual-SDPO
against SDPO (uniform credit, `train.alpha=1`), GRPO (no teacher, `loss.kl_coef=0`) and an
OPSD-style teacher that reads the task's reference program instead of the render report
(`feedback.teacher_sees='reference'`, uniform credit). Each method trains from the same
warm-started model with the same seeds and the same rollouts per step, and is evaluated on
the held-out split every `--eval-every` steps with `--samples` programs per prompt.

    python bench/ablation.py                       # the full run (hours on 2 cores)
    python bench/ablation.py --quick               # minutes: the mechanics, for the tests
    python bench/ablation.py --set model.path=DIR  # any `--set` reaches every run's config

Writes, under bench/results/ (or `--out`): `ablation_<device>.json` (every curve of every
seed, the table, the settings, wall time), `.png` (reward, defect rate and content fidelity
against rollouts: the mean over seeds and its min–max band) and `.md` (the table: final
values with 95% bootstrap intervals over seed × prompt, and the rollouts each method needs to
reach GRPO's final defect rate). Runs one process after another in this process, a gloo
group of one, so its rollouts per step are `rollout.prompts_per_step × rollout.group_size`.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, device_slug, run_metadata  # noqa: E402

from vsdpo.config import load_config  # noqa: E402
from vsdpo.feedback.extract import extract_code  # noqa: E402
from vsdpo.train.data import build_tasks  # noqa: E402
from vsdpo.train.evaluate import sample_texts, score_samples, summarize  # noqa: E402
from vsdpo.train.model import exit_process  # noqa: E402
from vsdpo.train.trainer import Trainer  # noqa: E402

METHODS = {
    "grpo": ["loss.kl_coef=0"],
    "sdpo": ["train.alpha=1"],
    "visual_sdpo": [],
    "opsd": ["feedback.teacher_sees='reference'", "train.alpha=1"],
}
PLOTTED = ("reward", "defect_rate", "content_fidelity")
QUICK = dict(seeds=1, steps=1, eval_every=1, samples=2,
             sets=["tasks.num_eval=3", "rollout.max_new_tokens=48", "rollout.prompts_per_step=1",
                   "rollout.group_size=2"])


def main() -> None:
    args = _parse_args()
    if args.quick:
        args.seeds, args.steps, args.eval_every, args.samples = (
            QUICK[k] for k in ("seeds", "steps", "eval_every", "samples"))
        args.set = QUICK["sets"] + args.set
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vsdpo-ablation-") as tmp:
        curves = {m: [run_method(args, m, seed, Path(tmp) / f"{m}-{seed}")
                      for seed in range(args.seeds)] for m in args.methods}
    wall_s = time.perf_counter() - t0
    table = final_table(curves, args.samples)
    for point in (p for seeds in curves.values() for points in seeds for p in points):
        del point["rows"]  # the table holds what they give; the JSON keeps the metrics
    name = f"ablation_{device_slug()}{'_quick' if args.quick else ''}"
    out = Path(args.out) if args.out else RESULTS_DIR
    payload = run_metadata() | {
        "benchmark": "ablation", "config": args.config, "overrides": args.set,
        "methods": {m: METHODS[m] for m in args.methods}, "seeds": args.seeds,
        "steps": args.steps, "eval_every": args.eval_every, "samples": args.samples,
        "wall_s": round(wall_s, 1), "table": table, "curves": curves}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1) + "\n")
    plot(curves, out / f"{name}.png")
    (out / f"{name}.md").write_text(markdown(table, args, wall_s))
    print(markdown(table, args, wall_s))
    exit_process(0)


def run_method(args, method: str, seed: int, run_dir: Path) -> list[dict]:
    """Train one method from the initial model; an eval point at step 0 and every
    `eval_every` steps: {step, rollouts, metrics, rows}."""
    cfg = load_config(args.config, [*METHODS[method], *args.set, f"train.seed={seed}",
                                    f"train.steps={args.steps}", f"run_dir='{run_dir}'",
                                    "train.checkpoint_every=0", "train.log_rollouts_every=0"])
    trainer = Trainer(cfg)
    per_step = cfg.rollout.prompts_per_step * cfg.rollout.group_size * trainer.world
    points = [eval_point(trainer, args.samples, seed)]
    print(f"ablation: {method} seed {seed} step 0: {_brief(points[-1])}", flush=True)
    while trainer.step < args.steps:
        trainer.run_step()
        if trainer.step % args.eval_every == 0 or trainer.step == args.steps:
            points.append(eval_point(trainer, args.samples, seed))
            print(f"ablation: {method} seed {seed} step {trainer.step}: "
                  f"{_brief(points[-1])}", flush=True)
    trainer.close()
    for p in points:
        p["rollouts"] = p["step"] * per_step
    return points


def eval_point(trainer: Trainer, samples: int, seed: int) -> dict:
    """The trainer's current policy on the held-out split, sampled with the trainer's own
    engine (weights synced after every step) under a fixed seed that leaves the training
    RNG untouched."""
    cfg = trainer.cfg
    tasks = build_tasks(cfg.tasks, split="eval")
    with torch.random.fork_rng():
        torch.manual_seed(1000 + seed)
        texts = sample_texts(trainer.generator, trainer.tokenizer, tasks, samples, cfg.rollout)
    tasks_N = [t for t in tasks for _ in range(samples)]
    rows = asyncio.run(score_samples(cfg, tasks_N, [extract_code(t)[0] for t in texts]))
    return {"step": trainer.step, "metrics": summarize(rows, samples), "rows": rows}


def final_table(curves: dict[str, list[list[dict]]], samples: int) -> dict[str, dict]:
    """Per method: final values over all seeds' samples (intervals resample seed × prompt),
    each seed's final values, and the rollouts at which the seed-mean defect rate first
    reaches GRPO's final one (None: not within the budget)."""
    table = {}
    for method, seeds in curves.items():
        rows = [row for points in seeds for row in points[-1]["rows"]]
        table[method] = {"final": summarize(rows, samples),
                         "per_seed": [{k: p[-1]["metrics"][k] for k in PLOTTED
                                       if k in p[-1]["metrics"]} for p in seeds]}
    if "grpo" in curves:
        target = table["grpo"]["final"]["defect_rate"]
        for method, seeds in curves.items():
            mean_per_point = np.mean([[p["metrics"]["defect_rate"] for p in points]
                                      for points in seeds], axis=0)
            reached = [p["rollouts"] for p, d in zip(seeds[0], mean_per_point) if d <= target]
            table[method]["rollouts_to_grpo_final_defect_rate"] = reached[0] if reached else None
    return table


def plot(curves: dict[str, list[list[dict]]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(PLOTTED), figsize=(5 * len(PLOTTED), 3.6))
    for ax, key in zip(axes, PLOTTED):
        for method, seeds in curves.items():
            x = [p["rollouts"] for p in seeds[0]]
            y_SP = np.array([[p["metrics"].get(key, np.nan) for p in points] for points in seeds])
            ax.plot(x, y_SP.mean(axis=0), marker="o", label=method)
            ax.fill_between(x, y_SP.min(axis=0), y_SP.max(axis=0), alpha=0.2)
        ax.set_xlabel("rollouts")
        ax.set_title(key)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(table: dict, args, wall_s: float) -> str:
    keys = [k for k in PLOTTED if all(k in t["final"] for t in table.values())]
    lines = [f"Seeds {args.seeds}, {args.steps} steps, eval every {args.eval_every} steps with "
             f"{args.samples} samples per prompt; wall time {wall_s / 60:.1f} min.", "",
             "| method | " + " | ".join(keys) + " | rollouts to GRPO's final defect rate |",
             "|---|" + "---|" * (len(keys) + 1)]
    for method, t in table.items():
        f = t["final"]
        cells = [f"{f[k]:.3f} [{f[k + '@lo']:.3f}, {f[k + '@hi']:.3f}]" for k in keys]
        reached = t.get("rollouts_to_grpo_final_defect_rate")
        reached = "not reached" if reached is None else reached
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {reached} |")
    return "\n".join(lines) + "\n"


def _brief(point: dict) -> str:
    m = point["metrics"]
    return " ".join(f"{k}={m[k]:.3f}" for k in PLOTTED if k in m)


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/tiny.toml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--samples", type=int, default=4, help="programs per held-out prompt")
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 step, 3 prompts")
    parser.add_argument("--out", default=None, help="directory for the three result files")
    return parser.parse_args()


if __name__ == "__main__":
    main()
