"""Faults a long run meets, on real Chromium: the browser, or the renderer processes, SIGKILLed
while a batch of pages is in flight. The batch completes with every page properly rendered
(the hit pages retried on a rebuilt slot), and the pool keeps serving. A page whose renderer
dies on every attempt comes back as an error after one retry.

The kill is deterministic: it happens from inside a wrapper around the render step, once a
page has started rendering and before its next call to the browser, so that page is in flight.
"""

import asyncio
import os
import re
import signal
from pathlib import Path

import pytest

import vsdpo.render.html as html_module
from processes import process_parents
from vsdpo.render import Artifact, RenderConfig, RenderPool
from vsdpo.render.browser import BrowserPool

PAGES = [f"<html><body><h1>Page {i}</h1><p>body of page {i}</p></body></html>" for i in range(8)]
# Where the kill lands: `load` before `set_content`, `probe` before the DOM probe's CDP call
# (a CDP call to a crashed page never answers: the job must not wait out its timeout).
PHASES = {"load": (html_module, "render_html"), "probe": (html_module, "run_probe")}


class Pool:
    """A pool of its own, driven synchronously: one browser, two pages, and a timeout that a
    relaunch plus a first render on a loaded machine does not reach. `driver` is the pid of
    its Playwright driver, the process its browsers run under."""

    def __init__(self):
        children = {pid for pid, ppid in process_parents().items() if ppid == os.getpid()}
        self.loop = asyncio.new_event_loop()
        self.pool = RenderPool(RenderConfig(num_browsers=1, pages_per_browser=2, timeout_s=30))
        self.loop.run_until_complete(self.pool.__aenter__())
        self.loop.run_until_complete(self.pool.start_browsers())
        (self.driver,) = {pid for pid, ppid in process_parents().items()
                          if ppid == os.getpid()} - children

    def render(self, artifacts):
        return self.loop.run_until_complete(self.pool.render(artifacts))

    def close(self):
        self.loop.run_until_complete(self.pool.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture(scope="module")
def pool():
    p = Pool()
    yield p
    p.close()


def chromium_pids(pool: Pool, kind: str) -> list[int]:
    """The pool's Chromium processes: its `browser` or every `renderer` of it.

    Renderers rewrite their command line into one string, so it is matched as bytes."""
    parents, found = process_parents(), []
    for pid in parents:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        exe = Path(cmdline.split(b"\0")[0].split(b" ")[0].decode(errors="replace")).name
        if exe in ("chromium", "chrome") and (
                b"--type=" not in cmdline if kind == "browser" else b"--type=renderer" in cmdline):
            found.append(pid)

    def below_driver(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 1)
            if pid == pool.driver:
                return True
        return False
    return [pid for pid in found if below_driver(pid)]


def render_killing(pool, monkeypatch, artifacts, kind: str, phase: str, kills: int = 1):
    """Render `artifacts`, SIGKILLing every Chromium `kind` process the first `kills` times a
    page reaches `phase`. Returns (results, how many times a page reached `phase`)."""
    module, name = PHASES[phase]
    real, calls = getattr(module, name), []

    async def kill_then_continue(*args):
        calls.append(1)
        if len(calls) <= kills:
            pids = chromium_pids(pool, kind)
            assert pids, f"no {kind} process to kill"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        return await real(*args)

    with monkeypatch.context() as patch:
        patch.setattr(module, name, kill_then_continue)
        return pool.render(artifacts), len(calls)


def assert_proper_renders(results, codes):
    for i, (result, code) in enumerate(zip(results, codes)):
        assert result.ok, f"page {i}: {result.error}"
        assert f"Page {i}" in [e.text for e in result.elements], i
        assert result.image.startswith(b"\x89PNG") and result.width == 1280


@pytest.mark.parametrize("phase", sorted(PHASES))
def test_a_browser_killed_mid_batch_loses_no_page(pool, monkeypatch, phase):
    before = chromium_pids(pool, "browser")
    artifacts = [Artifact("web", c) for c in PAGES]
    results, reached = render_killing(pool, monkeypatch, artifacts, "browser", phase)
    assert_proper_renders(results, PAGES)
    assert reached > len(PAGES)  # the page in flight was rendered again
    after = chromium_pids(pool, "browser")
    assert len(after) == 1 and after != before  # relaunched


@pytest.mark.parametrize("phase", sorted(PHASES))
def test_renderers_killed_mid_batch_lose_no_page(pool, monkeypatch, phase):
    browser = chromium_pids(pool, "browser")
    artifacts = [Artifact("web", c) for c in PAGES]
    results, reached = render_killing(pool, monkeypatch, artifacts, "renderer", phase)
    assert_proper_renders(results, PAGES)
    assert reached > len(PAGES)
    assert chromium_pids(pool, "browser") == browser  # a renderer crash costs no browser restart


def test_a_page_whose_renderer_dies_every_time_is_an_error_after_one_retry(pool,
                                                                          monkeypatch):
    attempts, ready = [], BrowserPool._ready

    async def count_attempts(self, *args):
        attempts.append(1)
        return await ready(self, *args)

    monkeypatch.setattr(BrowserPool, "_ready", count_attempts)
    results, _ = render_killing(pool, monkeypatch, [Artifact("web", "<h1>Doomed</h1>")],
                                "renderer", "probe", kills=10)
    assert len(attempts) == 2
    assert not results[0].ok and re.search("died|crashed", results[0].error), results[0].error
    results = pool.render([Artifact("web", c) for c in PAGES[:2]])
    assert_proper_renders(results, PAGES[:2])
