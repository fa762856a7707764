"""One HTML artifact on one reused page: tag → load → probe → screenshot → detect.

Web pages render at the configured viewport and are captured full page (up to
`max_page_height`); slides render at exactly their slide size and the capture is that box.
The screenshot is taken once, through CDP with `optimizeForSpeed` (fast PNG encoding), or not
at all when the consumer never looks at pixels (the detectors work on the DOM probe).
"""

import base64
from dataclasses import dataclass

from vsdpo.render import placeholder
from vsdpo.render.assets import SUBSTITUTED_HEADER
from vsdpo.render.detect_html import Canvas, detect_html
from vsdpo.render.probe import run_probe, to_elements
from vsdpo.render.probe_world import evaluate_isolated
from vsdpo.render.source_map import tag_source
from vsdpo.render.types import Artifact, RenderResult

# Tailwind's v3 Play CDN compiles after `load` (its sheet, which opens with its banner, comes
# a moment later): wait for it, up to 2 s. Served stylesheets land after the first style
# pass, so their CSS transitions start (Bootstrap's `.btn` fades its colour for 150 ms,
# `transition-all` grows a font): jump them to their end; then wait for the web fonts, which
# load after layout, not before `load`.
SETTLE = """(async () => {
  const playCdn = document.querySelector('script[src^="https://cdn.tailwindcss.com"]');
  const compiled = () => [...document.querySelectorAll("style")].some(
    (s) => s.textContent.includes("tailwindcss v3"));
  for (let k = 0; playCdn && !compiled() && k < 200; k++)
    await new Promise((done) => setTimeout(done, 10));
  document.body && document.body.offsetWidth;
  document.getAnimations().forEach((a) => a instanceof CSSTransition && a.finish());
  await document.fonts.ready;
  return 1;
})()"""
# AeSlides' slide height: the document laid out in a viewport 10 px tall, so that only its
# content (not the viewport) sets it; capped as AeSlides caps it.
ADAPTIVE_VIEWPORT_HEIGHT, MAX_ADAPTIVE_HEIGHT = 10, 7680
FULL_HEIGHT = ("(() => { const b = document.body, d = document.documentElement; return Math.max("
               "b ? b.scrollHeight : 0, b ? b.offsetHeight : 0, d.clientHeight, d.scrollHeight,"
               " d.offsetHeight) || 1; })()")


@dataclass(frozen=True)
class HtmlSettings:
    """The per-domain page geometry and limits an HTML render needs."""

    viewport: tuple[int, int]
    slide_size: tuple[int, int]
    max_page_height: int
    max_dom_nodes: int
    screenshot: bool = True


async def render_html(page, cdp, artifact: Artifact, settings: HtmlSettings) -> RenderResult:
    """Render one page or slide and run the detectors on it."""
    smap = tag_source(artifact.code, 2 * settings.max_dom_nodes)
    slide = artifact.domain == "slide"
    width, height = settings.slide_size if slide else settings.viewport
    if page.viewport_size != {"width": width, "height": height}:
        await page.set_viewport_size({"width": width, "height": height})
    missed, served, substituted = [], [], []  # refused; answered from the asset cache
    on_failed = lambda request: missed.append(request.url)  # noqa: E731

    def on_response(response):
        if response.headers.get(placeholder.HEADER.lower()):
            missed.append(response.url)  # a stand-in, not the page's picture
        elif response.url.startswith("http"):  # the pool answers http(s) only from the cache
            served.append(response.url)
            note = response.headers.get(SUBSTITUTED_HEADER.lower(), "")
            substituted.extend(filter(None, note.split("; ")))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    try:
        await page.set_content(smap.html, wait_until="load")
    finally:
        page.remove_listener("requestfailed", on_failed)
        page.remove_listener("response", on_response)
    if served:
        await evaluate_isolated(cdp, SETTLE, await_promise=True)
    probe = await run_probe(cdp, smap, settings.max_dom_nodes)
    shot_h = height if slide else min(max(probe.page[1], height), settings.max_page_height)
    image = None
    if settings.screenshot:
        shot = await cdp.send("Page.captureScreenshot", {
            "format": "png", "optimizeForSpeed": True, "captureBeyondViewport": shot_h > height,
            "clip": {"x": 0, "y": 0, "width": width, "height": shot_h, "scale": 1}})
        image = base64.b64decode(shot["data"])
    adaptive = await _adaptive_height(page, cdp, width) if slide else None
    canvas = Canvas(artifact.domain, width, shot_h)
    return RenderResult(ok=True, image=image, width=width, height=shot_h,
                        elements=to_elements(probe),
                        defects=detect_html(probe, smap, artifact.code, canvas),
                        missed_urls=list(dict.fromkeys(missed)),
                        substituted_fonts=list(dict.fromkeys(substituted)),
                        adaptive_height=adaptive)


async def _adaptive_height(page, cdp, width: int) -> int:
    """AeSlides' height of the slide, measured after everything else: it changes the
    viewport, which the next render sets back."""
    await page.set_viewport_size({"width": width, "height": ADAPTIVE_VIEWPORT_HEIGHT})
    reply = await evaluate_isolated(cdp, FULL_HEIGHT)
    return max(1, min(int(reply["result"]["value"]), MAX_ADAPTIVE_HEIGHT))
