"""Sandboxed matplotlib rendering with tracing: `ChartRenderer`, the parent side.

    renderer = ChartRenderer(ChartConfig())
    await renderer.start()
    result = await renderer.render(code)   # RenderResult; never raises
    await renderer.close()

`workers` warm worker processes (`vsdpo.render.chart_worker`), each inside bubblewrap when
available (`chart_sandbox`), each forking one confined child per chart. A chart costs a fork
plus its own plotting, not an interpreter start. Replies are JSON (never pickle: the child
is untrusted) and are validated into `Element`s and `Defect`s here. A worker that stops
answering is killed and replaced; its chart comes back as `ok=False`. A worker or chart
process that is killed (the OOM killer, an operator) costs a retry, not the chart.
"""

import asyncio
import base64
import json
import logging
import os
import shutil
import signal
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from vsdpo.render import chart_sandbox
from vsdpo.render.types import ChartLog, Defect, Element, RenderResult

log = logging.getLogger(__name__)
_STARTUP_S = 60.0   # a cold worker imports matplotlib and draws a warm-up figure
_PROBE_S = 30.0     # a bare python in bubblewrap (`ChartRenderer._bwrap_fails`)
_GRACE_S = 5.0      # the worker enforces `timeout_s`; this is slack for its own replies
_RESTART_BACKOFF_S = 60.0  # after a failed restart, a worker's charts fail at once this long
# Runs the worker with `vsdpo` and `vsdpo.render` as bare packages: `vsdpo.render`'s __init__
# pulls in the browser pool, which a chart worker must not load.
_BOOTSTRAP = """import sys, types, runpy
for name in ("vsdpo", "vsdpo.render"):
    module = types.ModuleType(name)
    module.__path__ = [sys.argv[2] + "/" + name.replace(".", "/")]
    sys.modules[name] = module
runpy.run_module("vsdpo.render.chart_worker", run_name="__main__")
"""


@dataclass
class ChartConfig:
    """Limits per chart and the worker pool size. `use_bwrap`: "auto" | True | False."""

    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    timeout_s: float = 10.0
    memory_mb: int = 1024
    cpu_s: int = 10
    file_size_mb: int = 16
    max_procs: int = 32
    dpi: int = 100
    use_bwrap: str | bool = "auto"

    def __post_init__(self):
        for name in ("workers", "timeout_s", "memory_mb", "cpu_s", "file_size_mb", "max_procs",
                     "dpi"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ChartConfig.{name} must be positive, got {getattr(self, name)}")
        if self.use_bwrap not in ("auto", True, False):
            raise ValueError(f"ChartConfig.use_bwrap must be 'auto', True or False, "
                             f"got {self.use_bwrap!r}")


def _parse(reply: dict) -> RenderResult:
    """A worker reply → RenderResult; anything malformed becomes `ok=False`."""
    try:
        if not reply["ok"]:
            return RenderResult(ok=False, error=str(reply["error"]))
        elements = [Element(**{**e, "bbox": tuple(e["bbox"]),
                               "span": tuple(e["span"]) if e["span"] else None,
                               **{k: tuple(e[k]) for k in ("color", "background") if e[k]}})
                    for e in reply["elements"]]
        defects = [Defect(**{**d, "bbox": tuple(d["bbox"]), "spans": [tuple(s) for s in d["spans"]]})
                   for d in reply["defects"]]
        return RenderResult(ok=True, image=base64.b64decode(reply["png"]), width=int(reply["width"]),
                            height=int(reply["height"]), elements=elements, defects=defects,
                            chart_log=_parse_log(reply["chart_log"]))
    except (KeyError, TypeError, ValueError) as exc:
        return RenderResult(ok=False, error=f"malformed chart worker reply: {exc!r}")


def _parse_log(raw: dict) -> ChartLog:
    return ChartLog(texts=[str(t) for t in raw["texts"]], calls=[str(c) for c in raw["calls"]],
                    colors=[(str(g), str(c)) for g, c in raw["colors"]],
                    grid=[tuple(int(v) for v in g) for g in raw["grid"]])


class _Worker:
    """One warm worker process and its length-prefixed JSON pipe."""

    def __init__(self, argv: list[str], env: dict, cwd: str):
        self.argv, self.env, self.cwd = argv, env, cwd
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr_tail = b""
        self.down: tuple[float, str] | None = None  # (until, why): its restart failed

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env, cwd=self.cwd,
            start_new_session=True, limit=1 << 20)
        self._drain = asyncio.create_task(self._drain_stderr())
        try:
            ready = await asyncio.wait_for(self._read(), _STARTUP_S)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.kill()
            raise RuntimeError(f"chart worker failed to start ({exc!r}): "
                               f"{self.stderr_tail.decode(errors='replace')[-2000:]}") from exc
        if not ready.get("ready"):
            await self.kill()
            raise RuntimeError(f"chart worker sent {ready!r} instead of ready")

    async def _drain_stderr(self) -> None:
        while chunk := await self.proc.stderr.read(4096):
            self.stderr_tail = (self.stderr_tail + chunk)[-8192:]

    async def _read(self) -> dict:
        header = await self.proc.stdout.readexactly(4)
        return json.loads(await self.proc.stdout.readexactly(struct.unpack(">I", header)[0]))

    async def run(self, code: str, timeout_s: float) -> dict:
        data = json.dumps({"code": code}).encode()
        self.proc.stdin.write(struct.pack(">I", len(data)) + data)
        await self.proc.stdin.drain()
        return await asyncio.wait_for(self._read(), timeout_s + _GRACE_S)

    async def kill(self, grace_s: float = 0.0) -> None:
        """Stop the worker: close its input and wait `grace_s`, then kill its process group."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), grace_s)
        except asyncio.TimeoutError:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await self.proc.wait()
        self._drain.cancel()


def _remove_orphaned_tmp() -> None:
    """Remove the temp dirs that rlimits-only pools left when their process was killed
    before `close`: each is named after its process, which no longer exists."""
    for path in Path(tempfile.gettempdir()).glob("vsdpo-chart-*-*"):
        pid = path.name.split("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _bwrap_prefix(mpl_cache: str) -> list[str]:
    return chart_sandbox.bwrap_command(shutil.which("bwrap"), mpl_cache, tmp_mb=256)


class ChartRenderer:
    """A pool of warm, sandboxed matplotlib workers. `sandbox` says which layer is active."""

    def __init__(self, config: ChartConfig):
        self.config = config
        self.sandbox: str | None = None   # "bwrap" or "rlimits" once started
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._workers: list[_Worker] = []
        self._tmp: str | None = None

    def _worker_argv(self, use_bwrap: bool) -> tuple[list[str], dict, str]:
        import matplotlib

        cfg, cache = self.config, matplotlib.get_cachedir()
        settings = {"timeout_s": cfg.timeout_s, "cpu_s": cfg.cpu_s, "memory_mb": cfg.memory_mb,
                    "file_size_mb": cfg.file_size_mb, "max_procs": cfg.max_procs, "dpi": cfg.dpi,
                    "readable": chart_sandbox.readable_paths(cache), "own_pid_ns": use_bwrap,
                    "drop_to_nobody": use_bwrap and os.geteuid() == 0,
                    "tmp": "/tmp" if use_bwrap else self._tmp}
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
               "MPLCONFIGDIR": cache, "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPATH": chart_sandbox.package_root(),
               "HOME": "/tmp" if use_bwrap else self._tmp,
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        argv = [sys.executable, "-c", _BOOTSTRAP, json.dumps(settings), chart_sandbox.package_root()]
        if use_bwrap:
            argv = _bwrap_prefix(cache) + argv
        return argv, env, "/" if use_bwrap else self._tmp

    async def _spawn(self, use_bwrap: bool) -> _Worker:
        if not use_bwrap and self._tmp is None:  # bwrap workers use their private /tmp
            _remove_orphaned_tmp()
            self._tmp = tempfile.mkdtemp(prefix=f"vsdpo-chart-{os.getpid()}-")
        worker = _Worker(*self._worker_argv(use_bwrap))
        await worker.start()
        return worker

    async def start(self) -> None:
        """Start the workers. With use_bwrap="auto", the rlimits-only sandbox is used where
        bubblewrap cannot run here (a quick probe says why); once it can, a worker that fails
        to start is an error, never a reason to drop bubblewrap (a worker slow to start under
        load would otherwise lose its sandbox)."""
        import matplotlib.font_manager  # noqa: F401 - builds the font cache workers share

        want = self.config.use_bwrap
        if want is True and shutil.which("bwrap") is None:
            raise RuntimeError("ChartConfig.use_bwrap=True but no `bwrap` on PATH: install "
                               "bubblewrap or set use_bwrap='auto'")
        use_bwrap = want is True or (want == "auto" and shutil.which("bwrap") is not None)
        if use_bwrap and want == "auto" and (why := await self._bwrap_fails()):
            log.warning("bubblewrap cannot run here, using the rlimits-only chart sandbox: %s",
                        why)
            use_bwrap = False
        self.sandbox = "bwrap" if use_bwrap else "rlimits"
        workers = await asyncio.gather(*(self._spawn(use_bwrap)
                                         for _ in range(self.config.workers)))
        for worker in workers:
            self._workers.append(worker)
            self._idle.put_nowait(worker)

    async def _bwrap_fails(self) -> str | None:
        """Why bubblewrap cannot run a worker here (no user namespaces, a bind it refuses),
        or None: `python -c pass` in the workers' sandbox."""
        import matplotlib

        _, env, cwd = self._worker_argv(use_bwrap=True)
        proc = await asyncio.create_subprocess_exec(
            *_bwrap_prefix(matplotlib.get_cachedir()), sys.executable, "-c", "pass", env=env,
            cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), _PROBE_S)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return f"a bare python in bubblewrap did not exit within {_PROBE_S:.0f}s"
        return None if proc.returncode == 0 else err.decode(errors="replace")[-2000:] or (
            f"exit status {proc.returncode}")

    async def render(self, code: str) -> RenderResult:
        """Render one chart program. Never raises (except for a renderer that is not started).

        A chart is retried once when its process was killed from outside: the worker died
        (it is replaced, the retry runs on the fresh one) or the forked chart process got
        SIGKILL. A chart that kills or exhausts its process every time comes back as an
        error after that one retry. A worker that stops answering (the chart's fault: the
        worker enforces `timeout_s` itself) is replaced, no retry.
        """
        if self.sandbox is None:
            raise RuntimeError("ChartRenderer.render called before `await renderer.start()`")
        worker = await self._idle.get()
        try:
            if worker.down and time.monotonic() < worker.down[0]:
                return RenderResult(ok=False, error=f"chart worker down: {worker.down[1]}")
            for _ in range(2):
                try:
                    reply = await worker.run(code, self.config.timeout_s)
                except asyncio.TimeoutError:
                    worker = await self._replace(worker)
                    return RenderResult(ok=False, error="chart worker stopped answering; restarted")
                except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
                    worker = await self._replace(worker)
                    error = f"chart worker died ({exc!r})"
                    if worker.down:
                        return RenderResult(ok=False, error=f"{error}; {worker.down[1]}")
                    continue
                if not (isinstance(reply, dict) and reply.get("killed") is True):
                    return _parse(reply)
                error = str(reply.get("error"))
            return RenderResult(ok=False, error=f"{error}; again on the retry")
        finally:
            self._idle.put_nowait(worker)

    async def _replace(self, worker: _Worker) -> _Worker:
        """A fresh worker in place of a failed one. If that fails too, the dead one stays and
        is marked down: its charts fail at once for `_RESTART_BACKOFF_S`, then the next one
        tries a restart, so a starved machine loses one start-up wait per worker and minute,
        not one per chart."""
        await worker.kill()
        fresh = _Worker(worker.argv, worker.env, worker.cwd)
        try:
            await fresh.start()
        except RuntimeError as exc:
            log.error("could not restart a chart worker: %s", exc)
            why = f"could not restart it ({str(exc)[:300]})"
            worker.down = (time.monotonic() + _RESTART_BACKOFF_S, why)
            return worker
        self._workers[self._workers.index(worker)] = fresh
        return fresh

    async def close(self) -> None:
        """Stop every worker and remove the temp dir."""
        await asyncio.gather(*(worker.kill(grace_s=2.0) for worker in self._workers))
        self._workers.clear()
        self._idle = asyncio.Queue()
        self.sandbox = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    async def __aenter__(self) -> "ChartRenderer":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
