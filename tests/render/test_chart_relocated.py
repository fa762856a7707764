"""The chart renderer from a checkout elsewhere: a copy of the `vsdpo` package under /tmp
(where bubblewrap mounts its private /tmp) and under a path with a space renders a real
chart in bubblewrap, from the copy, and the checkout around the copy stays hidden; so does
a Python environment reached through a symlink."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from vsdpo.render import chart_sandbox

REPO = Path(chart_sandbox.package_root())
CHART = """import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.bar(["Q1", "Q2"], [3, 1])
ax.set_title("Quarterly sales")
ax.set_xlabel(str(os.path.exists(SECRET)))
"""
SCRIPT = """import asyncio, json, sys
import vsdpo
from vsdpo.render.chart import ChartConfig, ChartRenderer

async def main():
    async with ChartRenderer(ChartConfig(workers=1, use_bwrap=True)) as renderer:
        chart, read = [await renderer.render(code) for code in sys.argv[1:]]
    print(json.dumps({"package": vsdpo.__file__, "ok": chart.ok, "error": chart.error,
                      "texts": [e.text for e in chart.elements], "read_error": read.error}))

asyncio.run(main())
"""


@pytest.mark.parametrize("prefix", ["vsdpo-", "vsdpo copy "])
def test_a_copy_under_tmp_renders_charts_and_hides_its_checkout(prefix):
    assert shutil.which("bwrap"), "bubblewrap is not installed (apt bubblewrap)"
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        shutil.copytree(REPO / "vsdpo", root / "vsdpo",
                        ignore=shutil.ignore_patterns("__pycache__"))
        secret = root / "pyproject.toml"
        secret.write_text("not for charts\n")
        chart = f"import os\nSECRET = {str(secret)!r}\n" + CHART
        read = f"open({str(secret)!r}).read()"
        run = subprocess.run([sys.executable, "-c", SCRIPT, chart, read],
                             cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-4000:]
        out = json.loads(run.stdout.splitlines()[-1])
        assert out["package"] == str(root / "vsdpo" / "__init__.py")
        assert out["ok"], out["error"]
        assert {"Quarterly sales", "Q1", "Q2", "False"} <= set(out["texts"])
        assert "not readable" in out["read_error"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_python_environment_reached_through_a_symlink_renders_charts():
    """bubblewrap mounts the environment at the symlink's path, where it is no link: the
    audit hook must accept that path too, not only the real one."""
    assert shutil.which("bwrap"), "bubblewrap is not installed (apt bubblewrap)"
    root = Path(tempfile.mkdtemp(prefix="vsdpo-link-", dir="/tmp"))
    try:
        (root / "env").symlink_to(sys.prefix)
        python = root / "env" / Path(sys.executable).relative_to(sys.prefix)
        secret = root / "secret.txt"
        secret.write_text("not for charts\n")
        chart = f"import os\nSECRET = {str(secret)!r}\n" + CHART
        run = subprocess.run([str(python), "-c", SCRIPT, chart, f"open({str(secret)!r}).read()"],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-4000:]
        out = json.loads(run.stdout.splitlines()[-1])
        assert out["ok"], out["error"]
        assert {"Quarterly sales", "Q1", "Q2", "False"} <= set(out["texts"])
        assert "not readable" in out["read_error"]
    finally:
        shutil.rmtree(root, ignore_errors=True)
