"""The process group: joining it (alone or under torchrun), refusing a launch that could not
restart cleanly, and leaving it without gloo's exit crash."""

import atexit
import ctypes
import os
import socket
import sys
from datetime import timedelta
from typing import NoReturn

import torch
import torch.distributed as dist

from vsdpo.train.faults import register_rank


def init_distributed(timeout_s: float | None = None) -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes (or a group of one): on CUDA, NCCL for CUDA
    tensors and gloo for CPU ones (object collectives, DCP's planning, metric sums); else gloo.
    On CUDA the group is bound to this rank's GPU (`device_id`: NCCL's communicator is made
    at once, for the right device), and fp32 matmuls may use TF32 (`high` precision: fp32
    master weights and fp32 losses run on tensor cores; bf16 compute is unaffected).

    A collective that waits longer than `timeout_s` (torch's default when None) fails instead
    of hanging: gloo raises in the waiting rank, NCCL's watchdog aborts it. A group that
    already exists keeps its own timeout. Each rank leaves its host and pid in the rendezvous
    store, so that `naming_dead_ranks` can tell which peer has gone. A run alone (no torchrun)
    hosts its store on a free port: a fixed one collides with another such run on the machine.
    """
    cuda = torch.cuda.is_available()
    device = torch.device("cpu")
    if cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
        torch.set_float32_matmul_precision("high")
    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(free_port()))
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        os.environ.setdefault("LOCAL_RANK", "0")
        options = {} if timeout_s is None else {"timeout": timedelta(seconds=timeout_s)}
        if cuda:
            options["device_id"] = device
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", **options)
    rank = dist.get_rank()
    register_rank(rank)
    return rank, dist.get_world_size(), device


def exit_process(status: int = 0) -> NoReturn:
    """End a process that joined a gloo group: run the `atexit` handlers, flush, `os._exit`.

    Why not a normal exit: `destroy_process_group` does not stop gloo's worker threads
    (DTensor's sharding cache keeps the device mesh, and through it the group, alive), and
    one may still be freeing the tensors of the last collective, which takes the GIL. Once
    CPython 3.11 has begun to finalize, a thread asking for the GIL is ended inside that C++
    destructor: `terminate called without an active exception`, SIGABRT (pytorch#190489).
    Skipping finalization leaves nothing half-done: every file and engine is closed by now.
    C's `exit` (not `os._exit`) still runs the C++ static destructors — vLLM's CPU backend
    unlinks its shared-memory segments there — with the GIL held, so no thread runs Python.
    """
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    ctypes.PyDLL(None).exit(status)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
