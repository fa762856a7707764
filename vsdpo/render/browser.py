"""An async pool of reused Chromium pages, driven by Playwright over the system browser.

Starting a browser costs ~0.5 s; a reused page renders a document in milliseconds. The pool
keeps `num_browsers` browser processes with `pages_per_browser` pages each (a slot is one
page in its own context). Each context is recycled every `recycle_every` renders. When the
browser or the page's renderer process dies under a job, the job is retried once on a rebuilt
slot (a fresh context, so a fresh renderer; the browser relaunched if it died): a crash of
the infrastructure loses no artifact, and a page that crashes its renderer itself fails
twice and comes back as an error. Rollouts are untrusted: JavaScript is off unless asked
for, every request except `data:` and the CDN assets of the offline cache (`assets.py`) is
aborted (an image gets a placeholder instead, `placeholder.py`), and each job runs under a
timeout.
"""

import asyncio
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

from vsdpo.render import placeholder
from vsdpo.render.assets import SUBSTITUTED_HEADER, AssetResolver, Served
from vsdpo.render.types import ChromiumDied, RenderTimeout

# Every page's address (served empty): a relative URL (Design2Code's `placeholder.jpg`)
# resolves against it, so its request reaches `_answer` like any other.
PAGE_URL = "https://page.vsdpo.invalid/"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               "--disable-quic", "--disable-extensions", "--disable-dev-shm-usage",
               "--mute-audio", "--disable-default-apps"]
# Chromium keeps a socket in a directory of its own under $TMPDIR, and a socket path holds at
# most 107 bytes: under a longer temp dir (a deep job directory) the browser dies at launch.
_MAX_TMPDIR = 60


def _browser_env() -> dict[str, str] | None:
    """Our environment with TMPDIR=/tmp where our temp dir is too long for Chromium's socket
    path; None (our environment as it is) otherwise."""
    if len(tempfile.gettempdir()) <= _MAX_TMPDIR:
        return None
    return {**os.environ, "TMPDIR": "/tmp"}


def find_chromium(path: str | None = None) -> str:
    """The Chromium executable: `path`, else $VSDPO_CHROMIUM, else a system install."""
    for candidate in (path, os.environ.get("VSDPO_CHROMIUM")):
        if candidate:
            if not Path(candidate).is_file():
                raise FileNotFoundError(f"browser {candidate!r} (RenderConfig.browser_path or "
                                        "$VSDPO_CHROMIUM) does not exist; point it at a "
                                        "Chromium executable")
            return candidate
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("no Chromium found: install it (`apt-get install chromium`) or set "
                            "VSDPO_CHROMIUM / RenderConfig.browser_path to its executable")


async def _answer(route, assets: AssetResolver | None):
    """Inline `data:` passes, a CDN asset in the offline cache is served from it, any other
    image gets a grey placeholder (`placeholder.py`), and everything else is aborted:
    rollouts get no network."""
    url = route.request.url
    if url.startswith("data:"):
        await route.continue_()
        return
    if url == PAGE_URL:
        await route.fulfill(body=b"", content_type="text/html")
        return
    served = assets.resolve(url) if assets is not None else None
    headers = {"Access-Control-Allow-Origin": "*"}  # fonts are CORS requests
    if served is None and route.request.resource_type == "image":
        served = Served(placeholder.CONTENT_TYPE, body=placeholder.placeholder_svg(url))
        headers[placeholder.HEADER] = "1"
    if served is None:
        await route.abort()
        return
    if served.substituted:
        headers[SUBSTITUTED_HEADER] = "; ".join(served.substituted)
    await route.fulfill(path=served.path, body=served.body, content_type=served.content_type,
                        headers=headers)


@dataclass
class Slot:
    """One reusable page: its browser's index, context, page and CDP session."""

    browser: int
    context: object = None
    page: object = None
    cdp: object = None
    javascript: bool = False
    uses: int = 0
    generation: int = -1  # browser generation the context was made on
    died: asyncio.Future | None = None  # done once the page crashed or closed


class BrowserPool:
    """Slots over a few browsers; `run(job, javascript)` runs `job(page, cdp)` on a free one."""

    def __init__(self, executable: str, num_browsers: int, pages_per_browser: int,
                 recycle_every: int, timeout_s: float, assets: AssetResolver | None = None):
        self.executable, self.timeout_s, self.recycle_every = executable, timeout_s, recycle_every
        self.assets = assets  # None: every non-`data:` request is aborted
        self.num_browsers = num_browsers
        self.slots = [Slot(b) for b in range(num_browsers) for _ in range(pages_per_browser)]
        self.browsers: list = [None] * num_browsers
        self.disconnected: list[asyncio.Future | None] = [None] * num_browsers
        self.generation = [0] * num_browsers
        self.locks = [asyncio.Lock() for _ in range(num_browsers)]
        self.free: asyncio.Queue[Slot] = asyncio.Queue()
        self.resets: set[asyncio.Task] = set()
        self.playwright = None

    async def start(self):
        self.playwright = await async_playwright().start()
        await asyncio.gather(*(self._launch(b) for b in range(self.num_browsers)))
        for slot in self.slots:
            self.free.put_nowait(slot)

    async def close(self):
        await asyncio.gather(*self.resets)
        for b in self.browsers:
            if b is not None:
                try:
                    await asyncio.wait_for(b.close(), 10)
                except (PlaywrightError, asyncio.TimeoutError):
                    pass
        if self.playwright is not None:
            await self.playwright.stop()

    async def _launch(self, b: int):
        self.browsers[b] = await self.playwright.chromium.launch(
            executable_path=self.executable, args=LAUNCH_ARGS, headless=True,
            env=_browser_env(), timeout=30_000)
        self.disconnected[b] = _fired(self.browsers[b], "disconnected")
        self.generation[b] += 1

    async def _relaunch_if_dead(self, b: int, seen_generation: int):
        async with self.locks[b]:  # one relaunch however many slots noticed the crash
            if self.generation[b] != seen_generation or await self._answers(b):
                return
            try:
                await asyncio.wait_for(self.browsers[b].close(), 5)
            except (PlaywrightError, asyncio.TimeoutError):
                pass
            await self._launch(b)

    async def _answers(self, b: int) -> bool:
        """Whether browser `b` answers a round trip. Not just `is_connected()`: a page's close
        event can reach us before the driver's word that its browser died."""
        async def round_trip():
            await (await self.browsers[b].new_browser_cdp_session()).detach()
        try:
            await _unless_died(round_trip(), self.disconnected[b], "the browser")
        except (PlaywrightError, ChromiumDied):
            return False
        return True

    async def _open(self, slot: Slot, javascript: bool):
        """A fresh context and page for the slot (closing the old one)."""
        await self._discard(slot)
        b = slot.browser
        await self._relaunch_if_dead(b, self.generation[b])
        slot.generation = self.generation[b]
        await _unless_died(self._new_page(slot, self.browsers[b], javascript),
                           self.disconnected[b], "the browser")

    async def _new_page(self, slot: Slot, browser, javascript: bool):
        slot.context = await browser.new_context(
            java_script_enabled=javascript, viewport={"width": 1280, "height": 800},
            service_workers="block", offline=True, accept_downloads=False)
        await slot.context.route("**/*", lambda route: _answer(route, self.assets))
        slot.page = await slot.context.new_page()
        await slot.page.goto(PAGE_URL)  # `set_content` keeps the document's address
        slot.died = _fired(slot.page, "crash", "close")
        slot.page.set_default_timeout(self.timeout_s * 1000)
        slot.cdp = await slot.context.new_cdp_session(slot.page)
        slot.javascript, slot.uses = javascript, 0

    async def _discard(self, slot: Slot):
        if slot.context is not None:
            try:
                await asyncio.wait_for(slot.context.close(), 5)
            except (PlaywrightError, asyncio.TimeoutError):
                pass  # a dead browser: the relaunch below replaces it
        slot.context = slot.page = slot.cdp = None

    async def _ready(self, slot: Slot, javascript: bool):
        stale = (slot.page is None or slot.died.done() or slot.javascript != javascript
                 or slot.uses >= self.recycle_every
                 or slot.generation != self.generation[slot.browser]
                 or not self.browsers[slot.browser].is_connected())
        if stale:
            await self._open(slot, javascript)
        slot.uses += 1

    async def run(self, job, javascript: bool, scripted: bool = True):
        """`await job(page, cdp)` on a free slot; a crash is retried once on a rebuilt slot.

        Raises `RenderTimeout` when the job outlives the timeout, or the second failure
        (`ChromiumDied` or Playwright's error). A slot whose job raised is rebuilt before its
        next use (scripts of one artifact can leave globals behind that `set_content` does
        not reset). `scripted=False` says the job's document can neither run a script nor
        navigate (`could_run_script`), so the slot goes back without a new document.
        """
        for attempt in range(2):
            slot = await self.free.get()
            try:
                await asyncio.wait_for(self._ready(slot, javascript), self.timeout_s + 30)
                return await asyncio.wait_for(
                    _unless_died(job(slot.page, slot.cdp), slot.died, "the page's renderer"),
                    self.timeout_s)
            except (asyncio.TimeoutError, PlaywrightTimeout):
                await self._discard(slot)
                raise RenderTimeout(f"render timed out after {self.timeout_s:g}s") from None
            except (PlaywrightError, ChromiumDied):
                await self._discard(slot)
                if attempt == 1:
                    raise
            except Exception:  # e.g. the probe failed: that page state is spent
                await self._discard(slot)
                raise
            finally:
                if scripted:
                    self._release(slot)
                else:
                    self.free.put_nowait(slot)

    def _release(self, slot: Slot):
        """Free the slot once it holds an empty document, without holding up the job's result.
        `set_content` keeps the document object, so an artifact's workers, timers and animation
        frames would run on while the slot idles, and through every later artifact until the
        context is recycled. A navigation to `PAGE_URL` ends them (and brings back a page whose
        script navigated away); a page too busy to navigate is discarded."""
        async def reset():
            if slot.page is not None:
                try:
                    await asyncio.wait_for(slot.page.goto(PAGE_URL), self.timeout_s)
                except (PlaywrightError, asyncio.TimeoutError):
                    await self._discard(slot)
            self.free.put_nowait(slot)
        task = asyncio.create_task(reset())
        self.resets.add(task)
        task.add_done_callback(self.resets.discard)


# What can start a script or a navigation in a document: a script element, an event-handler
# attribute, a `javascript:` URL, a nested document, a `<meta>` refresh. Text that merely
# looks like one (`on sale=`) only costs the slot a new document.
_SCRIPT_SOURCES = re.compile(
    r"<script|\bon[a-z]+\s*=|javascript:|<iframe|<frame|<object|<embed|<meta", re.IGNORECASE)


def could_run_script(html: str) -> bool:
    """Whether a script or a refresh could run in `html`; without either, the document leaves
    no workers, timers, globals or pending navigation behind for the next artifact."""
    return _SCRIPT_SOURCES.search(html) is not None


def _fired(emitter, *events: str) -> asyncio.Future:
    """A future set to the event's name once `emitter` emits one of `events`."""
    fired = asyncio.get_running_loop().create_future()
    for event in events:
        emitter.on(event, lambda _, event=event: fired.done() or fired.set_result(event))
    return fired


async def _unless_died(work, died: asyncio.Future, what: str):
    """`await work`, abandoned with `ChromiumDied` if `died` is set first.

    Playwright fails most pending calls when a browser or renderer dies, but not all: a CDP
    call to a crashed page and a `new_page` on a killed browser never answer. Without this
    they would wait out the timeout, and the artifact would be lost to it.
    """
    work = asyncio.ensure_future(work)
    try:
        await asyncio.wait((work, died), return_when=asyncio.FIRST_COMPLETED)
    finally:
        work.cancel()  # a no-op once it is done
    if work.done() and not work.cancelled():
        return work.result()
    raise ChromiumDied(f"{what} died ({died.result()}) during the render")
