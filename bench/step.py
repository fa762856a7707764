"""Step profile: the time of each stage of a training step, tokens/s and renders/s, for the
synchronous loop, the overlapped one (`rollout.max_staleness` 0 and 1) and the streamed one
(`rollout.stream`: render and teacher per group, as the groups come) in one run.

For each of `--modes` in turn ("0", "1": the staleness; "+stream": streamed), runs `--warmup`
untimed steps and then `--steps` timed ones of a config with the real trainer (rollout
engine, render pool, fused loss, FSDP2), in a fresh run directory. Each stage time is the
slowest rank's main-thread time ("rollout" is the time it waited for the engine: all of the
sampling when synchronous, what the sampling ahead did not hide when overlapped; streamed,
the stages are what the overlap did not hide, `vsdpo/train/stream.py`). The JSON keeps every
step, the medians, each rank's timeline of stages (main thread, engine, and a streamed step's
renders and teacher forwards, seconds from the first timed step), and the overlapped step
predicted from the synchronous stage times with nothing shared (`predicted_one_step_off_s`);
the PNG draws the timeline of the last timed steps of each mode.

    torchrun --nproc_per_node=2 bench/step.py                           # tiny config, CPU
    torchrun --nproc_per_node=2 bench/step.py --config configs/tiny-vl.toml   # + image tokens
    torchrun --nproc_per_node=2 bench/step.py --set rollout.engine=vllm --modes 0
    torchrun --nproc_per_node=2 bench/step.py --set rollout.engine=vllm \
        --set rollout.vllm.sleep=false --modes 0+stream     # vLLM hands over each group as it ends
    torchrun --nproc_per_node=8 bench/step.py --config configs/qwen2.5-coder-7b-1node.toml \
        --steps 5 --profile runs/trace     # + a torch.profiler trace per rank (Perfetto/TensorBoard)

With vLLM give one mode per run: the engine's shutdown ends the process group.
Writes bench/results/step_<config>_<engine>_<device>.json and, beside it, the same name with
`_timeline.png` (override with --out).
"""

import argparse
import contextlib
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from common import RESULTS_DIR, device_slug, run_metadata, write_result
from vsdpo.config import load_config
from vsdpo.train.distributed import exit_process, init_distributed
from vsdpo.train.metrics import TIME_KEYS
from vsdpo.train.trainer import Trainer

IMAGE_KEYS = ("image_tokens", "teacher_image_tokens")
PLOTTED_STEPS = 3  # the timeline PNG draws this many last timed steps of each mode
LANES = ("main", "engine", "render", "teacher")  # the timeline's threads


def main() -> None:
    args = _parse_args()
    rank, world, _ = init_distributed()
    modes, engine = {}, None
    for mode in args.modes:
        cfg, steps, timeline = _measure(args, mode, rank)
        samples = world * cfg.rollout.prompts_per_step * cfg.rollout.group_size
        modes[mode] = {"summary": _summary(steps, samples), "steps": steps,
                       "timeline": timeline}
        engine = cfg.rollout.engine
    if rank == 0:
        payload = run_metadata() | {
            "benchmark": "step", "config": args.config, "overrides": args.set,
            "engine": engine, "world_size": world, "samples_per_step": samples,
            "warmup_steps": args.warmup, "modes": modes}
        if "0" in modes:
            payload["predicted_one_step_off_s"] = _one_step_off(modes["0"]["summary"]["median_s"])
        if {"0", "1"} <= modes.keys():  # synchronous over overlapped median step time
            payload["speedup"] = (modes["0"]["summary"]["median_s"]["step_s"]
                                  / modes["1"]["summary"]["median_s"]["step_s"])
        name = f"step_{Path(args.config).stem}_{engine}_{device_slug()}.json"
        out = Path(args.out) if args.out else RESULTS_DIR / name
        _plot_timeline(modes, out.with_name(out.stem + "_timeline.png"))
        write_result(payload, out)
    if dist.is_initialized():  # a vLLM engine's shutdown destroys it already
        dist.destroy_process_group()
    exit_process(0)


def _measure(args, mode: str, rank: int):
    """One mode in a fresh run directory: its config, timed steps and every rank's timeline."""
    run_dir = [tempfile.mkdtemp(prefix="vsdpo-step-") if rank == 0 else None]
    dist.broadcast_object_list(run_dir)  # every rank writes into the same fresh directory
    staleness, _, stream = mode.partition("+")
    cfg = load_config(args.config, [*args.set, f"run_dir='{run_dir[0]}'",
                                    f"rollout.max_staleness={staleness}",
                                    f"rollout.stream={str(bool(stream)).lower()}",
                                    f"train.steps={args.warmup + args.steps}"])
    trainer = Trainer(cfg)
    try:
        profile = f"{args.profile}/mode{mode}" if args.profile else None
        steps, spans = _run(trainer, args.warmup, args.steps, profile)
        timeline = [None] * dist.get_world_size()
        dist.all_gather_object(timeline, spans)
    finally:
        trainer.close()
        if rank == 0:  # the ranks wrote their checkpoints before the gather above
            shutil.rmtree(run_dir[0], ignore_errors=True)
    return cfg, steps, timeline


def _run(trainer: Trainer, warmup: int, timed: int, profile: str | None):
    """Warm-up steps, then timed steps (under the profiler when asked); returns the timed
    steps and this rank's spans `[stage, lane, start, end]`, seconds from the first one."""
    for _ in range(warmup):
        trainer.run_step()
    steps, spans, origin = [], [], time.perf_counter()
    with _profiler(profile, trainer.rank) if profile else contextlib.nullcontext():
        for i in range(timed):
            t0 = time.perf_counter()
            metrics = trainer.run_step()
            wall = time.perf_counter() - t0
            steps.append({"step_s": wall, "tokens": metrics["tokens"], "staleness":
                          metrics["staleness"], "reward": metrics["reward"],
                          "logp_mismatch": metrics["logp_mismatch"]}
                         | {k: metrics[k] for k in IMAGE_KEYS if k in metrics}
                         | {k: metrics[f"time/{k}"] for k in TIME_KEYS})
            spans += [[stage, lane, a - origin, b - origin, i]
                      for stage, lane, a, b in trainer.spans]
    return steps, spans


def _summary(steps: list[dict], samples: int) -> dict:
    """Medians over the timed steps; throughputs from the median times."""
    med = {k: statistics.median(s[k] for s in steps) for k in ("step_s", "tokens", *TIME_KEYS)}
    images = {f"{k}_per_sample": statistics.median(s[k] for s in steps) / samples
              for k in IMAGE_KEYS if k in steps[0]}  # a vision-language policy's
    return images | {
        "median_s": {k: med[k] for k in ("step_s", *TIME_KEYS)},
        "tokens_per_s": med["tokens"] / med["step_s"],            # trained completion tokens
        "renders_per_s": samples / med["render"],
        "samples_per_s": samples / med["step_s"],
    }


def _one_step_off(med: dict) -> float:
    """The overlapped step predicted from the synchronous one's stage medians, were the
    sampling free to run beside the rest (its own cores, or its own GPU): the longer of the
    sampling and the main thread's render → update, then the sync."""
    main = med["render"] + med["recompute"] + med["teacher"] + med["update"]
    return max(med["rollout"], main) + med["sync"]


def _plot_timeline(modes: dict, path: Path) -> None:
    """One panel per mode; a lane per rank and thread (main, engine; streamed: the renders
    and the teacher forwards, per group); the last timed steps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    stages = ["rollout", "sample", "render", "recompute", "teacher+update", "sync", "teacher"]
    colors = dict(zip(stages, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(len(modes), 1, figsize=(11, 1.2 + 1.1 * len(modes) * 2), squeeze=False)
    for ax, (name, mode) in zip(axes[:, 0], modes.items()):
        first = max(0, len(mode["steps"]) - PLOTTED_STEPS)
        lanes = []
        for rank, spans in enumerate(mode["timeline"]):
            kept = [s for s in spans if s[4] >= first]
            start = min(s[2] for s in kept)
            for lane in [lane for lane in LANES if any(s[1] == lane for s in kept)]:
                y = len(lanes)
                lanes.append(f"rank {rank} {lane}")
                for stage, _, a, b, _ in (s for s in kept if s[1] == lane):
                    stage = stage.split(" g")[0]  # a streamed group's "render g3": its kind
                    ax.broken_barh([(a - start, b - a)], (y - 0.4, 0.8), color=colors[stage],
                                   label=stage)
        ax.set_yticks(range(len(lanes)), lanes)
        ax.invert_yaxis()
        step_s = mode["summary"]["median_s"]["step_s"]
        ax.set_title(f"mode {name}: median step {step_s:.2f} s "
                     f"(the last {len(mode['steps']) - first} timed steps)")
        ax.set_xlabel("seconds")
    handles = {h.get_label(): h for ax in axes[:, 0] for h in ax.collections}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _profiler(out_dir: str, rank: int):
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    return torch.profiler.profile(
        activities=activities,
        on_trace_ready=torch.profiler.tensorboard_trace_handler(out_dir, worker_name=f"rank{rank}"))


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/tiny.toml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, repeatable (e.g. rollout.engine=vllm)")
    parser.add_argument("--modes", nargs="+", default=["0", "1", "0+stream"],
                        choices=["0", "1", "0+stream", "1+stream"],
                        help="measured in turn: rollout.max_staleness, +stream: rollout.stream")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first, per mode")
    parser.add_argument("--profile", metavar="DIR", help="write a torch.profiler trace per rank to DIR")
    parser.add_argument("--out", help="result JSON path (default: bench/results/step_*.json)")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    return args


if __name__ == "__main__":
    main()
