"""Each HTML defect kind on a hand-made page, with the code it must blame; clean pages report
nothing. Real Chromium (the shared `html_pool`)."""

import pytest


def blamed(code: str, defect) -> list[str]:
    return [code[a:b] for a, b in defect.spans]


def only(result, kind: str):
    assert result.ok, result.error
    found = [d for d in result.defects if d.kind == kind]
    assert found, f"no {kind} among {[(d.kind, d.message) for d in result.defects]}"
    return found


OVERLAP = """<html><body><div style="position:relative;height:120px">
<p style="position:absolute;top:10px;left:10px;margin:0;font-size:20px">Quarterly revenue</p>
<p style="position:absolute;top:16px;left:30px;margin:0;font-size:20px">Growth by region</p>
</div></body></html>"""


def test_overlapping_texts_blame_both_tags_and_the_offsets(html_pool):
    (d,) = only(html_pool.one("web", OVERLAP), "overlap")
    spans = blamed(OVERLAP, d)
    assert any(s.startswith("<p style") and "top:10px" in s for s in spans)
    assert any(s.startswith("<p style") and "top:16px" in s for s in spans)
    assert "top:16px" in spans and "left:30px" in spans
    assert "overlap by" in d.message and 0 < d.severity <= 1


OVERFLOW = """<html><body>
<div class="card" style="width:180px; white-space:nowrap">Supercalifragilistic expialidocious overflow</div>
</body></html>"""


def test_text_wider_than_its_fixed_width_box_blames_the_width(html_pool):
    (d,) = only(html_pool.one("web", OVERFLOW), "text_overflow")
    spans = blamed(OVERFLOW, d)
    assert "width:180px" in spans and "white-space:nowrap" in spans
    assert any(s.startswith('<div class="card"') for s in spans)
    assert "in a 180px box" in d.message


CLIPPED = """<html><head><style>
.label { width: 120px; overflow: hidden; white-space: nowrap; }
</style></head><body><div class="label">A label far too long for its box</div></body></html>"""


def test_text_cut_by_overflow_hidden_blames_the_style_rule(html_pool):
    (d,) = only(html_pool.one("web", CLIPPED), "clipped_text")
    spans = blamed(CLIPPED, d)
    assert "overflow: hidden" in spans and "width: 120px" in spans
    assert '<div class="label">' in spans
    assert "overflow:hidden" in d.message


OFF_SLIDE = """<html><body style="margin:0">
<h1 style="margin:40px">Roadmap</h1>
<div style="position:absolute; left:1100px; top:300px; width:400px; height:200px; background:#2a6">Q3</div>
</body></html>"""


def test_a_box_past_the_slide_edge_is_off_canvas_and_blames_its_position(html_pool):
    (d,) = only(html_pool.one("slide", OFF_SLIDE), "off_canvas")
    spans = blamed(OFF_SLIDE, d)
    assert "left:1100px" in spans and "width:400px" in spans
    assert "1280×720" in d.message and d.severity == pytest.approx(220 / 400, abs=0.02)


WIDE_PAGE = """<html><body><img src="data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs=" style="width:1700px; height:40px; display:block"><p>ok</p></body></html>"""


def test_content_beyond_the_viewport_width_is_off_canvas_on_a_web_page(html_pool):
    (d,) = only(html_pool.one("web", WIDE_PAGE), "off_canvas")
    assert "width:1700px" in blamed(WIDE_PAGE, d)
    assert "1280px-wide viewport" in d.message


LOW_CONTRAST = """<html><body><div style="background:#333; padding:10px">
<p style="color:#555">Fine print nobody can read</p></div></body></html>"""


def test_dark_grey_on_charcoal_is_low_contrast_and_blames_both_colours(html_pool):
    (d,) = only(html_pool.one("web", LOW_CONTRAST), "low_contrast")
    spans = blamed(LOW_CONTRAST, d)
    assert "color:#555" in spans and "background:#333" in spans
    assert "below 4.5:1" in d.message


def test_oklch_colours_are_measured_like_rgb_ones(html_pool):
    """Tailwind v4's palette is oklch(): gray-200 (#e5e7eb) on gray-50 (#f9fafb)."""
    page = ('<div style="background:oklch(98.5% 0.002 247.839);padding:10px">'
            '<p style="color:oklch(92.8% 0.006 264.531)">Caption</p></div>')
    (d,) = only(html_pool.one("web", page), "low_contrast")
    assert "of rgb(229, 231, 235) on rgb(249, 250, 251)" in d.message
    dark = page.replace("92.8% 0.006 264.531", "27.8% 0.033 256.848")  # gray-800
    assert html_pool.one("web", dark).defects == []


SR_ONLY = """<style>.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;\
clip:rect(0,0,0,0);white-space:nowrap}</style>
<a class="sr-only" href="#main">Skip to main content</a><p id="main">Welcome</p>"""


def test_screen_reader_only_text_is_not_a_defect_but_a_clipped_label_is(html_pool):
    assert html_pool.one("web", SR_ONLY).defects == []
    cut = SR_ONLY.replace("width:1px;height:1px", "width:40px;height:20px")
    (d,) = only(html_pool.one("web", cut), "clipped_text")
    assert "Skip to main content" in d.message


OVERLAY = """<p style="margin:40px;font-size:20px">The page text under the banner</p>
<div style="position:fixed;top:30px;left:0;right:0;background:#eee;padding:10px">
<p style="margin:0;font-size:20px">We use cookies</p></div>"""


def test_a_fixed_banner_over_the_page_is_not_overlap_but_two_positioned_texts_are(html_pool):
    assert html_pool.one("web", OVERLAY).defects == []
    absolute = OVERLAY.replace("position:fixed", "position:absolute")
    only(html_pool.one("web", absolute), "overlap")


CAPTION = """<div style="position:relative;width:400px">
<img src="data:," style="display:block;width:400px;height:200px;background:#345">
<p style="position:absolute;top:80px;left:20px;margin:0;color:#fff;font-size:24px">Caption</p>
</div>"""


def test_a_caption_over_an_image_is_not_overlap_but_an_image_over_text_is(html_pool):
    assert [d.kind for d in html_pool.one("web", CAPTION).defects] == []
    covered = ('<p style="margin:0;font-size:24px">Hidden text</p><img src="data:," '
               'style="display:block;width:300px;height:100px;margin-top:-20px;position:relative">')
    only(html_pool.one("web", covered), "overlap")


def test_a_floating_label_inside_its_field_is_not_overlap(html_pool):
    page = ('<div style="position:relative;width:300px"><input style="width:280px;height:40px">'
            '<label style="position:absolute;left:8px;top:12px">Your email here</label></div>')
    assert html_pool.one("web", page).defects == []


LINE_HEIGHT_ONE = """<div style="width:600px;height:48px;font-size:48px;line-height:1;\
font-family:'Noto Serif CJK SC'">团队介绍 Team</div>"""


def test_a_line_height_of_one_is_not_overflow_but_a_second_line_is(html_pool):
    """A line rect spans the font's ascent + descent (~1.45 em for a CJK face), taller than
    the 48px box, while the glyphs stay inside it; a wrapped second line does leave it."""
    result = html_pool.one("web", LINE_HEIGHT_ONE)
    (text,) = [e for e in result.elements if e.text]
    assert text.bbox[3] - text.bbox[1] == 48 and result.defects == []
    wrapped = LINE_HEIGHT_ONE.replace("width:600px", "width:200px")
    (d,) = only(html_pool.one("web", wrapped), "text_overflow")
    assert "px tall in a 48px box" in d.message


MISALIGNED = """<html><head><style>.row { height: 30px; }</style></head><body>
<div class="row">One</div>
<div class="row" style="margin-left:3px">Two</div>
<div class="row">Three</div>
</body></html>"""


def test_a_sibling_three_pixels_off_is_misaligned_and_blames_its_margin(html_pool):
    (d,) = only(html_pool.one("web", MISALIGNED), "misaligned")
    spans = blamed(MISALIGNED, d)
    assert "margin-left:3px" in spans
    assert "3px off" in d.message


@pytest.mark.parametrize("code", ["", "<html><body><div><span>   </span></div></body></html>",
                                  "<body style='background:#eee'><div></div></body>"])
def test_a_page_with_nothing_drawn_is_blank(html_pool, code):
    result = html_pool.one("slide", code)
    assert [d.kind for d in result.defects] == ["blank"]


CLEAN_PAGE = """<!DOCTYPE html><html><head><style>
body { font-family: sans-serif; margin: 24px; color: #222; }
nav a { margin-right: 16px; color: #0645ad; }
.btn { background: #064; color: #fff; padding: 6px 12px; border: 0; font-size: 18px; font-weight: bold; }
</style></head><body>
<nav><a href="#a">Home</a><a href="#b">Docs</a></nav>
<h1>Release notes</h1>
<p>This release speeds up rendering and fixes two layout bugs.</p>
<ul><li>Faster pages</li><li>Smaller images</li></ul>
<button class="btn">Download</button>
</body></html>"""

CLEAN_SLIDE = """<html><body style="margin:0;width:1280px;height:720px;background:#fff">
<h1 style="margin:60px 80px 20px;font-size:48px;color:#123">Quarterly review</h1>
<ul style="margin:0 80px;font-size:28px;color:#333">
<li>Revenue up 12%</li><li>Two new regions</li><li>Hiring on plan</li></ul>
</body></html>"""


@pytest.mark.parametrize("domain,code", [("web", CLEAN_PAGE), ("slide", CLEAN_SLIDE)])
def test_clean_pages_report_no_defects(html_pool, domain, code):
    result = html_pool.one(domain, code)
    assert result.ok, result.error
    assert result.defects == [], [(d.kind, d.message) for d in result.defects]


CLIPPED_SLIDE = """<html><body style="margin:0; overflow:hidden">
<h1 style="margin:40px">Agenda</h1>
<p style="position:absolute; top:690px; left:80px; font-size:40px; margin:0">Falls off the bottom</p>
</body></html>"""


def test_a_slide_whose_body_hides_overflow_still_reports_content_past_its_edge(html_pool):
    (d,) = only(html_pool.one("slide", CLIPPED_SLIDE), "off_canvas")
    assert "top:690px" in blamed(CLIPPED_SLIDE, d)
