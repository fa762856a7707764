"""The render pool the trainer uses: artifacts in, `RenderResult`s out, in order.

Web pages and slides go to reused Chromium pages (`browser.py`, `html.py`); charts go to
the chart renderer's warm sandboxed workers (`chart.py`). Each side starts on the first
artifact that needs it, so charts alone need neither Playwright nor Chromium;
`start_browsers()` starts Chromium up front, so a run whose tasks include pages fails at
once when it is missing. Rendering is concurrent across the pool; a result never raises —
bad code, a hung script or a crashed browser all come back as `ok=False` with the error.

    async with RenderPool(RenderConfig()) as pool:
        results = await pool.render(artifacts)
    results = render(artifacts)  # the same, synchronously, for scripts and tests
"""

import asyncio
import os
import traceback
from dataclasses import dataclass, field

from vsdpo.render.assets import AssetResolver
from vsdpo.render.chart import ChartConfig, ChartRenderer
from vsdpo.render.types import Artifact, ChromiumDied, RenderResult, RenderTimeout

HTML_DOMAINS = ("web", "slide")


@dataclass
class RenderConfig:
    """How to render. Sizes are (width, height) in CSS pixels."""

    browser_path: str | None = None  # None: $VSDPO_CHROMIUM, else the system chromium
    num_browsers: int = field(default_factory=lambda: os.cpu_count() or 1)
    pages_per_browser: int = 2
    viewport: tuple[int, int] = (1280, 800)
    slide_size: tuple[int, int] = (1280, 720)
    max_page_height: int = 3200  # full-page captures (and web canvases) stop here
    screenshot: bool = True  # False: no PNG (text-only policies; detection needs no pixels)
    timeout_s: float = 10.0
    recycle_every: int = 200  # renders per browser context before a fresh one
    # page scripts per domain: on, so Tailwind's Play CDN and chart libraries draw (docs/render.md)
    javascript: dict[str, bool] = field(default_factory=lambda: {"web": True, "slide": True})
    max_dom_nodes: int = 5000
    assets: bool = True  # serve CDN libraries and web fonts from the offline cache (assets.py)
    chart: ChartConfig = field(default_factory=ChartConfig)

    def __post_init__(self):
        for name in ("num_browsers", "pages_per_browser", "max_page_height", "recycle_every",
                     "max_dom_nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"RenderConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.timeout_s <= 0:
            raise ValueError(f"RenderConfig.timeout_s must be > 0, got {self.timeout_s}")
        for domain in self.javascript:
            if domain not in HTML_DOMAINS:
                raise ValueError(f"RenderConfig.javascript keys must be in {HTML_DOMAINS}, "
                                 f"got {domain!r}")


class RenderPool:
    """Async context manager owning the browsers and the chart workers."""

    def __init__(self, config: RenderConfig | None = None):
        self.config = config or RenderConfig()
        self.browsers = self.settings = None  # BrowserPool, HtmlSettings: once a page needs them
        self.charts: ChartRenderer | None = None
        self._browser_lock, self._chart_lock = asyncio.Lock(), asyncio.Lock()

    async def __aenter__(self) -> "RenderPool":
        return self

    async def __aexit__(self, *exc):
        if self.charts is not None:
            await self.charts.close()
        if self.browsers is not None:
            await self.browsers.close()

    async def start_browsers(self):
        """The browser pool, started on the first call."""
        async with self._browser_lock:
            if self.browsers is None:  # Playwright is imported for pages only
                from vsdpo.render.browser import BrowserPool, find_chromium
                from vsdpo.render.html import HtmlSettings
                c = self.config
                self.settings = HtmlSettings(c.viewport, c.slide_size, c.max_page_height,
                                             c.max_dom_nodes, c.screenshot)
                browsers = BrowserPool(find_chromium(c.browser_path), c.num_browsers,
                                       c.pages_per_browser, c.recycle_every, c.timeout_s,
                                       AssetResolver() if c.assets else None)
                await browsers.start()
                self.browsers = browsers
        return self.browsers

    async def render(self, artifacts: list[Artifact]) -> list[RenderResult]:
        """Render all artifacts concurrently; results in the same order."""
        return list(await asyncio.gather(*(self.render_one(a) for a in artifacts)))

    async def render_one(self, artifact: Artifact) -> RenderResult:
        try:
            if artifact.domain == "chart":
                return await self._render_chart(artifact)
            if artifact.domain not in HTML_DOMAINS:
                return RenderResult(ok=False, error=f"unknown domain {artifact.domain!r}; "
                                    "expected 'web', 'slide' or 'chart'")
            return await self._render_html(artifact)
        except (RenderTimeout, ChromiumDied) as e:
            return RenderResult(ok=False, error=str(e))
        except Exception as e:  # a result never raises: the error is the result
            return RenderResult(ok=False, error=f"{type(e).__name__}: {e}\n"
                                f"{traceback.format_exc(limit=3)}")

    async def _render_html(self, artifact: Artifact) -> RenderResult:
        from vsdpo.render.browser import could_run_script
        from vsdpo.render.html import render_html
        browsers = await self.start_browsers()
        return await browsers.run(
            lambda page, cdp: render_html(page, cdp, artifact, self.settings),
            self.config.javascript.get(artifact.domain, False), could_run_script(artifact.code))

    async def _render_chart(self, artifact: Artifact) -> RenderResult:
        async with self._chart_lock:  # chart workers start on the first chart
            if self.charts is None:
                charts = ChartRenderer(self.config.chart)
                await charts.start()
                self.charts = charts
        return await self.charts.render(artifact.code)


def render(artifacts: list[Artifact], config: RenderConfig | None = None) -> list[RenderResult]:
    """Synchronous convenience: start a pool, render, shut it down."""
    async def go():
        async with RenderPool(config) as pool:
            return await pool.render(artifacts)
    return asyncio.run(go())
