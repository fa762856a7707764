"""Shared helpers for the benchmarks in bench/: timing, peak memory, run metadata, JSON output.

Every benchmark reports the median and the p20/p80 of its timed repetitions, the device and
library versions it ran with, and writes one JSON object both to bench/results/ and as the
last line of stdout, so a run can be compared with another machine's file later.
"""

import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("VSDPO_FIXTURES") or REPO_ROOT.parent / "shared" / "fixtures")
MIB = 2**20


def time_interleaved(fns: dict[str, Callable[[], object]], reps: int, warmup: int) -> dict[str, dict]:
    """Median and p20/p80 (ms) of `reps` calls of each function after `warmup` untimed calls.

    The calls are interleaved (one of each per round), so a machine whose load drifts during
    the run (shared CPUs) slows every provider alike instead of whichever ran last. On CUDA
    each call is timed by its own pair of events; on CPU by a monotonic wall clock.
    """
    if reps < 3:
        raise ValueError(f"reps={reps}: need at least 3 timed repetitions for p20/p80")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    timer = _CudaTimer() if torch.cuda.is_available() else _CpuTimer()
    for _ in range(reps):
        for name, fn in fns.items():
            timer.time(name, fn)
    stats = {}
    for name, times_ms in timer.results().items():
        p20, _, _, p80 = statistics.quantiles(times_ms, n=5, method="inclusive")
        stats[name] = {"median_ms": statistics.median(times_ms), "p20_ms": p20, "p80_ms": p80, "reps": reps}
    return stats


def time_fn(fn: Callable[[], object], reps: int, warmup: int) -> dict:
    """`time_interleaved` of one function."""
    return time_interleaved({"fn": fn}, reps, warmup)["fn"]


class _CudaTimer:
    def __init__(self):
        self.events: dict[str, list] = {}

    def time(self, name: str, fn: Callable[[], object]) -> None:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        self.events.setdefault(name, []).append((start, end))

    def results(self) -> dict[str, list[float]]:
        torch.cuda.synchronize()  # event times are only readable once the stream has drained
        return {name: [s.elapsed_time(e) for s, e in pairs] for name, pairs in self.events.items()}


class _CpuTimer:
    def __init__(self):
        self.times_ms: dict[str, list[float]] = {}

    def time(self, name: str, fn: Callable[[], object]) -> None:
        start = time.perf_counter()
        fn()
        self.times_ms.setdefault(name, []).append((time.perf_counter() - start) * 1e3)

    def results(self) -> dict[str, list[float]]:
        return self.times_ms


def reset_peak_rss() -> int:
    """Reset this process's peak RSS to its current RSS (Linux `clear_refs`); return that RSS in bytes.

    Lets a memory run exclude start-up and compilation: build inputs, warm up, reset, measure.
    """
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _proc_status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    """Peak RSS of this process since its start or the last `reset_peak_rss`.

    Read as VmHWM, not `getrusage().ru_maxrss`: on exec the kernel folds the parent's peak RSS
    into the child's ru_maxrss, and `clear_refs` does not reset that part, so a child started
    by a large parent would report the parent's peak.
    """
    return _proc_status_bytes("VmHWM")


def _proc_status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith(f"{field}:"))
    return kib * 1024


def fixtures_dir() -> Path:
    """The fixture corpora (`VSDPO_FIXTURES`, default `../shared/fixtures`); exits without them."""
    if not FIXTURES.is_dir():
        sys.exit(f"fixtures not found at {FIXTURES}: set VSDPO_FIXTURES to their folder")
    return FIXTURES


def run_json_subprocess(argv: list[str], env: dict[str, str] | None = None) -> dict:
    """Run `python argv...` in a fresh interpreter and parse the JSON object on its last stdout line."""
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed with exit code {proc.returncode}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def device_slug() -> str:
    """Short device name for result file names: `h100`, `h200`, `a100`, ... or `cpu`."""
    if not torch.cuda.is_available():
        return "cpu"
    name = torch.cuda.get_device_name().lower()
    for gpu in ("h200", "h100", "b200", "a100", "l40s", "a10g"):
        if gpu in name:
            return gpu
    return "".join(c for c in name.split()[-1] if c.isalnum()) or "cuda"


def run_metadata() -> dict:
    """Device, versions, date, threads and load: what a reader needs to trust or compare the numbers."""
    return {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else _cpu_name(),
        "device_slug": device_slug(),
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "liger_kernel": _version("liger-kernel"),
        "cuda": torch.version.cuda,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
        "git_commit": _git_commit(),
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "cpu"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """None outside a git checkout, or where git is not installed (a copied tree on a GPU machine)."""
    try:
        proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    except OSError:
        return None
    return proc.stdout.strip() or None


def write_result(payload: dict, path: Path) -> None:
    """Save `payload` as pretty JSON at `path` and print it as one line, the last line of stdout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload), flush=True)
