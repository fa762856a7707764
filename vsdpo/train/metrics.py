"""Per-step metrics: reduced over ranks, one JSON line per step in `<run_dir>/metrics.jsonl`,
a progress bar on rank 0, and TensorBoard scalars when `tensorboard` is installed.

A skipped update reads `"skipped": 1` beside the offending `loss` / `grad_norm` (`NaN`,
`Infinity`: Python's json reads them back). On resume the JSONL is cut back to the
checkpoint's step, so the file of a killed-and-resumed run reads exactly like that of an
uninterrupted one (timings aside).
"""

import json
import math
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from vsdpo.render.types import DEFECT_KINDS

TIME_KEYS = ("rollout", "render", "recompute", "teacher", "update", "sync")


def reduce_over_ranks(values: dict[str, float], op=dist.ReduceOp.SUM) -> dict[str, float]:
    """Reduce host scalars over ranks, on the CPU: the default group has a CPU backend on every
    device (`init_distributed`: gloo, with NCCL beside it for CUDA tensors)."""
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t, op=op)
    return dict(zip(keys, t.tolist()))


def step_metrics(scored, sums: dict, times: dict, lr: float, staleness: int) -> dict:
    """Rates over all samples of all ranks; times are the slowest rank's. `staleness`: the
    most optimizer steps any sample's weights were behind the trained ones (every rank's
    batch is sampled in the same step, so every rank has the same)."""
    counts = {"samples": len(scored), "reward": sum(s.reward for s in scored),
              "ok": sum(s.ok for s in scored), "defective": sum(bool(s.defect_kinds) for s in scored)}
    counts |= {f"kind/{k}": sum(k in s.defect_kinds for s in scored) for k in DEFECT_KINDS}
    itemized = [s for s in scored if s.fidelity is not None]
    counts |= {"itemized": len(itemized), "fidelity": sum(s.fidelity for s in itemized),
               "clean_complete": sum(s.ok and not s.defect_kinds and s.fidelity == 1.0
                                     for s in itemized)}
    c = reduce_over_ranks(counts | {k: v for k, v in sums.items() if not k.endswith("_s")})
    t = reduce_over_ranks(times, op=dist.ReduceOp.MAX)
    n, tokens = c["samples"], max(c["tokens"], 1.0)
    out = {"reward": c["reward"] / n, "exec_rate": c["ok"] / n, "defect_rate": c["defective"] / n}
    out |= {f"defect_rate/{k}": c[f"kind/{k}"] / n for k in DEFECT_KINDS}
    if c["itemized"]:  # synthetic tasks: did the render hold what the prompt asked for?
        out |= {"content_fidelity": c["fidelity"] / c["itemized"],
                "clean_complete": c["clean_complete"] / c["itemized"]}
    blamed, unblamed = c["blamed_tokens"], c["tokens"] - c["blamed_tokens"]
    out |= {"loss": c["loss"] / tokens, "divergence": c["divergence"] / tokens,
            "clip_fraction": c["clipped"] / tokens,
            "credit_blamed": c["blamed_weight"] / blamed if blamed else 0.0,
            "blamed_token_frac": blamed / tokens,
            # each term's gradient w.r.t. the final hidden states, of the mean over ranks' losses
            "grad_norm_kl": math.sqrt(c["grad_sq_kl"]) / dist.get_world_size(),
            "grad_norm_pg": math.sqrt(c["grad_sq_pg"]) / dist.get_world_size(),
            "logp_mismatch": c["mismatch"] / tokens,  # mean |log p_trainer − log p_engine|
            "grad_norm": sums["grad_norm"], "lr": lr, "tokens": int(c["tokens"]),
            "skipped": int(sums["skipped"]),  # 1: loss or grad_norm not finite, no update
            "staleness": staleness}
    if blamed:  # the divergence per token on blamed and unblamed tokens, where there are some
        out["divergence_blamed"] = c["divergence_blamed"] / blamed
    if unblamed:
        out["divergence_unblamed"] = (c["divergence"] - c["divergence_blamed"]) / unblamed
    if c["image_tokens"]:  # rows that held images: their tokens in the student / teacher rows
        out |= {"image_tokens": int(c["image_tokens"]),
                "teacher_image_tokens": int(c["teacher_image_tokens"])}
    out |= {f"time/{k}": t[k] for k in TIME_KEYS}
    out["tokens_per_s"] = c["tokens"] / max(sum(t.values()), 1e-9)
    return out


class MetricLogger:
    def __init__(self, run_dir: str | Path, total_steps: int, start_step: int, rank: int):
        self.rank, self.tb = rank, None
        self.path = Path(run_dir) / "metrics.jsonl"
        if rank != 0:
            return
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line and json.loads(line)["step"] <= start_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        self.bar = tqdm(total=total_steps, initial=start_step, desc="train", dynamic_ncols=True)
        self.tb = _tensorboard(Path(run_dir) / "tb")

    def log(self, step: int, metrics: dict) -> None:
        if self.rank != 0:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        self.bar.update(1)
        self.bar.set_postfix(reward=f"{metrics['reward']:.3f}",
                             defects=f"{metrics['defect_rate']:.2f}", loss=f"{metrics['loss']:.3f}")
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.rank == 0:
            self.bar.close()
            if self.tb is not None:
                self.tb.close()


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(path))
