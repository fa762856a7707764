"""Faults a long run meets, on real chart workers: a worker, or the process of one chart,
SIGKILLed while a batch of charts is in flight. The batch completes with every chart properly
rendered (the hit chart retried on a fresh worker or process), nothing is left running, and
a chart that SIGKILLs itself every time is an error after one retry. Under bubblewrap and
under the rlimits-only fallback.

The kill is deterministic: each chart holds until the test sends it SIGUSR1 (bounded by the
renderer's timeout), so the chart that is killed is known to be in flight.
"""

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from chart_session import SyncChartRenderer
from processes import descendants, process_status
from vsdpo.render import chart
from vsdpo.render.chart import ChartConfig

# Blocks SIGUSR1 first, so one sent early stays pending; /proc shows it in SigBlk.
HELD = """import signal, time
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGUSR1}})
while signal.SIGUSR1 not in signal.sigpending():
    time.sleep(0.01)
import matplotlib.pyplot as plt
plt.plot([1, 3, 2])
plt.title("chart {i}")
"""
NORMAL = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('fine')\n"
USR1 = 1 << (signal.SIGUSR1 - 1)


@pytest.fixture(scope="module", params=["bwrap", "rlimits"])
def renderer(request):
    r = SyncChartRenderer(ChartConfig(workers=2, timeout_s=30, cpu_s=30,
                                      use_bwrap=request.param == "bwrap"))
    assert r.renderer.sandbox == request.param
    yield r
    r.close()


def held_charts(renderer) -> dict[int, int]:
    """Chart processes waiting for SIGUSR1 → their worker process (the one that forked them)."""
    procs = process_status()
    parents = {pid: int(f["PPid"]) for pid, f in procs.items()}
    tree = descendants({w.proc.pid for w in renderer.renderer._workers}, parents)
    return {pid: parents[pid] for pid in tree if pid in procs
            and int(procs[pid].get("SigBlk", "0"), 16) & USR1 and procs[pid]["State"][0] != "Z"}


def render_killing(renderer, codes: list[str], victim: str):
    """Render `codes`, SIGKILLing the first held chart's `victim` ("worker" or "chart") and
    releasing every other held chart. Returns (results, pid of the chart that was hit)."""
    async def go():
        batch = asyncio.gather(*(renderer.renderer.render(code) for code in codes))
        hit = None
        while not batch.done():
            for chart, worker in held_charts(renderer).items():
                if hit is None:
                    hit = chart
                    os.kill(worker if victim == "worker" else chart, signal.SIGKILL)
                elif chart != hit:
                    with contextlib.suppress(ProcessLookupError):  # released, now finished
                        os.kill(chart, signal.SIGUSR1)
            await asyncio.sleep(0.02)
        return batch.result(), hit
    return renderer.loop.run_until_complete(go())


def gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if process_status().get(pid, {"State": "Z"})["State"][0] == "Z":
            return True
        time.sleep(0.05)
    return False


def assert_proper_renders(results):
    for i, result in enumerate(results):
        assert result.ok, f"chart {i}: {result.error}"
        assert [e.text for e in result.elements if e.role == "title"] == [f"chart {i}"]
        assert result.image.startswith(b"\x89PNG")


@pytest.mark.parametrize("victim", ["worker", "chart"])
def test_a_process_killed_mid_chart_loses_no_chart(renderer, victim):
    workers = list(renderer.renderer._workers)
    results, hit = render_killing(renderer, [HELD.format(i=i) for i in range(4)], victim)
    assert hit is not None
    assert_proper_renders(results)
    assert gone(hit)  # not left behind, orphaned, by its killed worker
    replaced = [new is not old for new, old in zip(renderer.renderer._workers, workers)]
    assert sum(replaced) == (victim == "worker")
    assert renderer.render(NORMAL).ok


def test_a_chart_that_sigkills_itself_every_time_is_an_error_after_one_retry(renderer):
    result = renderer.render("import signal\nsignal.raise_signal(signal.SIGKILL)\n")
    assert not result.ok and "SIGKILL" in result.error and "again on the retry" in result.error
    assert renderer.render(NORMAL).ok


def test_auto_falls_back_to_rlimits_only_where_bubblewrap_cannot_run(tmp_path, monkeypatch):
    """A `bwrap` that refuses to run (a stand-in script first on PATH, as where user
    namespaces are off): the probe says why and the charts render under rlimits."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    r = SyncChartRenderer(ChartConfig(workers=1, use_bwrap="auto"))
    try:
        assert r.renderer.sandbox == "rlimits"
        assert r.render(NORMAL).ok
    finally:
        r.close()


def test_a_worker_slow_to_start_is_an_error_not_a_reason_to_drop_bubblewrap(monkeypatch):
    """Under load a worker may miss its start-up time; with bubblewrap able to run, the
    renderer says so instead of starting without it. Load cannot be made on cue, so a
    stand-in `_Worker.start` times out the bubblewrap workers (the probe is real)."""
    assert shutil.which("bwrap"), "bubblewrap is not installed (apt bubblewrap)"
    start = chart._Worker.start

    async def timing_out_under_bwrap(worker):
        if worker.argv[0] == shutil.which("bwrap"):
            raise RuntimeError("chart worker failed to start (TimeoutError())")
        await start(worker)
    monkeypatch.setattr(chart._Worker, "start", timing_out_under_bwrap)
    with pytest.raises(RuntimeError, match="chart worker failed to start"):
        SyncChartRenderer(ChartConfig(workers=1, use_bwrap="auto"))


def test_a_worker_that_cannot_restart_fails_its_charts_at_once_until_it_may_try_again(
        monkeypatch):
    """A starved machine: the dead worker's restart fails (a stand-in `_Worker.start`, as
    starvation cannot be made on cue). Its charts then fail at once, each without another
    start-up wait, until the back-off ends; then a restart is tried again, and works."""
    r = SyncChartRenderer(ChartConfig(workers=1, use_bwrap=False))
    start, starts = chart._Worker.start, []

    async def failing_start(worker):
        starts.append(worker)
        raise RuntimeError("chart worker failed to start (TimeoutError())")
    try:
        monkeypatch.setattr(chart._Worker, "start", failing_start)
        (worker,) = r.renderer._workers
        os.killpg(worker.proc.pid, signal.SIGKILL)
        r.loop.run_until_complete(worker.proc.wait())
        first, second = r.render(NORMAL), r.render(NORMAL)
        assert "could not restart it" in first.error and len(starts) == 1
        assert second.error.startswith("chart worker down") and len(starts) == 1
        monkeypatch.setattr(chart._Worker, "start", start)
        worker.down = (time.monotonic(), worker.down[1])  # the back-off is over
        assert r.render(NORMAL).ok and r.renderer._workers[0] is not worker
    finally:
        r.close()


def test_a_pool_killed_before_close_leaves_a_temp_dir_the_next_pool_removes(tmp_path,
                                                                             monkeypatch):
    """An rlimits-only pool keeps a temp dir named after its process; a killed process
    cannot remove it, so the next pool does, and keeps those of living processes."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = tmp_path / f"vsdpo-chart-{dead.pid}-abc"
    living = tmp_path / f"vsdpo-chart-{os.getppid()}-def"
    orphan.mkdir()
    living.mkdir()
    r = SyncChartRenderer(ChartConfig(workers=1, use_bwrap=False))
    try:
        assert not orphan.exists() and living.exists()
        (own,) = set(tmp_path.glob(f"vsdpo-chart-{os.getpid()}-*"))
        assert r.render(NORMAL).ok
    finally:
        r.close()
    assert not own.exists()
