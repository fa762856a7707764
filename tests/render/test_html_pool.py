"""The Chromium render pool: real pages, hostile pages, a killed browser; the pool keeps serving.

Every hostile case must come back as a result within the pool's timeout (4 s here), and a
normal page must render right after it.
"""

import http.server
import os
import signal
import struct
import threading
import time
from pathlib import Path

import pytest

from sync_pool import SyncPool
from vsdpo.render import Artifact, RenderConfig
from vsdpo.render.browser import find_chromium

NORMAL = "<html><body><h1>Still serving</h1><p>after the hostile page</p></body></html>"


def png_size(image: bytes) -> tuple[int, int]:
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", image[16:24])


def assert_serves(pool):
    result = pool.one("web", NORMAL)
    assert result.ok, result.error
    assert any(e.text == "Still serving" for e in result.elements)


def test_every_design2code_page_renders_with_source_spans(html_pool, fixtures_dir):
    paths = sorted((fixtures_dir / "design2code").glob("*.html"))
    assert len(paths) >= 30
    codes = [p.read_text() for p in paths]
    results = html_pool.render([Artifact("web", c) for c in codes])
    for path, code, r in zip(paths, codes, results):
        assert r.ok, f"{path.name}: {r.error}"
        assert png_size(r.image) == (r.width, r.height) and r.width == 1280
        tagged = [e for e in r.elements if e.span]
        assert len(tagged) == len(r.elements) > 0, path.name
        a, b = tagged[-1].span
        assert code[a] == "<" and code[b - 1] == ">", path.name


def test_results_come_back_in_order_and_slides_are_exactly_1280x720(html_pool):
    artifacts = [Artifact("slide", "<h1>one</h1>"), Artifact("web", "<p>two</p>"),
                 Artifact("slide", "<h1>three</h1>" + "<p>x</p>" * 200)]
    results = html_pool.render(artifacts)
    assert [r.elements[-1].text for r in results] == ["one", "two", "x"]
    assert png_size(results[0].image) == (1280, 720) == png_size(results[2].image)
    assert [d.kind for d in results[2].defects].count("off_canvas") >= 1


def test_page_scripts_run_by_default_and_not_when_turned_off(html_pool):
    code = "<p>static</p><script>document.body.innerHTML = '<h1>INJECTED</h1>'</script>"
    scriptless = SyncPool(RenderConfig(num_browsers=1, pages_per_browser=1,
                                       javascript={"web": False, "slide": False}))
    try:
        for domain in ("web", "slide"):
            assert [e.text for e in html_pool.one(domain, code).elements][-1] == "INJECTED"
            texts = [e.text for e in scriptless.one(domain, code).elements]
            assert "static" in texts and "INJECTED" not in texts
    finally:
        scriptless.close()


def test_an_infinite_script_loop_times_out_and_the_pool_keeps_serving(html_pool):
    start = time.monotonic()
    result = html_pool.one("web", "<p>hi</p><script>while (true) {}</script>")
    assert not result.ok and "timed out" in result.error
    assert time.monotonic() - start < 4.0 + 6.0
    assert_serves(html_pool)


def test_a_100k_node_dom_is_walked_up_to_the_node_cap(html_pool):
    start = time.monotonic()
    result = html_pool.one("web", "<div>" + "<span>x</span>" * 100_000 + "</div>")
    assert time.monotonic() - start < 4.0 + 6.0
    if result.ok:
        assert len(result.elements) == html_pool.pool.config.max_dom_nodes
    else:
        assert "timed out" in result.error
    assert_serves(html_pool)


def test_a_meta_refresh_to_a_local_file_does_not_load_it(html_pool):
    code = '<meta http-equiv="refresh" content="0; url=file:///etc/passwd"><p>page</p>'
    result = html_pool.one("web", code)
    if result.ok:
        assert not any("root:" in e.text for e in result.elements)
    assert_serves(html_pool)


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        _Counter.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_no_request_leaves_the_page(html_pool):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    code = (f'<link rel="stylesheet" href="{url}/a.css"><img src="{url}/b.png">'
            f'<iframe src="{url}/c.html"></iframe><p style="background:url({url}/d.png)">x</p>'
            f'<script>fetch("{url}/e"); new Image().src = "{url}/f";</script>')
    try:
        results = html_pool.render([Artifact("web", code), Artifact("slide", code)])
        time.sleep(0.3)
    finally:
        server.shutdown()
    assert all(r.ok for r in results), [r.error for r in results]
    assert _Counter.hits == []
    for result in results:  # what the page wanted is named in its result
        assert {f"{url}/a.css", f"{url}/b.png", f"{url}/d.png"} <= set(result.missed_urls)


def _browser_pids() -> list[int]:
    """Chromium browser processes (not renderers) descended from this test process.

    Debian's /usr/bin/chromium is a wrapper script; the browser runs as .../chromium."""
    parents, pids = {}, []
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text()
            parents[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except (ValueError, OSError):
            continue
        if Path(argv[0].decode()).name in ("chromium", "chrome") and not any(a.startswith(b"--type=") for a in argv):
            pids.append(int(d.name))

    def mine(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 1)
            if pid == os.getpid():
                return True
        return False
    return [p for p in pids if mine(p)]


def test_a_killed_browser_is_replaced_and_the_artifact_retried(html_pool):
    pids = _browser_pids()
    assert len(pids) == 1  # the session pool runs one browser
    os.kill(pids[0], signal.SIGKILL)
    assert_serves(html_pool)
    assert _browser_pids() and _browser_pids() != pids


def test_a_missing_browser_names_the_fix(monkeypatch):
    monkeypatch.setenv("VSDPO_CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(FileNotFoundError, match="VSDPO_CHROMIUM"):
        find_chromium()


@pytest.mark.parametrize("kwargs,key", [({"num_browsers": 0}, "num_browsers"),
                                        ({"timeout_s": 0}, "timeout_s"),
                                        ({"javascript": {"pdf": True}}, "javascript")])
def test_bad_render_config_names_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        RenderConfig(**kwargs)


def test_an_unknown_domain_is_an_error_result_not_an_exception(html_pool):
    result = html_pool.render([Artifact("pdf", "x")])[0]
    assert not result.ok and "unknown domain" in result.error


def test_a_slides_adaptive_height_is_its_contents_as_aeslides_measures_it(html_pool):
    # AeSlides lays the slide out in a viewport 10 px tall: a fixed 1280×720 box measures 720,
    # content spilling below measures its full height, and a `100vh` box only the 10 px
    fixed, spilling, screen, page = html_pool.render([
        Artifact("slide", '<body style="margin:0"><div style="width:1280px;height:720px">'),
        Artifact("slide", '<body style="margin:0"><div style="width:1280px;height:900px">'),
        Artifact("slide", '<body style="margin:0"><div style="width:1280px;height:100vh">'),
        Artifact("web", "<p>a page</p>")])
    heights = (fixed.adaptive_height, spilling.adaptive_height, screen.adaptive_height)
    assert heights == (720, 900, 10)
    assert page.adaptive_height is None and fixed.height == 720
