"""What a long multi-rank run meets besides bugs: a scheduler's SIGTERM, and a peer that died.

`StopRequest` turns a signal into a flag that the ranks agree on at a step boundary.
`naming_dead_ranks` turns gloo's anonymous "connection closed by peer" (or a timeout) into
an error that names the rank that has gone: `init_distributed` records each rank's host and
pid in the rendezvous store (`register_rank`).
"""

import contextlib
import os
import signal
import socket
import threading
import time
from datetime import timedelta

import torch
import torch.distributed as dist

from vsdpo.config import ConfigError


def register_rank(rank: int) -> None:
    _store().set(f"vsdpo/pid/{rank}", f"{_host()} {os.getpid()}")


class StopRequest:
    """While active, `signum` sets a flag instead of killing the process (every delivery: a
    scheduler and torchrun may both send it). `agreed` all-reduces the flag at a step
    boundary, so every rank stops after the same step even if one alone was signalled."""

    def __init__(self, signum: int):
        self.signum, self.requested, self.previous = signum, False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # else signals can't be set
            self.previous = signal.signal(self.signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(self.signum, self.previous)

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def agreed(self, device: torch.device) -> bool:
        flag = torch.tensor([float(self.requested)], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag)


class RankFailure(RuntimeError):
    """A collective failed because another rank has exited (named) or stalled."""


@contextlib.contextmanager
def naming_dead_ranks():
    """Re-raise an error of a multi-rank run as `RankFailure` when a peer has exited (named)
    or a collective timed out: a dead peer surfaces as an anonymous 'connection closed by
    peer [ip]:port' (gloo) or as a timeout. Peers on this host are checked by pid; when the
    store itself is gone, its host (rank 0, unless torchrun's agent holds it) is named."""
    try:
        yield
    except Exception as err:
        if (isinstance(err, (RankFailure, ConfigError)) or not dist.is_initialized()
                or dist.get_world_size() == 1):  # a config mistake is every rank's own
            raise
        dead = _dead_ranks()
        if not dead:  # a peer whose sockets just closed may still be exiting
            time.sleep(0.5)
            dead = _dead_ranks()
        if dead:
            raise RankFailure(f"{'; '.join(dead)}; rank {dist.get_rank()} stops too. "
                              f"Seen here: {err}") from err
        from_backend = type(err) is RuntimeError or isinstance(err, dist.DistError)  # gloo, NCCL
        if from_backend and ("timed out" in str(err).lower() or "timeout" in str(err).lower()):
            raise RankFailure(f"no rank has exited, so one is stuck (or slower than "
                              f"train.collective_timeout_s allows). Seen here: {err}") from err
        raise


def _dead_ranks() -> list[str]:
    host, dead = _host(), []
    for rank in range(dist.get_world_size()):
        if rank == dist.get_rank():
            continue
        try:
            store = _store()
            store.set_timeout(timedelta(seconds=10))
            peer_host, pid = store.get(f"vsdpo/pid/{rank}").decode().split()
        except Exception:  # noqa: BLE001 — the store died with the process that hosted it
            return ["the rendezvous store is unreachable: rank 0 (its host outside torchrun) "
                    "has most likely exited"]
        if peer_host == host and not _running(int(pid)):
            dead.append(f"rank {rank} (pid {pid} on {socket.gethostname()}) has exited")
    return dead


def _host() -> str:
    """This machine: its name and boot id (containers on two nodes may share a name)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f"{socket.gethostname()}/{f.read().strip()}"
    except OSError:
        return socket.gethostname()


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited child its launcher has not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _store():
    return dist.distributed_c10d._get_default_store()
