"""The Tailwind slides that `bench/render.py` and `bench/detector_audit.py` render: every asset
is served from the offline cache, every slide fills 1280×720, and exactly the defects the
generator plants are found (a cut title, a pale caption, a card row off the slide)."""

import sys
from pathlib import Path

import pytest

from vsdpo.render import Artifact, RenderConfig, render

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from tailwind_slides import tailwind_slides

PLANTED = {1: {"clipped_text"}, 4: {"low_contrast"}, 5: {"off_canvas"}}


@pytest.mark.usefixtures("asset_cache")
def test_the_slides_render_as_written_with_only_their_planted_defects():
    results = render([Artifact("slide", s) for s in tailwind_slides(8)],
                     RenderConfig(num_browsers=1, pages_per_browser=2))
    for k, result in enumerate(results):
        assert result.ok and result.missed_urls == [], (k, result.error, result.missed_urls)
        root = next(e for e in result.elements if e.kind == "div")
        assert root.bbox == (0, 0, 1280, 720), k
        assert {d.kind for d in result.defects} == PLANTED.get(k, set()), (
            k, [d.message for d in result.defects])
