"""Soak the render pool: N mixed artifacts through ONE `RenderPool`, watching for leaks.

    nice -n 19 python scripts/soak_render.py 10000            # the issue-24 soak
    python scripts/soak_render.py 500 --every 50 --out runs/soak_render/500.json

The mix: synthetic pages, slides and charts (`generate_tasks`, each block's style drawn at
random, so clean and defective programs alike), the real fixtures when `VSDPO_FIXTURES` (default
`../shared/fixtures`) holds them, and every `HOSTILE_EVERY`-th artifact a hostile one (an
endless script or chart, huge allocations, a fork bomb, a page that never finishes loading,
popups, a worker that kills its parent...). Renders stream through the pool with a fixed number
in flight, so a hung artifact holds one slot, as in a long training run.

Every `--every` artifacts it samples the pool process and its whole process tree (the Playwright
driver, the browsers and their renderers, the chart workers and their chart processes): RSS
summed per part, the count of live processes and of open files, the tree's CPU time. The script
makes itself a child subreaper, so a process orphaned by the pool is still counted as its own.
After the pool is closed it counts what is left: descendant processes (there must be none),
open files of this process against before the pool, and what the pool left in its temp dir
(TMPDIR points to a fresh one for the run, so other programs' temp files do not count).

Summary (stdout, and the JSON with `bench/common.py`-style metadata): memory slope in MB per
1000 artifacts (least squares over the samples after the warm-up), leaked processes, and the
throughput and CPU cost per 1000-artifact window. SIGINT (Ctrl-C, `timeout -s INT`) stops
taking new artifacts and reports on those rendered. Exit status 1 when a process leaked, a file
descriptor leaked, or an artifact made `render` raise.
"""

import argparse
import asyncio
import contextlib
import ctypes
import importlib.metadata
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

from vsdpo.render import Artifact, RenderConfig, RenderPool
from vsdpo.render.browser import find_chromium
from vsdpo.tasks.programs import solve, styles
from vsdpo.tasks.synthetic import generate_tasks

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("VSDPO_FIXTURES") or REPO.parent / "shared" / "fixtures")
HOSTILE_EVERY = 50
WINDOW = 1000
MB = 2**20
_PR_SET_CHILD_SUBREAPER = 36

# What the render tests already treat as hostile (test_chart_hostile.py, test_html_pool.py),
# plus what a page can do to a reused browser over a long run.
HOSTILE = [
    ("chart", "infinite_loop", "while True:\n    pass"),
    ("web", "script_loop", "<p>hi</p><script>while (true) {}</script>"),
    ("chart", "memory_bomb", "x = bytearray(8 * 1024**3)"),
    ("web", "never_loads", "<iframe id=f></iframe><script>f.contentDocument.open(); "
                          "f.contentDocument.write('<p>never closed')</script>"),
    ("chart", "fork_bomb", "import os\nwhile True:\n    os.fork()"),
    ("slide", "js_memory", "<script>const a = []; for (;;) a.push('x'.repeat(1 << 20) + a.length)"
                           "</script>"),
    ("chart", "growing_memory", "x = []\nwhile True:\n    x.append(' ' * 10**7)"),
    ("web", "popups", "<script>for (let i = 0; i < 20; i++) window.open('about:blank')</script>"
                      "<p>p"),
    ("chart", "sleep", "import time\ntime.sleep(1000)"),
    ("web", "busy_workers", "<script>for (let i = 0; i < 8; i++) new Worker(URL.createObjectURL("
                            "new Blob(['for (;;) {}'])))</script><p>w"),
    ("chart", "kill_the_worker", "import os\nos.kill(os.getppid(), 9)"),
    ("web", "huge_dom", "<div>" + "<span>x</span>" * 100_000 + "</div>"),
    ("chart", "subprocess", "import subprocess\nsubprocess.run(['touch', 'escaped'])"),
    ("slide", "navigate_away", "<p>x</p><script>location.href = 'https://elsewhere.invalid/'"
                               "</script>"),
    ("chart", "ctypes_fork", "import ctypes\nctypes.CDLL(None).fork()"),
    ("web", "dialogs", "<script>alert('a'); confirm('b'); prompt('c')</script><p>d"),
    ("chart", "huge_file", "open('big', 'wb').write(b'x' * (64 << 20))"),
    ("web", "huge_allocation", "<script>new ArrayBuffer(2 ** 40)</script><p>a"),
]


def fixture_artifacts(folder: Path) -> list[Artifact]:
    """The Design2Code pages and ChartMimic charts, interleaved; none without the folder."""
    pages = [Artifact("web", p.read_text()) for p in sorted(folder.glob("design2code/*.html"))]
    charts = [Artifact("chart", p.read_text()) for p in sorted(folder.glob("chartmimic/*.py"))]
    paired = [a for pair in zip(pages, charts) for a in pair]
    return paired + pages[len(charts):] + charts[len(pages):]


def artifacts(n: int, fixtures: list[Artifact], hostile_every: int, seed: int = 0):
    """`n` (kind, name, Artifact): every `hostile_every`-th hostile, every 4th (of the rest) a
    fixture when there are some, else a synthetic task with random styles per block."""
    rng = random.Random(seed)
    tasks = iter(())
    for i in range(n):
        if i % hostile_every == hostile_every - 1:
            domain, name, code = HOSTILE[(i // hostile_every) % len(HOSTILE)]
            yield "hostile", name, Artifact(domain, code)
        elif fixtures and i % 4 == 3:
            yield "fixture", "fixture", fixtures[(i // 4) % len(fixtures)]
        else:
            task = next(tasks, None)
            if task is None:  # generated lazily, a thousand at a time
                tasks = iter(generate_tasks(("web", "slide", "chart"), 1000, seed=seed + i))
                task = next(tasks)
            per_block = [rng.choice(styles(task.domain)) for _ in range(3)]
            yield "synthetic", task.domain, Artifact(task.domain, solve(task, per_block))


class Tree:
    """The pool process and everything below it, measured with psutil."""

    def __init__(self, before: set[int]):
        self.me = psutil.Process()
        self.before = before  # descendants that are not the pool's (another pool in a test)
        self.seen: dict[tuple[int, float], float] = {}  # (pid, start time) → its last CPU s
        self.me_cpu0 = _cpu(self.me)  # own time: its reaped children are counted below
        self.zombies: set[int] = set()  # zombie children at the last sample
        self.reaped = 0  # adopted orphans that exited: zombies of ours, reaped here

    def reap(self, only: set[int] | None = None) -> set[int]:
        """Reap our zombie children (those in `only`, when given); the rest's pids."""
        left = set()
        for p in self.processes():
            try:
                if p.ppid() != self.me.pid or p.status() != psutil.STATUS_ZOMBIE:
                    continue
            except psutil.NoSuchProcess:
                continue
            if only is None or p.pid in only:
                os.waitpid(p.pid, os.WNOHANG)
                self.reaped += 1
            else:
                left.add(p.pid)
        return left

    def processes(self) -> list[psutil.Process]:
        return [p for p in self.me.children(recursive=True) if p.pid not in self.before]

    def sample(self) -> dict:
        """A zombie child still there one sample later is an orphan we adopted (asyncio
        reaps its own children at once): it is reaped."""
        self.zombies = self.reap(only=self.zombies)
        parts = {"pool": self.me.memory_info().rss}
        procs, fds, zombies = 0, self.me.num_fds(), 0
        for p in self.processes():
            try:
                with p.oneshot():
                    if p.status() == psutil.STATUS_ZOMBIE:
                        zombies += 1
                        continue
                    part = _part(p)
                    parts[part] = parts.get(part, 0) + p.memory_info().rss
                    fds += p.num_fds()
                    # reaped children's CPU only for chart workers (their forked chart
                    # processes): elsewhere a dead browser's would count its processes twice
                    worker = "chart_worker" in " ".join(p.cmdline())
                    self.seen[(p.pid, p.create_time())] = _cpu(p, children=worker)
                    procs += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return {"rss_mb": {k: round(v / MB, 1) for k, v in sorted(parts.items())},
                "rss_total_mb": round(sum(parts.values()) / MB, 1), "processes": procs,
                "zombies": zombies, "fds": fds,
                "tree_cpu_s": round(_cpu(self.me) - self.me_cpu0 + sum(self.seen.values()), 2)}

    def left_over(self) -> list[str]:
        """Processes of the pool still alive: below us now, or seen below us and still there
        (an orphan adopted by init where we could not become its subreaper)."""
        self.reap()
        left = {p.pid: p for p in self.processes()}
        for pid, started in self.seen:
            try:
                p = psutil.Process(pid)
                if p.create_time() == started:
                    left[pid] = p
            except psutil.NoSuchProcess:
                continue
        out = []
        for pid, p in sorted(left.items()):
            try:
                out.append(f"{pid} {p.status()} {' '.join(p.cmdline())[:120] or p.name()}")
            except psutil.NoSuchProcess:
                continue
        return out


def _cpu(p: psutil.Process, children: bool = False) -> float:
    t = p.cpu_times()
    return t.user + t.system + (t.children_user + t.children_system if children else 0.0)


def _part(p: psutil.Process) -> str:
    """Which part of the pool a process belongs to, from its command line."""
    argv = " ".join(p.cmdline())
    if "chromium" in argv or "chrome" in argv:
        return "browsers"
    if "playwright" in argv or p.name() == "node":
        return "driver"
    return "charts"  # bwrap, its PID 1, the warm workers and the forked chart processes


@contextlib.contextmanager
def _private_tmpdir():
    """A fresh TMPDIR for this process and the ones it starts (the Playwright driver and the
    browsers make their profiles there, the chart renderer its sandbox dirs); removed after."""
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    path = tempfile.mkdtemp(prefix="vsdpo-soak-")
    os.environ["TMPDIR"], tempfile.tempdir = path, path
    try:
        yield Path(path)
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(path, ignore_errors=True)


async def _run(n: int, every: int, config: RenderConfig, hostile_every: int, tree: Tree,
               on_sample) -> tuple[list[dict], dict]:
    fixtures = fixture_artifacts(FIXTURES) if FIXTURES.is_dir() else []
    stream = artifacts(n, fixtures, hostile_every)
    samples, counts, hostile, raised = [], {}, {}, []
    done, start = 0, time.monotonic()
    stop = asyncio.Event()  # SIGINT: no new artifacts; the report covers those rendered
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    async with RenderPool(config) as pool:
        await pool.start_browsers()
        in_flight = 2 * (len(pool.browsers.slots) + config.chart.workers)

        async def drain():
            nonlocal done
            for kind, name, artifact in stream:
                if stop.is_set():
                    break
                try:
                    result = await pool.render_one(artifact)
                except BaseException as exc:  # noqa: BLE001 - the contract is that it never raises
                    raised.append(f"{kind}/{name}: {exc!r}")
                    result = None
                key = f"{kind}/{'ok' if result is not None and result.ok else 'error'}"
                counts[key] = counts.get(key, 0) + 1
                if kind == "hostile":
                    hostile.setdefault(name, []).append(
                        "raised" if result is None else "ok" if result.ok else result.error[:80])
                done += 1
                if done % every == 0 or done == n or stop.is_set():
                    sample = {"artifacts": done, "wall_s": round(time.monotonic() - start, 2),
                              "load_1min": os.getloadavg()[0], **tree.sample()}
                    samples.append(sample)
                    on_sample(sample)

        await asyncio.gather(*(drain() for _ in range(in_flight)))
    asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
    return samples, {"counts": counts, "hostile": hostile, "raised": raised}


def soak(n: int, every: int, config: RenderConfig | None = None,
         hostile_every: int = HOSTILE_EVERY, on_sample=lambda sample: None) -> dict:
    """Render `n` artifacts through one pool, sampling every `every`; close it; count leaks."""
    if n < 1 or every < 1:
        raise ValueError(f"n and every must be >= 1, got n={n}, every={every}")
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    fds_before = me.num_fds()
    tree = Tree(before)
    with _private_tmpdir() as tmp:
        samples, outcome = asyncio.run(_run(n, every, config or RenderConfig(), hostile_every,
                                            tree, on_sample))
        leaked = tree.left_over()
        tmp_left = sorted(os.listdir(tmp))
    n = samples[-1]["artifacts"] if samples else 0  # fewer than asked after a SIGINT
    return {"n": n, "every": every, "samples": samples, **outcome,
            "leaked_processes": leaked, "orphans_reaped": tree.reaped,
            "fds_before": fds_before, "fds_after": me.num_fds(), "tmp_left": tmp_left,
            **summarize(samples, n)}


def slope_per_1000(samples: list[dict], key) -> float | None:
    """Least-squares slope of `key(sample)` in MB per 1000 artifacts; None under 3 samples."""
    if len(samples) < 3:
        return None
    xs = [s["artifacts"] / 1000 for s in samples]
    ys = [key(s) for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys))
                 / sum((x - mx) ** 2 for x in xs), 2)


def summarize(samples: list[dict], n: int) -> dict:
    """Memory slopes after the warm-up (the first fifth, at most 1000 artifacts) and the
    throughput and CPU cost per 1000-artifact window."""
    warmup = min(WINDOW, n // 5)
    steady = [s for s in samples if s["artifacts"] >= warmup]
    parts = sorted({k for s in steady for k in s["rss_mb"]})
    windows, last = [], {"artifacts": 0, "wall_s": 0.0, "tree_cpu_s": 0.0}
    for s in samples:
        if s["artifacts"] % WINDOW == 0 or s is samples[-1]:
            count = s["artifacts"] - last["artifacts"]
            if count:
                windows.append({
                    "artifacts": f"{last['artifacts']}-{s['artifacts']}",
                    "per_s": round(count / (s["wall_s"] - last["wall_s"]), 2),
                    "cpu_ms_per_artifact": round(1e3 * (s["tree_cpu_s"] - last["tree_cpu_s"])
                                                 / count, 1),
                    "load_1min": s["load_1min"]})
            last = s
    return {"warmup_artifacts": warmup,
            "rss_slope_mb_per_1000": slope_per_1000(steady, lambda s: s["rss_total_mb"]),
            "rss_slope_mb_per_1000_by_part": {
                p: slope_per_1000(steady, lambda s, p=p: s["rss_mb"].get(p, 0.0)) for p in parts},
            "processes_slope_per_1000": slope_per_1000(steady, lambda s: s["processes"]),
            "fds_slope_per_1000": slope_per_1000(steady, lambda s: s["fds"]),
            "windows": windows}


def metadata() -> dict:
    """Device, versions, load: as `bench/common.py` records them (without importing torch)."""
    versions = {d: _version(d) for d in ("playwright", "matplotlib", "psutil")}
    chromium = subprocess.run([find_chromium(), "--version"], capture_output=True, text=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    return {"device": _cpu_name(), "cpu_count": os.cpu_count(),
            "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), **versions,
            "chromium": chromium.stdout.strip() or None, "load_avg_1min": os.getloadavg()[0],
            "nice": os.nice(0), "git_commit": commit or None}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f
                     if line.startswith("model name")), platform.processor() or "cpu")


def print_summary(report: dict) -> None:
    last = report["samples"][-1]
    print(f"\n{report['n']} artifacts in {last['wall_s']:.0f} s; outcomes {report['counts']}")
    print(f"RSS at the end: {last['rss_mb']} MB (total {last['rss_total_mb']} MB), "
          f"{last['processes']} processes, {last['fds']} fds")
    print(f"RSS slope after {report['warmup_artifacts']} artifacts: "
          f"{report['rss_slope_mb_per_1000']} MB per 1000 artifacts "
          f"{report['rss_slope_mb_per_1000_by_part']}; processes "
          f"{report['processes_slope_per_1000']}, fds {report['fds_slope_per_1000']} per 1000")
    for w in report["windows"]:
        print(f"  window {w['artifacts']}: {w['per_s']} artifacts/s, "
              f"{w['cpu_ms_per_artifact']} CPU ms/artifact, load {w['load_1min']:.1f}")
    print(f"after close: {len(report['leaked_processes'])} processes left "
          f"{report['leaked_processes']}, fds {report['fds_before']} -> {report['fds_after']}, "
          f"temp dirs left {report['tmp_left']}")
    for name, outcomes in sorted(report["hostile"].items()):
        times = f" (x{len(outcomes)})" if len(outcomes) > 1 else ""
        print(f"  hostile {name}: {outcomes[0]!r}{times}")
    if report["raised"]:
        print(f"RAISED: {report['raised']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="artifacts to render")
    parser.add_argument("--every", type=int, default=100, help="sample every this many artifacts")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default runs/soak_render/soak_<n>.json)")
    args = parser.parse_args()
    # orphans of the pool's processes become our children, so `left_over` sees every one
    ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, 1)
    meta = metadata()
    report = soak(args.n, args.every, on_sample=lambda s: print(json.dumps(s), flush=True))
    if not report["samples"]:
        sys.exit("interrupted before the first artifact was rendered")
    report = {"command": " ".join(sys.argv), **meta, **report}
    out = args.out or REPO / "runs" / "soak_render" / f"soak_{args.n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print_summary(report)
    print(f"wrote {out}")
    leaked = report["leaked_processes"] or report["fds_after"] > report["fds_before"]
    sys.exit(1 if leaked or report["raised"] else 0)


if __name__ == "__main__":
    main()
