"""The render soak (`scripts/soak_render.py`) in short: every hostile artifact of its mix, among
synthetic ones, through one real pool (Chromium and bwrapped chart workers). Each hostile one
is a result, the rest render, and closing the pool leaves no process, descriptor or temp dir.
The 10,000-artifact run is the script's (docs/render.md), not a test.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from soak_render import HOSTILE, soak, summarize  # noqa: E402
from vsdpo.render import RenderConfig  # noqa: E402
from vsdpo.render.chart import ChartConfig  # noqa: E402

# what cannot render at all: every other hostile artifact may render (a dialog, a popup) or not
MUST_FAIL = {"infinite_loop", "script_loop", "memory_bomb", "never_loads", "growing_memory",
             "sleep", "subprocess"}


def test_hostile_artifacts_are_results_and_closing_the_pool_leaves_nothing():
    config = RenderConfig(num_browsers=1, pages_per_browser=2, timeout_s=5.0,
                          chart=ChartConfig(workers=1, timeout_s=5.0, cpu_s=3))
    report = soak(2 * len(HOSTILE), every=6, config=config, hostile_every=2)
    assert report["raised"] == []
    assert set(report["hostile"]) == {name for _, name, _ in HOSTILE}
    for name in MUST_FAIL:
        assert all(outcome not in ("ok", "raised") for outcome in report["hostile"][name]), name
    rendered = {k: v for k, v in report["counts"].items() if not k.startswith("hostile/")}
    assert rendered == {"synthetic/ok": len(HOSTILE)}, report["counts"]
    assert max(s["processes"] for s in report["samples"]) >= 3  # the tree was measured
    assert report["leaked_processes"] == []
    assert report["fds_after"] == report["fds_before"]
    assert report["tmp_left"] == []


def test_the_summary_fits_the_memory_slope_after_the_warm_up_and_splits_windows():
    # 20 MB of start-up growth, then 3 MB per 1000 artifacts; 500 artifacts/s, then 250/s
    samples = [{"artifacts": k, "wall_s": k / 500 if k <= 1000 else 2 + (k - 1000) / 250,
                "tree_cpu_s": k / 100, "load_1min": 1.0, "processes": 9, "fds": 90,
                "rss_mb": {"pool": 100 + min(k, 500) / 25 + 3 * k / 1000}}
               for k in range(100, 2600, 100)]
    for s in samples:
        s["rss_total_mb"] = s["rss_mb"]["pool"]
    summary = summarize(samples, 2500)
    assert summary["warmup_artifacts"] == 500
    assert summary["rss_slope_mb_per_1000"] == 3.0
    assert summary["processes_slope_per_1000"] == 0.0
    assert [w["artifacts"] for w in summary["windows"]] == ["0-1000", "1000-2000", "2000-2500"]
    assert [w["per_s"] for w in summary["windows"]] == [500.0, 250.0, 250.0]
    assert summary["windows"][0]["cpu_ms_per_artifact"] == 10.0
