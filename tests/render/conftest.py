"""One Chromium render pool shared by the HTML render tests (a browser start costs ~1 s)."""

import asyncio

import pytest

from vsdpo.render import Artifact, RenderConfig, RenderPool


class SyncPool:
    """A `RenderPool` on a private event loop, driven synchronously from tests."""

    def __init__(self, config: RenderConfig):
        self.loop = asyncio.new_event_loop()
        self.pool = RenderPool(config)
        self.loop.run_until_complete(self.pool.__aenter__())
        self.loop.run_until_complete(self.pool.start_browsers())

    def render(self, artifacts):
        return self.loop.run_until_complete(self.pool.render(artifacts))

    def one(self, domain: str, code: str):
        return self.render([Artifact(domain, code)])[0]

    def close(self):
        self.loop.run_until_complete(self.pool.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture(scope="session")
def html_pool():
    """The default config (JavaScript on, so hostile scripts really run), one browser."""
    pool = SyncPool(RenderConfig(num_browsers=1, pages_per_browser=2, timeout_s=4.0))
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def assetless_pool():
    """No assets, no scripts: every CDN request is refused and page scripts never run, as
    before the offline asset cache. Module-scoped: other modules count this process's browsers."""
    pool = SyncPool(RenderConfig(num_browsers=1, pages_per_browser=1, timeout_s=4.0,
                                 assets=False, javascript={"web": False, "slide": False}))
    yield pool
    pool.close()
