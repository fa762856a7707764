"""A `ChartRenderer` driven synchronously from tests, and the one shared by the chart tests.

Not a conftest: `tests/render/conftest.py` belongs to the HTML tests; the chart test modules
import `shared_renderer` from here so one warm renderer serves the whole session.
"""

import asyncio
import atexit

from vsdpo.render.chart import ChartConfig, ChartRenderer


class SyncChartRenderer:
    """A started `ChartRenderer` on a private event loop."""

    def __init__(self, config: ChartConfig):
        self.loop = asyncio.new_event_loop()
        self.renderer = ChartRenderer(config)
        self.loop.run_until_complete(self.renderer.start())

    def render(self, code: str):
        return self.loop.run_until_complete(self.renderer.render(code))

    def render_many(self, codes: list[str]):
        async def all_of():
            return await asyncio.gather(*(self.renderer.render(c) for c in codes))
        return self.loop.run_until_complete(all_of())

    def close(self) -> None:
        self.loop.run_until_complete(self.renderer.close())
        self.loop.close()


_shared: SyncChartRenderer | None = None


def shared_renderer() -> SyncChartRenderer:
    """Two workers, a generous timeout (the fixtures are real charts on a busy machine)."""
    global _shared
    if _shared is None:
        _shared = SyncChartRenderer(ChartConfig(workers=2, timeout_s=60, cpu_s=60))
        atexit.register(_shared.close)
    return _shared


def render_ok(code: str):
    """The shared renderer's result for `code`, which must run."""
    result = shared_renderer().render(code)
    assert result.ok, result.error
    return result


def blamed(code: str, defect) -> list[str]:
    """The code at each of the defect's spans."""
    return [code[s:e] for s, e in defect.spans]
