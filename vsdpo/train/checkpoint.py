"""Checkpoints with `torch.distributed.checkpoint`: everything a run needs to continue as if
it had never stopped.

Layout: `<run_dir>/checkpoints/step_000040/` holds the sharded model, optimizer and teacher
(DCP files), one `rank<r>.pt` per rank (RNG states of torch, Python and NumPy, and the LR
schedule) and `meta.json` (step, data position). A checkpoint is written under a `.tmp`
name and renamed by rank 0 after every rank has finished, so a run killed mid-save leaves
the previous checkpoint as the latest complete one. A save that fails on any rank (disk
full, quota, I/O error) fails on every rank alike — each phase ends in an all-gather of the
ranks' errors instead of a barrier a healthy rank would wait in forever — and raises
`CheckpointError` naming the path, the failing ranks and their causes; the partial files are
removed. The exported model is separate: `<run_dir>/final/`, a transformers directory.

DCP reshards on load: a checkpoint resumes on another number of ranks or another mesh
(`parallel.replicate`) with the same weights, optimizer and teacher state, and the data
position is global (`data.py`). Only the per-rank RNG states cannot carry over: a rank the
saving run did not have keeps its own seeding, so such a run continues correctly but not
along the exact trajectory it would have taken on the old number of ranks.
"""

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import (get_model_state_dict,
                                                     get_optimizer_state_dict,
                                                     set_model_state_dict,
                                                     set_optimizer_state_dict)

from vsdpo.config import latest_checkpoint


class CheckpointError(RuntimeError):
    """A checkpoint could not be written; raised on every rank, the previous one is intact."""


def save_checkpoint(run_dir, step: int, position: int, policy, optimizer, scheduler,
                    teacher, model_path: str | None = None) -> Path:
    """Write `checkpoints/step_<step>/` collectively; returns its path. `model_path`, the model
    the run started from, goes into `meta.json` for `config.check_resume`."""
    final = Path(run_dir) / "checkpoints" / f"step_{step:06d}"
    tmp = final.with_name(final.name + ".tmp")
    rank = dist.get_rank()

    def write_shards():
        dcp.save(_sharded_state(policy, optimizer, teacher), checkpoint_id=str(tmp))
        torch.save({"rng": _rng_state(), "scheduler": scheduler.state_dict()},
                   tmp / f"rank{rank}.pt")

    def publish():
        (tmp / "meta.json").write_text(json.dumps({"step": step, "position": position,
                                                   "model": model_path}))
        tmp.rename(final)

    # leftovers of killed saves can never complete: free their space first
    _on_every_rank(final, tmp, lambda: rank == 0 and _remove(final.parent.glob("step_*.tmp")))
    _on_every_rank(final, tmp, write_shards)
    _on_every_rank(final, tmp, lambda: rank == 0 and publish())
    return final


def _on_every_rank(final: Path, tmp: Path, fn) -> None:
    """Run this rank's part of a save, then learn every rank's outcome (an all-gather, so a
    rank that failed never leaves the others waiting); raise `CheckpointError` on all ranks
    if any failed, once rank 0 has removed the partial checkpoint."""
    try:
        fn()
        failures = {}
    except CheckpointException as err:  # DCP's own agreement: a BaseException naming each rank
        failures = {rank: _line(e) for rank, (e, _) in err.failures.items()}
    except Exception as err:  # noqa: BLE001 — any cause, reported with its rank
        failures = {dist.get_rank(): _line(err)}
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, failures)
    failed = dict(sorted(item for f in gathered for item in f.items()))
    if not failed:
        return
    if dist.get_rank() == 0:
        _remove([tmp])
    latest = latest_checkpoint(final.parent.parent)
    causes = "; ".join(f"rank {rank}: {line}" for rank, line in failed.items())
    raise CheckpointError(
        f"could not write checkpoint {final} ({causes}). The partial files in {tmp} were "
        f"removed; the latest complete checkpoint is {latest or 'none'}, and rerunning the "
        "same command resumes from it once the cause is fixed")


def _line(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _remove(paths) -> None:
    for p in paths:
        shutil.rmtree(p, ignore_errors=True)


def load_checkpoint(path: Path, policy, optimizer, scheduler, teacher) -> dict:
    """Restore in place; returns the meta record (`step`, `position`)."""
    state = _sharded_state(policy, optimizer, teacher)
    dcp.load(state, checkpoint_id=str(path))
    set_model_state_dict(policy, state["model"])
    set_optimizer_state_dict(policy, optimizer, state["optim"])
    if teacher.copy is not None:
        set_model_state_dict(teacher.copy, state["teacher"])
    local = path / f"rank{dist.get_rank()}.pt"
    if local.is_file():
        saved = torch.load(local, weights_only=False)
        _set_rng_state(saved["rng"])
    else:  # a rank the saving run did not have keeps its own seeding; the schedule is shared
        saved = torch.load(path / "rank0.pt", weights_only=False)
    scheduler.load_state_dict(saved["scheduler"])
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
