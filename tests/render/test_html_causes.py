"""Blame reaches the cause: the declaration that decides a defect, wherever it sits (inherited
from an ancestor, imposed by a constraining one, a utility class, a cascade winner), and not
an unrelated ancestor's. Real Chromium (the shared `html_pool`); one small page per cause."""

import pytest

from vsdpo.render.utility_classes import utility_longhands


def blamed(code: str, result, kind: str) -> set[str]:
    """The code at every span blamed by the defects of one kind (at least one must exist)."""
    assert result.ok, result.error
    found = [d for d in result.defects if d.kind == kind]
    assert found, f"no {kind} among {[(d.kind, d.message) for d in result.defects]}"
    return {code[a:b] for d in found for a, b in d.spans}


BULLETS = "".join(f"<li>Bullet number {k} with some words</li>\n" for k in range(12))
SLIDE = f"""<body style="margin:0;font-family:sans-serif">
<div style="width:1280px;height:720px;padding:40px;box-sizing:border-box;font-size:16px">
<h1 style="font-size:56px;margin:0 0 20px">Quarterly review</h1>
<ul style="font-size:44px;line-height:1.5;margin:0">
{BULLETS}</ul></div></body>"""


def test_bullets_pushed_off_the_slide_blame_the_lists_font_size_not_an_outer_one(html_pool):
    spans = blamed(SLIDE, html_pool.one("slide", SLIDE), "off_canvas")
    assert "font-size:44px" in spans and "line-height:1.5" in spans and "<li>" in spans
    assert "font-size:16px" not in spans and "font-size:56px" not in spans


LINE_HEIGHT = """<div style="line-height:1.2"><div style="line-height:3">
<p style="width:200px;height:60px;margin:0;font-size:16px">Two lines of text that wrap here</p>
</div></div>"""


def test_text_too_tall_for_its_box_blames_the_inherited_line_height(html_pool):
    spans = blamed(LINE_HEIGHT, html_pool.one("web", LINE_HEIGHT), "text_overflow")
    assert "line-height:3" in spans and "height:60px" in spans
    assert "line-height:1.2" not in spans


NOWRAP = """<div style="white-space:normal;width:900px"><div style="white-space:nowrap">
<p style="width:200px;margin:0">A long sentence that will not wrap in this box</p>
</div></div>"""


def test_text_kept_on_one_line_by_an_ancestor_blames_its_nowrap_and_the_width(html_pool):
    spans = blamed(NOWRAP, html_pool.one("web", NOWRAP), "text_overflow")
    assert "white-space:nowrap" in spans and "width:200px" in spans
    assert "white-space:normal" not in spans and "width:900px" not in spans


CONTRAST = """<section style="color:#111"><div style="color:#ddd">
<p style="margin:0;font-size:16px">Faint caption text</p></div></section>"""


def test_low_contrast_text_blames_the_colour_it_inherits_not_an_outer_one(html_pool):
    spans = blamed(CONTRAST, html_pool.one("web", CONTRAST), "low_contrast")
    assert "color:#ddd" in spans and "color:#111" not in spans


CLIPPED = """<section style="width:600px;height:400px">
<div style="width:200px;height:40px;overflow:hidden">
<p style="margin:0;font-size:20px">A paragraph long enough to wrap onto several lines here</p>
</div></section>"""


def test_text_cut_by_a_parents_fixed_height_blames_that_height_and_its_overflow(html_pool):
    spans = blamed(CLIPPED, html_pool.one("web", CLIPPED), "clipped_text")
    assert "height:40px" in spans and "overflow:hidden" in spans
    assert '<p style="margin:0;font-size:20px">' in spans
    assert "height:400px" not in spans and "width:600px" not in spans


FLEX_ROW = """<div style="width:1000px"><div style="display:flex;width:300px;gap:10px">
<div style="flex:1;min-width:0"><p style="margin:0;font-size:20px">Supercalifragilistic</p></div>
<div style="flex:1;min-width:0"><p style="margin:0;font-size:20px">Short</p></div>
</div></div>"""


def test_an_item_squeezed_by_a_flex_rows_width_blames_the_rows_width(html_pool):
    spans = blamed(FLEX_ROW, html_pool.one("web", FLEX_ROW), "text_overflow")
    assert "width:300px" in spans and "width:1000px" not in spans


SPECIFICITY = """<style>
#card p { color: #ddd; }
p { color: #111; }
</style><div id="card"><p>Faint text on white</p></div>"""
IMPORTANT = """<style>
p { color: #ddd !important; }
</style><p style="color:#111">Faint text on white</p>"""


@pytest.mark.parametrize("page,winner,loser", [
    pytest.param(SPECIFICITY, "color: #ddd", "color: #111", id="specificity"),
    pytest.param(IMPORTANT, "color: #ddd !important", "color:#111", id="important")])
def test_the_cascade_winner_is_blamed_not_a_later_or_inline_loser(html_pool, page, winner, loser):
    spans = blamed(page, html_pool.one("web", page), "low_contrast")
    assert winner in spans and loser not in spans


TAILWIND = f"""<script src="https://cdn.tailwindcss.com"></script>
<body class="m-0"><div class="w-[1280px] h-[720px] p-10 text-base">
<ul class="text-red-600 text-6xl m-0">
{BULLETS}</ul></div></body>"""
BOOTSTRAP = f"""<link href="https://cdn.jsdelivr.net/npm/bootstrap@5.3.0/dist/css/bootstrap.min.css"
rel="stylesheet"><body class="m-0"><div class="p-5 fs-6"><ul class="fs-1 text-danger">
{BULLETS}</ul></div></body>"""


@pytest.mark.usefixtures("asset_cache")
@pytest.mark.parametrize("page,cause,unrelated", [
    pytest.param(TAILWIND, "text-6xl", ("text-base", "text-red-600"), id="tailwind"),
    pytest.param(BOOTSTRAP, "fs-1", ("fs-6", "text-danger"), id="bootstrap")])
def test_a_utility_text_size_class_on_an_ancestor_is_blamed_by_its_token(html_pool, page, cause,
                                                                         unrelated):
    spans = blamed(page, html_pool.one("slide", page), "off_canvas")
    assert cause in spans and not spans & set(unrelated)


@pytest.mark.parametrize("token,longhands,important", [
    ("text-4xl", ("font-size", "line-height"), False), ("text-[44px]", ("font-size",), False),
    ("text-red-500", ("color",), False), ("text-center", (), False),
    ("md:whitespace-nowrap", ("white-space",), False), ("hover:text-lg", (), False),
    ("!leading-tight", ("line-height",), True), ("fs-1", ("font-size",), True),
    ("max-h-40", ("max-height",), False), ("w-25", ("width",), False),
    ("overflow-hidden", ("overflow-x", "overflow-y"), False)])
def test_utility_tokens_map_to_the_longhands_they_set(token, longhands, important):
    assert utility_longhands(token)[::2] == (longhands, important)
