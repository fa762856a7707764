"""One Chromium render pool shared by the HTML render tests (a browser start costs ~1 s)."""

import pytest
from sync_pool import SyncPool

from vsdpo.render import RenderConfig


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
