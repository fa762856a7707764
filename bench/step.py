"""Step profile: the time of each stage of a training step, tokens/s and renders/s.

Runs `--warmup` untimed steps and then `--steps` timed ones of a config with the real
trainer (rollout engine, render pool, fused loss, FSDP2), in a fresh run directory. Each
stage time is the slowest rank's; the JSON keeps every step and the medians.

    torchrun --nproc_per_node=2 bench/step.py --config configs/tiny.toml --set rollout.backend=vllm
    torchrun --nproc_per_node=2 bench/step.py --config configs/tiny-vl.toml   # + image tokens
    torchrun --nproc_per_node=8 bench/step.py --config configs/qwen2.5-coder-7b-1node.toml \
        --steps 5 --profile runs/trace     # + a torch.profiler trace per rank (Perfetto/TensorBoard)

Writes bench/results/step_<config>_<backend>_<device>.json (override with --out).
"""

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from common import RESULTS_DIR, device_slug, run_metadata, write_result
from vsdpo.config import load_config
from vsdpo.train.metrics import TIME_KEYS
from vsdpo.train.model import exit_process, init_distributed
from vsdpo.train.trainer import Trainer

IMAGE_KEYS = ("image_tokens", "teacher_image_tokens")


def main() -> None:
    args = _parse_args()
    rank, world, _ = init_distributed()
    run_dir = [tempfile.mkdtemp(prefix="vsdpo-step-") if rank == 0 else None]
    dist.broadcast_object_list(run_dir)  # every rank writes into the same fresh directory
    cfg = load_config(args.config, [*args.set, f"run_dir='{run_dir[0]}'"])
    trainer = Trainer(cfg)
    try:
        steps = _run(trainer, args)
    finally:
        trainer.close()
    if rank == 0:
        samples = world * cfg.rollout.prompts_per_step * cfg.rollout.group_size
        payload = run_metadata() | {
            "benchmark": "step", "config": args.config, "overrides": args.set,
            "backend": cfg.rollout.backend, "world_size": world, "samples_per_step": samples,
            "warmup_steps": args.warmup, "summary": _summary(steps, samples), "steps": steps}
        name = f"step_{Path(args.config).stem}_{cfg.rollout.backend}_{device_slug()}.json"
        write_result(payload, Path(args.out) if args.out else RESULTS_DIR / name)
    if dist.is_initialized():  # a vLLM engine's shutdown destroys it already
        dist.destroy_process_group()
    exit_process(0)


def _run(trainer: Trainer, args) -> list[dict]:
    """Warm-up steps, then timed steps (under the profiler when asked)."""
    for _ in range(args.warmup):
        trainer.run_step()
    steps = []
    with _profiler(args.profile, trainer.rank) if args.profile else contextlib.nullcontext():
        for _ in range(args.steps):
            t0 = time.perf_counter()
            metrics = trainer.run_step()
            wall = time.perf_counter() - t0
            steps.append({"step_s": wall, "tokens": metrics["tokens"],
                          "reward": metrics["reward"], "logp_mismatch": metrics["logp_mismatch"]}
                         | {k: metrics[k] for k in IMAGE_KEYS if k in metrics}
                         | {k: metrics[f"time/{k}"] for k in TIME_KEYS})
    return steps


def _summary(steps: list[dict], samples: int) -> dict:
    """Medians over the timed steps; throughputs from the median times."""
    med = {k: statistics.median(s[k] for s in steps) for k in ("step_s", "tokens", *TIME_KEYS)}
    images = {f"{k}_per_sample": statistics.median(s[k] for s in steps) / samples
              for k in IMAGE_KEYS if k in steps[0]}  # a vision-language policy's
    return images | {
        "median_s": {k: med[k] for k in ("step_s", *TIME_KEYS)},
        "tokens_per_s": med["tokens"] / med["step_s"],            # trained completion tokens
        "generated_tokens_per_s": med["tokens"] / med["rollout"],  # during the rollout stage
        "renders_per_s": samples / med["render"],
        "samples_per_s": samples / med["step_s"],
    }


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
                        help="config override, repeatable (e.g. rollout.backend=vllm)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--profile", metavar="DIR", help="write a torch.profiler trace per rank to DIR")
    parser.add_argument("--out", help="result JSON path (default: bench/results/step_*.json)")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    return args


if __name__ == "__main__":
    main()
