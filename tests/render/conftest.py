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
    """JavaScript on for `web` (so hostile scripts really run), off for `slide` (the default)."""
    pool = SyncPool(RenderConfig(num_browsers=1, pages_per_browser=2, timeout_s=4.0,
                                 javascript={"web": True, "slide": False}))
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def assetless_pool():
    """`assets=False`: every CDN request is refused, as before the offline asset cache.
    Module-scoped: other modules count the browsers of this process."""
    pool = SyncPool(RenderConfig(num_browsers=1, pages_per_browser=1, timeout_s=4.0,
                                 assets=False))
    yield pool
    pool.close()
