"""Worker side of `test_faults.py`: the 2-rank fault scenarios (a rank exits, the store's
host exits, a rank hangs, a rank cannot write its checkpoint shard), run in a subprocess
that imports once and forks a fresh gloo pair per scenario; and the torchrun entry of a
handmade-scorer run.

    python faults_worker.py scenarios MODEL_DIR OUT_DIR TIMEOUT_S   # writes OUT_DIR/<name>.json
    torchrun --standalone --nproc_per_node=2 faults_worker.py train MODEL_DIR RUN_DIR [a.b=c ...]
"""

import json
import multiprocessing
import os
import resource
import signal
import socket
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from vsdpo.train.checkpoint import (CheckpointError, latest_checkpoint, load_checkpoint,
                                    save_checkpoint)
from vsdpo.train.distributed import init_distributed
from vsdpo.train.faults import naming_dead_ranks


def dead(rank: int, out: Path, timeout_s: float, model_dir: str) -> None:
    """Rank 1 exits between two collectives; rank 0's second one must fail, naming it."""
    dist.all_reduce(torch.ones(1))
    if rank == 1:
        os._exit(3)
    _second_collective(out / "dead.json")


def store_host_dead(rank: int, out: Path, timeout_s: float, model_dir: str) -> None:
    """Rank 0, which hosts the rendezvous store outside torchrun, exits; rank 1 must say so."""
    dist.all_reduce(torch.ones(1))
    if rank == 0:
        os._exit(3)
    _second_collective(out / "store_host_dead.json")


def stuck(rank: int, out: Path, timeout_s: float, model_dir: str) -> None:
    """Rank 1 stays alive but never joins; rank 0's collective must time out."""
    dist.all_reduce(torch.ones(1))
    if rank == 1:
        time.sleep(10 * timeout_s)  # killed by the parent once rank 0 has reported
    _second_collective(out / "stuck.json")


def checkpoint(rank: int, out: Path, timeout_s: float, model_dir: str) -> None:
    """Rank 1 alone may not write more than 4 KB per file (`RLIMIT_FSIZE`: the kernel
    answers 'File too large'), so its shard of the second checkpoint fails half-way."""
    from vsdpo.config import ModelConfig
    from vsdpo.model.parallelize import build_policy
    from vsdpo.train.teacher import Teacher
    policy = build_policy(ModelConfig(path=model_dir), torch.device("cpu"))
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    teacher = Teacher("live", 0.0, policy, None)
    run_dir = out / "run"
    save_checkpoint(run_dir, 1, 0, policy, optimizer, scheduler, teacher)
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    if rank == 1:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, limits[1]))
    t0 = time.monotonic()
    try:
        save_checkpoint(run_dir, 2, 0, policy, optimizer, scheduler, teacher)
        error = None
    except CheckpointError as err:
        error = str(err)
    seconds = time.monotonic() - t0
    resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    latest = latest_checkpoint(run_dir)
    meta = load_checkpoint(latest, policy, optimizer, scheduler, teacher)  # still loadable
    left = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    dist.barrier()  # rank 0 has removed the partial files by now
    _report(out / f"checkpoint_rank{rank}.json", error=error, seconds=seconds, latest=str(latest),
            step=meta["step"], left=left)


def _second_collective(path: Path) -> None:
    t0 = time.monotonic()
    try:
        with naming_dead_ranks():
            dist.all_reduce(torch.ones(1))
        error = None
    except Exception as err:  # noqa: BLE001 — reported to the test
        error = f"{type(err).__name__}: {err}"
    _report(path, error=error, seconds=time.monotonic() - t0)


def _report(path: Path, **fields) -> None:
    path.write_text(json.dumps(fields))
    os._exit(0)  # no teardown collectives with a peer that is gone


def _rank(scenario, rank, port, out, timeout_s, model_dir) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE="2")
    torch.set_num_threads(1)
    init_distributed(timeout_s)
    scenario(rank, out, timeout_s, model_dir)


def run_scenarios(model_dir: str, out: Path, timeout_s: float) -> None:
    fork = multiprocessing.get_context("fork")
    for scenario in (dead, store_host_dead, stuck, checkpoint):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        procs = [fork.Process(target=_rank, args=(scenario, r, port, out, timeout_s, model_dir))
                 for r in range(2)]
        for p in procs:
            p.start()
        for p in procs:  # a stuck rank 1 is killed once rank 0 has reported
            p.join(timeout=0 if scenario is stuck and p is procs[1] else 60)
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()


if __name__ == "__main__":
    if sys.argv[1] == "scenarios":
        run_scenarios(sys.argv[2], Path(sys.argv[3]), float(sys.argv[4]))
    else:  # train, under torchrun
        from handmade import train_worker
        env = os.environ
        train_worker(int(env["RANK"]), int(env["WORLD_SIZE"]), env["MASTER_PORT"], sys.argv[2],
                     sys.argv[3], sys.argv[4:])
