"""Chinese, Japanese, Korean and emoji text render as glyphs, not boxes: a character no
installed font covers is drawn as the same 'tofu' box as every other such character, so two
different characters drawing the same pixels means the font is missing."""

import io

import pytest
from PIL import Image, ImageChops

from vsdpo.render import Artifact, RenderConfig, render

PAIRS = {"Chinese": ("中", "文"), "Japanese": ("あ", "カ"), "Korean": ("한", "글"),
         "emoji": ("😀", "🚀")}


def _page(char: str) -> str:
    return f'<body style="margin:0"><span style="font-size:96px">{char}</span></body>'


@pytest.fixture(scope="module")
def drawn():
    chars = [c for pair in PAIRS.values() for c in pair]
    results = render([Artifact("web", _page(c)) for c in chars], RenderConfig(num_browsers=1))
    return {c: Image.open(io.BytesIO(r.image)).convert("RGB").crop((0, 0, 200, 140))
            for c, r in zip(chars, results)}


@pytest.mark.parametrize("script", sorted(PAIRS))
def test_each_script_draws_distinct_glyphs(drawn, script):
    a, b = PAIRS[script]
    assert ImageChops.difference(drawn[a], drawn[b]).getbbox() is not None, (
        f"{script}: {a} and {b} draw the same pixels (missing font boxes); scripts/setup.sh "
        "installs fonts-noto-cjk and fonts-noto-color-emoji")
    assert drawn[a].convert("L").getextrema()[0] < 128, f"{script}: {a} drew nothing"
