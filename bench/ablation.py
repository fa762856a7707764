"""The ablation, at toy scale on the embedded tasks: does Visual-SDPO's traced, localised credit
lower defects faster than the arms without it, at an equal rollout budget? The arms (docs/
train.md, "The ablation"): GRPO (no teacher), SDPO (the environment's plain feedback, uniform
credit), Visual-SDPO (the traced report, credit on the blamed statements), random credit (the
traced report, the same credit on random statements), and on request OPSD (the reference
program, uniform credit) and one_step_off (Visual-SDPO sampled one step ahead,
`rollout.max_staleness = 1`: does the lag cost learning?). Every arm trains from the same
warm-started model on every seed, and is evaluated on the held-out split at step 0, every
`--eval-every` steps and at the end.

    python bench/ablation.py --seeds 4,5,6,7 --out DIR     # the documented run (the defaults)
    python bench/ablation.py --arms grpo opsd --seeds 0    # some arms, one seed
    python bench/ablation.py --quick                       # a minute: the mechanics, for tests
    python bench/ablation.py --set rollout.prompts_per_step=3   # reaches every run's config

Writes `ablation.json` (each arm's curves and per-sample eval rows per seed, its training
metrics, the settings, the report), `ablation.md` (the tables) and `ablation.png` (the
curves) under `--out` (default bench/results/ablation_<device>/). The JSON is rewritten after
every run, so an interrupted experiment keeps its finished runs. The report
(`ablation_stats.py`) pairs arms within a seed: area under the defect-rate curve and final
values, per seed and over seeds with a hierarchical bootstrap interval. The seeds are split
over `--jobs` processes; within one, runs go one after another, each a gloo group of one, so
a step's rollouts are `rollout.prompts_per_step × rollout.group_size`.
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablation_stats import hierarchical_bootstrap, paired_difference, per_prompt  # noqa: E402
from common import RESULTS_DIR, device_slug, run_metadata  # noqa: E402

from vsdpo.apps.evaluate import sample_texts, score_samples, summarize  # noqa: E402
from vsdpo.config import load_config  # noqa: E402
from vsdpo.feedback.extract import extract_code  # noqa: E402
from vsdpo.model.pretrained import resolve_model_path  # noqa: E402
from vsdpo.train.data import build_tasks  # noqa: E402
from vsdpo.train.distributed import exit_process  # noqa: E402
from vsdpo.train.trainer import Trainer  # noqa: E402

# Each arm sets every axis it is defined on; applied after `--set`, so no override changes an
# arm's definition.
ARMS = {
    "grpo": ["loss.kl_coef=0"],
    "sdpo": ["feedback.teacher_sees='plain'", "feedback.alpha=1", "feedback.sibling=true"],
    "visual_sdpo": ["feedback.teacher_sees='traced'", "feedback.alpha=3",
                    "feedback.credit='traced'"],
    "random_credit": ["feedback.teacher_sees='traced'", "feedback.alpha=3",
                      "feedback.credit='random'"],
    "opsd": ["feedback.teacher_sees='reference'", "feedback.alpha=1"],
    # Visual-SDPO with each batch sampled one step ahead (docs/rollout.md, "Overlapped rollouts")
    "one_step_off": ["feedback.teacher_sees='traced'", "feedback.alpha=3",
                     "feedback.credit='traced'", "rollout.max_staleness=1"],
}
# The documented run's budget (≤ 35 min on 2 cores): 2 prompts × 4 samples per step, held-out
# eval on 24 prompts (7 in 8 with a risky block) × `--samples`; `--set` comes after these.
BUDGET = ["rollout.prompts_per_step=2", "tasks.num_eval=24"]
DEFAULT_ARMS = ["grpo", "sdpo", "visual_sdpo", "random_credit"]  # the others on request (--arms)
METRICS = ("defect_rate", "content_fidelity", "reward")  # per-sample rows kept for the bootstrap
CURVES = (*METRICS, "exec_rate", "clean_complete")
TRAIN_KEYS = ("reward", "defect_rate", "divergence", "divergence_blamed", "divergence_unblamed",
              "blamed_token_frac", "grad_norm_kl", "grad_norm_pg")
# (name, metric, per-prompt statistic): what the report compares
STATISTICS = (("defect_auc", "defect_rate", "auc"), ("final_defect_rate", "defect_rate", "final"),
              ("final_content_fidelity", "content_fidelity", "final"),
              ("final_reward", "reward", "final"))
COMPARISONS = (("visual_sdpo", "grpo"), ("visual_sdpo", "random_credit"), ("sdpo", "grpo"),
               ("random_credit", "grpo"), ("opsd", "grpo"), ("one_step_off", "visual_sdpo"))
CONTENT_MARGIN = -0.01  # Visual-SDPO's final content fidelity − GRPO's must stay above this
QUICK = dict(arms=list(ARMS), steps=1, eval_every=1, samples=2,
             sets=["tasks.num_eval=3", "rollout.max_new_tokens=48", "rollout.prompts_per_step=1",
                   "rollout.group_size=2"])


def main() -> None:
    args = _parse_args()
    # one model for every run, even if the warm-start's sources change during the experiment
    model = resolve_model_path(load_config(args.config, args.set).model.path)
    args.set = [*args.set, f"model.path='{model}'"]
    quick = "_quick" if args.quick else ""
    out = Path(args.out or RESULTS_DIR / f"ablation_{device_slug()}{quick}")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    payload = run_jobs(args, out) if args.jobs > 1 else run_seeds(args, out)
    payload["wall_s"] = round(time.perf_counter() - t0, 1)
    payload["report"] = report(payload["arms"], args.eval_steps)
    (out / "ablation.json").write_text(_dumps(payload))
    plot(payload["arms"], out / "ablation.png")
    table = markdown(payload)
    (out / "ablation.md").write_text(table)
    print(table)
    exit_process(0)


def run_seeds(args, out: Path) -> dict:
    """Every arm on every seed, one run after another in this process."""
    payload = run_metadata() | {"benchmark": "ablation", "settings": _settings(args), "arms": {}}
    step0 = {}  # seed → its step-0 eval: every arm starts from the same model, sampled alike
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vsdpo-ablation-") as tmp:
        for seed in args.seeds:
            for arm in args.arms:
                settings, run = run_arm(args, arm, seed, Path(tmp) / f"{arm}-{seed}", step0)
                entry = payload["arms"].setdefault(arm, {"settings": settings, "seeds": {}})
                entry["seeds"][str(seed)] = run
                payload["wall_s"] = round(time.perf_counter() - t0, 1)
                (out / "ablation.json").write_text(_dumps(payload))
    return payload


def run_jobs(args, out: Path) -> dict:
    """The seeds split over `--jobs` child processes of one thread each; their JSON merged,
    each run marked with its job, and their folders removed once merged."""
    jobs = [args.seeds[j::args.jobs] for j in range(args.jobs) if args.seeds[j::args.jobs]]
    procs = [subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--set", args.set[-1],
                               "--seeds", ",".join(map(str, seeds)), "--jobs", "1",
                               "--out", str(out / f"job{j}")],
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
             for j, seeds in enumerate(jobs)]
    if any(p.wait() for p in procs):
        raise SystemExit(f"ablation: a job failed; its partial results are in {out}/job*/")
    payload = run_metadata() | {"benchmark": "ablation", "settings": _settings(args), "arms": {}}
    for j in range(len(jobs)):
        part = json.loads((out / f"job{j}" / "ablation.json").read_text())
        for arm, entry in part["arms"].items():
            mine = payload["arms"].setdefault(arm, {"settings": entry["settings"], "seeds": {}})
            mine["seeds"] |= {seed: run | {"job": j} for seed, run in entry["seeds"].items()}
    for j in range(len(jobs)):
        shutil.rmtree(out / f"job{j}")
    for entry in payload["arms"].values():  # seeds in order, as one process would have run them
        entry["seeds"] = dict(sorted(entry["seeds"].items(), key=lambda kv: int(kv[0])))
    return payload


def run_arm(args, arm: str, seed: int, run_dir: Path, step0: dict) -> tuple[dict, dict]:
    """Train one arm on one seed, evaluating at `args.eval_steps`; returns the arm's resolved
    settings and the run: {steps, rollouts, one curve per CURVES key, samples, train, eval_s,
    wall_s}."""
    cfg = load_config(args.config, [*args.set, *ARMS[arm], f"train.seed={seed}",
                                    f"train.steps={args.steps}", f"run_dir='{run_dir}'",
                                    "train.checkpoint_every=0", "train.log_rollouts_every=0"])
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    if seed not in step0:
        step0[seed] = eval_point(trainer, args.samples, seed)
        print(f"ablation: seed {seed} step 0: {_brief(step0[seed])}", flush=True)
    points, train = [step0[seed]], []
    while trainer.step < args.steps:
        train.append(trainer.run_step())
        if trainer.step in args.eval_steps:
            points.append(eval_point(trainer, args.samples, seed))
            print(f"ablation: {arm} seed {seed} step {trainer.step}: {_brief(points[-1])}",
                  flush=True)
    trainer.close()
    per_step = cfg.rollout.prompts_per_step * cfg.rollout.group_size * trainer.world
    run = {"steps": [p["step"] for p in points],
           "rollouts": [p["step"] * per_step for p in points]}
    run |= {k: [p["metrics"].get(k) for p in points] for k in CURVES}
    run["samples"] = {"prompt": [i // args.samples for i in range(len(points[0]["rows"]))]}
    run["samples"] |= {k: [[_round(row.get(k)) for row in p["rows"]] for p in points]
                       for k in METRICS}
    run["train"] = {k: [_round(m.get(k)) for m in train] for k in TRAIN_KEYS}
    run["train"]["step_s"] = [round(sum(v for k, v in m.items() if k.startswith("time/")), 2)
                              for m in train]
    run["eval_s"] = [p["eval_s"] for p in points]
    run["wall_s"] = round(time.perf_counter() - t0, 1)
    f = cfg.feedback
    settings = {"overrides": ARMS[arm], "teacher_sees": f.teacher_sees, "credit": f.credit,
                "sibling": f.sibling, "alpha": cfg.feedback.alpha, "kl_coef": cfg.loss.kl_coef,
                "pg_coef": cfg.loss.pg_coef, "rollouts_per_step": per_step}
    return settings, run


def eval_point(trainer: Trainer, samples: int, seed: int) -> dict:
    """The trainer's current policy on the held-out split, sampled with the trainer's own
    engine (weights synced after every step) under a fixed seed that leaves the training
    RNG untouched: {step, metrics, rows} (one row per sample, a prompt's samples adjacent)."""
    cfg, t0 = trainer.cfg, time.perf_counter()
    tasks = build_tasks(cfg.tasks, split="eval")
    with torch.random.fork_rng():
        torch.manual_seed(1000 + seed)
        texts = sample_texts(trainer.generator, trainer.tokenizer, tasks, samples, cfg.rollout,
                             trainer.task_images(tasks))
    tasks_N = [t for t in tasks for _ in range(samples)]
    codes = [extract_code(t)[0] for t in texts]
    rows = trainer.loop.run_until_complete(score_samples(cfg, tasks_N, codes,
                                                         pool=trainer.scorer.pool))
    return {"step": trainer.step, "metrics": summarize(rows, samples), "rows": rows,
            "eval_s": round(time.perf_counter() - t0, 1)}


def prompt_values(run: dict, metric: str) -> np.ndarray:
    """`[E, P]`: each held-out prompt's mean over its (adjacent) samples at each eval point;
    NaN where the metric does not apply to the prompt."""
    values_EN = np.array(run["samples"][metric], dtype=np.float64)  # None → NaN
    num_prompts = max(run["samples"]["prompt"]) + 1
    with warnings.catch_warnings():  # a prompt without the metric: NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values_EN.reshape(len(values_EN), num_prompts, -1), axis=2)


def report(arms: dict, steps: list[int]) -> dict:
    """Each arm's own values and the paired differences of COMPARISONS over the seeds both arms
    ran: per seed, the mean and a 95% hierarchical bootstrap interval; then the verdict."""
    def values(arm: str, metric: str, seeds: list[str]) -> np.ndarray:
        return np.stack([prompt_values(arms[arm]["seeds"][s], metric) for s in seeds])

    out = {"steps": steps, "arms": {}, "paired": {}}
    for arm, entry in arms.items():
        seeds = list(entry["seeds"])
        out["arms"][arm] = {"seeds": seeds} | {
            name: hierarchical_bootstrap(per_prompt(values(arm, metric, seeds), steps, statistic))
            for name, metric, statistic in STATISTICS}
    for a, b in COMPARISONS:
        if a not in arms or b not in arms:
            continue
        seeds = [s for s in arms[a]["seeds"] if s in arms[b]["seeds"]]
        out["paired"][f"{a} - {b}"] = {"seeds": seeds} | {
            name: paired_difference(values(a, metric, seeds), values(b, metric, seeds), steps,
                                    statistic) for name, metric, statistic in STATISTICS}
    out["verdict"] = verdict(out["paired"])
    return out


def verdict(paired: dict) -> dict:
    """What docs/train.md reads as support or refutation: the seeds where Visual-SDPO's defect
    AUC is below GRPO's, below random credit's, and below both; content non-inferiority."""
    vs_grpo, vs_random = paired.get("visual_sdpo - grpo"), paired.get("visual_sdpo - random_credit")
    if vs_grpo is None or vs_random is None:
        return {}
    below_grpo = [d < 0 for d in vs_grpo["defect_auc"]["per_seed"]]
    below_random = [d < 0 for d in vs_random["defect_auc"]["per_seed"]]
    content = vs_grpo["final_content_fidelity"]
    num_seeds, below_both = len(below_grpo), sum(g and r for g, r in zip(below_grpo, below_random))
    non_inferior = content["lo"] >= CONTENT_MARGIN
    return {"num_seeds": num_seeds, "seeds_defect_auc_below_grpo": sum(below_grpo),
            "seeds_defect_auc_below_random_credit": sum(below_random),
            "seeds_defect_auc_below_both": below_both,
            "content_fidelity_margin": CONTENT_MARGIN,
            "content_fidelity_difference_lo": content["lo"], "content_non_inferior": non_inferior,
            "supported": below_both >= math.ceil(0.75 * num_seeds) and non_inferior}


def plot(arms: dict, path: Path) -> None:
    """Each METRICS curve against training steps: the mean over seeds, its min–max band."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(METRICS), figsize=(5 * len(METRICS), 3.6))
    for ax, key in zip(axes, METRICS):
        for arm, entry in arms.items():
            runs = list(entry["seeds"].values())
            y_SE = np.array([[np.nan if v is None else v for v in r[key]] for r in runs])
            ax.plot(runs[0]["steps"], np.nanmean(y_SE, axis=0), marker="o", label=arm)
            ax.fill_between(runs[0]["steps"], np.nanmin(y_SE, axis=0), np.nanmax(y_SE, axis=0),
                            alpha=0.15)
        rollouts = next(iter(arms.values()))["settings"]["rollouts_per_step"]
        ax.set_xlabel(f"step ({rollouts} rollouts each)")
        ax.set_title(f"{key} (held-out)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(payload: dict) -> str:
    s, rep = payload["settings"], payload["report"]
    names = [name for name, _, _ in STATISTICS]
    lines = [f"Seeds {s['seeds']}, {s['steps']} steps, held-out eval at steps {s['eval_steps']} "
             f"with {s['samples']} samples per prompt; overrides {s['overrides']}; wall time "
             f"{payload['wall_s'] / 60:.1f} min. Mean over seeds [95% hierarchical bootstrap "
             "interval: seeds, then prompts]; defect AUC = trapezoid area under the defect-rate "
             "curve / step range.", "",
             "| arm | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {arm} | " + " | ".join(_cell(a[n]) for n in names) + " |"
              for arm, a in rep["arms"].items()]
    lines += ["", "Paired differences (per seed; mean [interval]):", "",
              "| comparison | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for pair, d in rep["paired"].items():
        cells = [" ".join(f"{x:+.3f}" for x in d[n]["per_seed"]) + f"; {_cell(d[n], '+.3f')}"
                 for n in names]
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    v = rep["verdict"]
    if v:
        clears = "clears" if v["content_non_inferior"] else "misses"
        lines += ["", f"Visual-SDPO's defect AUC is below GRPO's in "
                  f"{v['seeds_defect_auc_below_grpo']} of {v['num_seeds']} seeds, below random "
                  f"credit's in {v['seeds_defect_auc_below_random_credit']}, below both in "
                  f"{v['seeds_defect_auc_below_both']}. Content fidelity − GRPO's: lower bound "
                  f"{v['content_fidelity_difference_lo']:+.3f}, {clears} the "
                  f"{v['content_fidelity_margin']} margin. Supported: "
                  f"{'yes' if v['supported'] else 'no'}."]
    return "\n".join(lines) + "\n"


def _cell(stat: dict, fmt: str = ".3f") -> str:
    return f"{stat['mean']:{fmt}} [{stat['lo']:{fmt}}, {stat['hi']:{fmt}}]"


def _brief(point: dict) -> str:
    m = point["metrics"]
    return " ".join(f"{k}={m[k]:.3f}" for k in METRICS if k in m)


def _round(value):
    return None if value is None else float(f"{value:.4g}")


def _dumps(payload: dict) -> str:
    """Indented JSON with each innermost list on one line (the per-sample rows stay compact)."""
    text = json.dumps(payload, indent=1)
    return re.sub(r"\[\n\s*([^\[\]{}]*?)\n\s*\]",
                  lambda m: "[" + re.sub(r",\n\s*", ", ", m.group(1)) + "]", text) + "\n"


def _settings(args) -> dict:
    return {"config": args.config, "overrides": args.set, "arms": args.arms, "seeds": args.seeds,
            "steps": args.steps, "eval_steps": args.eval_steps, "samples": args.samples,
            "quick": args.quick}


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/tiny.toml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every run (an arm's own keys win)")
    parser.add_argument("--arms", nargs="+", default=None, choices=list(ARMS),
                        help=f"default: {' '.join(DEFAULT_ARMS)} (--quick: all)")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated training seeds (default 4,5,6,7; --quick: 0)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--eval-every", type=int, default=20,
                        help="held-out eval at step 0, every N steps and at the end")
    parser.add_argument("--samples", type=int, default=4, help="programs per held-out prompt")
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 step, 3 prompts")
    parser.add_argument("--out", default=None, help="directory for the three result files")
    parser.add_argument("--jobs", type=int, default=None,
                        help="processes that split the seeds, one thread each (default 2; "
                        "--quick: 1)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.eval_every, args.samples = (
            QUICK[k] for k in ("steps", "eval_every", "samples"))
        args.set = QUICK["sets"] + args.set
    args.arms = args.arms or (QUICK["arms"] if args.quick else DEFAULT_ARMS)
    args.seeds = args.seeds or ("0" if args.quick else "4,5,6,7")
    args.jobs = args.jobs or (1 if args.quick else 2)
    args.set = BUDGET + args.set
    args.seeds = [int(s) for s in str(args.seeds).split(",")]
    if args.steps < 1 or args.eval_every < 1 or args.samples < 1 or args.jobs < 1:
        parser.error("--steps, --eval-every, --samples and --jobs must be >= 1")
    args.eval_steps = sorted({0, *range(args.eval_every, args.steps, args.eval_every), args.steps})
    return args


if __name__ == "__main__":
    main()
