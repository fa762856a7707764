"""Checkpoints with `torch.distributed.checkpoint`: everything a run needs to continue as if
it had never stopped.

Layout: `<run_dir>/checkpoints/step_000040/` holds the sharded model, optimizer and teacher
(DCP files), one `rank<r>.pt` per rank (RNG states of torch, Python and NumPy, and the LR
schedule) and `meta.json` (step, data position). A checkpoint is written under a `.tmp`
name and renamed by rank 0 after every rank has finished, so a run killed mid-save leaves
the previous checkpoint as the latest complete one. The exported model is separate:
`<run_dir>/final/`, a transformers directory.
"""

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (get_model_state_dict,
                                                     get_optimizer_state_dict,
                                                     set_model_state_dict,
                                                     set_optimizer_state_dict)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = sorted(p for p in (Path(run_dir) / "checkpoints").glob("step_*")
                   if p.is_dir() and not p.name.endswith(".tmp"))
    return found[-1] if found else None


def save_checkpoint(run_dir, step: int, position: int, policy, optimizer, scheduler, teacher):
    final = Path(run_dir) / "checkpoints" / f"step_{step:06d}"
    tmp = final.with_name(final.name + ".tmp")
    if dist.get_rank() == 0 and tmp.exists():
        shutil.rmtree(tmp)
    dist.barrier()
    dcp.save(_sharded_state(policy, optimizer, teacher), checkpoint_id=str(tmp))
    torch.save({"rng": _rng_state(), "scheduler": scheduler.state_dict()},
               tmp / f"rank{dist.get_rank()}.pt")
    dist.barrier()
    if dist.get_rank() == 0:
        (tmp / "meta.json").write_text(json.dumps({"step": step, "position": position}))
        tmp.rename(final)
    dist.barrier()


def load_checkpoint(path: Path, policy, optimizer, scheduler, teacher) -> dict:
    """Restore in place; returns the meta record (`step`, `position`)."""
    state = _sharded_state(policy, optimizer, teacher)
    dcp.load(state, checkpoint_id=str(path))
    set_model_state_dict(policy, state["model"])
    set_optimizer_state_dict(policy, optimizer, state["optim"])
    if teacher.copy is not None:
        set_model_state_dict(teacher.copy, state["teacher"])
    local = torch.load(path / f"rank{dist.get_rank()}.pt", weights_only=False)
    scheduler.load_state_dict(local["scheduler"])
    _set_rng_state(local["rng"])
    return json.loads((path / "meta.json").read_text())


def _sharded_state(policy, optimizer, teacher) -> dict:
    state = {"model": get_model_state_dict(policy),
             "optim": get_optimizer_state_dict(policy, optimizer)}
    if teacher.copy is not None:
        state["teacher"] = get_model_state_dict(teacher.copy)
    return state


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"])
