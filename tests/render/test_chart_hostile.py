"""Hostile chart programs: each comes back as a result within its timeout, nothing is
written outside the chart's temp dir, no process is left behind, and the renderer then
renders a normal chart. Run under bubblewrap and under the rlimits-only fallback."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from chart_session import SyncChartRenderer
from processes import descendants, process_parents
from vsdpo.render import chart_sandbox
from vsdpo.render.chart import ChartConfig

REPO = Path(chart_sandbox.package_root())
TIMEOUT_S = 2.0
NORMAL = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('fine')\n"
MARKERS = [REPO / "PWNED", Path("/tmp/PWNED_chart"), Path("/tmp/PWNED_subprocess")]
HOSTILE = {
    "infinite_loop": "while True:\n    pass",
    "sleep": "import time\ntime.sleep(100)",
    "memory_bomb": "x = bytearray(8 * 1024**3)",
    "growing_memory": "x = []\nwhile True:\n    x.append(' ' * 10**7)",
    "fork_bomb": "import os\nwhile True:\n    os.fork()",
    "socket_to_loopback": "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)",
    "write_into_repo": f"open({str(REPO / 'PWNED')!r}, 'w').write('x')",
    "write_into_tmp": "open('/tmp/PWNED_chart', 'w').write('x')",
    "read_repo_file": f"print(open({str(REPO / 'pyproject.toml')!r}).read())",
    "subprocess": "import subprocess\nsubprocess.run(['touch', '/tmp/PWNED_subprocess'])",
    "kill_the_worker": "import os\nos.kill(os.getppid(), 9)",
    "ctypes_fork": "import ctypes\nctypes.CDLL(None).fork()",
    "huge_file": "open('big', 'wb').write(b'x' * (64 << 20))",
}


def worker_processes(renderer) -> int:
    return sum(len(descendants({w.proc.pid}, process_parents()))
               for w in renderer.renderer._workers)


@pytest.fixture(scope="module", params=["bwrap", "rlimits"])
def renderer(request):
    config = ChartConfig(workers=1, timeout_s=TIMEOUT_S, cpu_s=2, memory_mb=1024,
                         file_size_mb=8, use_bwrap=request.param == "bwrap")
    r = SyncChartRenderer(config)
    assert r.renderer.sandbox == request.param
    assert r.render(NORMAL).ok
    r.idle_processes = worker_processes(r)  # bwrap, its PID-1, the worker; or the worker
    yield r
    r.close()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_code_is_a_result_and_the_renderer_keeps_serving(renderer, name):
    start = time.monotonic()
    result = renderer.render(HOSTILE[name])
    assert time.monotonic() - start < TIMEOUT_S + 5
    assert not result.ok and result.error, name
    assert not any(m.exists() for m in MARKERS)
    normal = renderer.render(NORMAL)
    assert normal.ok and normal.image, normal.error
    assert worker_processes(renderer) == renderer.idle_processes  # nothing left running


def _file_under(root: Path) -> Path | None:
    """A file two levels under `root`, outside the checkout and what charts may read."""
    import matplotlib

    mine = [REPO, *map(Path, chart_sandbox.readable_paths(matplotlib.get_cachedir()))]
    return next((p for p in sorted(root.glob("*/*"))
                 if p.is_file() and not any(p.resolve().is_relative_to(m) for m in mine)), None)


@pytest.fixture(scope="module")
def private_files():
    """A file in each place a chart must not read (None where there is none to try)."""
    fd, home_file = tempfile.mkstemp(prefix=".vsdpo-sandbox-probe-", dir=Path.home())
    os.close(fd)
    sibling = Path(tempfile.mkdtemp(prefix=".vsdpo-sandbox-sibling-", dir=REPO.parent))
    (sibling / "data.txt").write_text("another project's file\n")
    yield {"home": Path(home_file), "checkout": REPO / "pyproject.toml",
           "sibling": sibling / "data.txt", "/work": _file_under(Path("/work"))}
    os.remove(home_file)
    shutil.rmtree(sibling)


def test_reading_system_files_is_allowed(renderer):
    result = renderer.render("import matplotlib.pyplot as plt\n"
                             "plt.title(open('/bin/sh', 'rb').read(4)[1:].decode())\n")
    assert result.ok, result.error
    assert "ELF" in [e.text for e in result.elements]


@pytest.mark.parametrize("place", ["home", "checkout", "sibling", "/work"])
def test_files_outside_the_allow_list_are_not_readable(renderer, private_files, place):
    path = private_files[place]
    if path is None:
        pytest.skip(f"no file under {place} on this machine to try reading")
    result = renderer.render(f"open({str(path)!r}).read()")
    assert not result.ok and "not readable" in result.error, result.error


def test_the_bwrap_layer_alone_blocks_writes_network_and_hides_the_repo(private_files):
    bwrap = shutil.which("bwrap")
    assert bwrap, "bubblewrap is not installed: scripts/setup.sh installs it (apt bubblewrap)"
    import matplotlib

    hidden = [str(p) for p in private_files.values() if p is not None]
    # writes into what is mounted from the host: a checkout under /tmp is in the private /tmp
    probe = f"""
import os, socket
out = []
for path in ({str(REPO / 'vsdpo' / 'PWNED')!r}, '/etc/PWNED'):
    try:
        open(path, 'w'); out.append('wrote')
    except OSError as e:
        out.append(type(e).__name__)
out += [str(os.path.exists(path)) for path in {hidden!r}]
try:
    socket.create_connection(('1.1.1.1', 80), timeout=2); out.append('connected')
except OSError as e:
    out.append('no network')
open('/tmp/inside', 'w').write('x')
print(' '.join(out))
"""
    cmd = chart_sandbox.bwrap_command(bwrap, matplotlib.get_cachedir(), tmp_mb=16)
    run = subprocess.run(cmd + [sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["OSError", "OSError", *["False"] * len(hidden), "no", "network"]
    assert not (REPO / "vsdpo" / "PWNED").exists() and not Path("/tmp/inside").exists()


def test_a_killed_worker_is_replaced_and_its_chart_retried(renderer):
    worker = renderer.renderer._workers[0]
    os.killpg(worker.proc.pid, 9)
    renderer.loop.run_until_complete(worker.proc.wait())
    result = renderer.render(NORMAL)
    assert result.ok, result.error
    assert renderer.renderer._workers[0] is not worker
    renderer.idle_processes = worker_processes(renderer)
