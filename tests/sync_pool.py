"""A `RenderPool` driven synchronously from tests: one pool for many renders (a pool start
costs seconds)."""

import asyncio

from vsdpo.render import Artifact, RenderConfig, RenderPool


class SyncPool:
    """A `RenderPool` on a private event loop, driven synchronously from tests."""

    def __init__(self, config: RenderConfig | None = None):
        self.loop = asyncio.new_event_loop()
        self.pool = RenderPool(config)
        self.loop.run_until_complete(self.pool.__aenter__())
        self.loop.run_until_complete(self.pool.start_browsers())

    def render(self, artifacts: list[Artifact]):
        return self.loop.run_until_complete(self.pool.render(artifacts))

    def one(self, domain: str, code: str):
        return self.render([Artifact(domain, code)])[0]

    def close(self):
        self.loop.run_until_complete(self.pool.__aexit__(None, None, None))
        self.loop.close()
