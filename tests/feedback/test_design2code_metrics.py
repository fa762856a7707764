"""Design2Code's visual score, rule by rule, on hand-worked blocks (each expected value is
worked out from Design2Code's definition in the comment above it), then on pages rendered in
real Chromium through our render path."""

import asyncio

import numpy as np
import pytest

from vsdpo.apps.evaluate import score_samples
from vsdpo.config import Config
from vsdpo.feedback.design2code_metrics import (Block, block_scores, design2code_scores,
                                                page_blocks)
from vsdpo.render import Artifact, RenderConfig, render
from vsdpo.render.types import Element, RenderResult
from vsdpo.tasks.task import Task

BLACK = np.zeros(3)


def block(text, box, color=BLACK):
    return Block(text, box, np.asarray(color, dtype=float))


def test_block_match_weighs_blocks_by_area_not_text_length():
    pred = [block("hello world", (0, 0, 0.5, 0.2)), block("zzzz", (0, 0.5, 0.2, 0.1))]
    ref = [block("hello world", (0, 0, 0.5, 0.2))]
    # matched area 0.1 + 0.1, unmatched 0.02: 0.2 / 0.22 = 0.90909 (by length: 22/26 = 0.846)
    assert block_scores(pred, ref) == pytest.approx(
        {"block": 0.2 / 0.22, "text": 1.0, "position": 1.0, "color": 1.0})


def test_consecutive_blocks_are_merged_when_the_merge_matches_better():
    pred = [block("hello", (0, 0, 0.2, 0.1), (0, 0, 0)),
            block("world", (0.2, 0, 0.2, 0.1), (100, 100, 100))]
    ref = [block("hello world", (0, 0, 0.4, 0.1), (50, 50, 50))]
    # each half has ratio 2·5/16 = 0.625; merged, "hello world" has 1.0: the mean assigned cost
    # falls from −0.625 to −1.0 (gain 0.375 > 0.05), so they merge: box (0, 0, 0.4, 0.1) and
    # colour ⌊(0 + 100)/2⌋ = 50, equal to the reference's on every score
    assert block_scores(pred, ref) == pytest.approx(
        {"block": 1.0, "text": 1.0, "position": 1.0, "color": 1.0})


def test_blocks_are_paired_by_an_optimal_assignment_not_best_first():
    pred = [block("about us", (0, 0, 0.1, 0.1)), block("about home", (0, 0.2, 0.1, 0.1))]
    ref = [block("about", (0, 0, 0.1, 0.1)), block("contact us", (0, 0.2, 0.1, 0.1))]
    # ratios [[10/13, 10/18], [10/15, 6/20]]; best-first pairs (0,0) = 0.769 and drops
    # (1,1) = 0.3 < 0.5. With the context bonus (0.1 × the two lowest neighbouring costs) the costs
    # are [[−0.891, −0.699], [−0.799, −0.3]]: the optimum is (0,1) + (1,0) = −1.498, so both
    # pair, text = (5/9 + 2/3) / 2 = 0.6111, and the swapped rows move by 0.2: position 0.8
    assert block_scores(pred, ref) == pytest.approx(
        {"block": 1.0, "text": (5 / 9 + 2 / 3) / 2, "position": 0.8, "color": 1.0})


def test_position_is_one_minus_the_larger_centre_shift():
    pred = [block("price list", (0.1, 0.1, 0.2, 0.1))]
    ref = [block("price list", (0.3, 0.2, 0.2, 0.1))]
    # centres (0.2, 0.15) and (0.4, 0.25): 1 − max(0.2, 0.1) = 0.8
    assert block_scores(pred, ref)["position"] == pytest.approx(0.8)


def test_colour_is_one_minus_ciede2000_over_100():
    pred = [block("a", (0, 0, 0.1, 0.1), (0, 0, 0)), block("b", (0, 0.3, 0.1, 0.1), (0, 0, 0))]
    ref = [block("a", (0, 0, 0.1, 0.1), (255, 255, 255)),
           block("b", (0, 0.3, 0.1, 0.1), (119, 119, 119))]
    # black/white: ΔE00 = 100 → 0. black/grey 119: L* = 50.04 (a* = b* = 0), so ΔE00 =
    # ΔL / S_L with S_L = 1 + 0.015·(25.02 − 50)² / √(20 + (25.02 − 50)²) = 1.3688:
    # 36.56 → 0.6344; the mean is 0.3172
    assert block_scores(pred, ref)["color"] == pytest.approx((0.0 + 0.6344) / 2, abs=1e-3)


def test_a_page_without_blocks_scores_zero_even_against_another_empty_page():
    empty = RenderResult(ok=True, width=1280, height=720)
    # Design2Code: no block on a side → (0, 0, 0, 0, clip), final 0.2 × clip
    assert design2code_scores(empty, empty, clip=0.5) == pytest.approx(
        {"block": 0.0, "text": 0.0, "position": 0.0, "color": 0.0, "final": 0.1})
    assert block_scores([block("x", (0, 0, 0.1, 0.1))], [block("qqqq", (0, 0, 0.1, 0.1))]) \
        == dict.fromkeys(("block", "text", "position", "color"), 0.0)  # no pair ≥ 0.5


def test_the_final_score_is_a_fifth_of_the_four_scores_and_clip():
    line = Element("p", (0, 0, 640, 144), None, text="hello world", full_text="hello world",
                   text_rects=[(0, 0, 640, 144)], parent=0)
    page = RenderResult(ok=True, width=1280, height=720, elements=[
        Element("body", (0, 0, 1280, 720), None), line])
    # identical pages: four scores of 1 and clip 0.6 → 0.2 × (4 + 0.6) = 0.92
    assert design2code_scores(page, page, clip=0.6)["final"] == pytest.approx(0.92)


def test_text_joins_a_text_tag_with_its_plain_descendants_and_drops_unowned_text():
    def el(kind, text, parent, y):
        return Element(kind, (0, y, 200, y + 20), None, text=text, full_text=text,
                       text_rects=[(0, y, 200, y + 20)] if text else [], parent=parent,
                       color=(10, 20, 30))
    page = RenderResult(ok=True, width=1280, height=720, elements=[
        el("body", "", None, 0), el("div", "Hello", 0, 0), el("em", "World", 1, 20),
        el("section", "orphan", 0, 40), el("p", "Last", 0, 60)])
    # no screenshot: boxes are the line boxes, colours the CSS colours; `section` is no
    # Design2Code text tag and no ancestor is, so its text is painted black and never found
    blocks = page_blocks(page)
    assert [b.text for b in blocks] == ["hello world", "last"]
    assert blocks[0].box == pytest.approx((0, 0, 200 / 1280, 40 / 720))
    assert blocks[0].color.tolist() == [10, 20, 30]


PAGE = ('<body style="margin:0;font:24px sans-serif"><div style="padding:20px">'
        '<p style="color:rgb(200,0,0)">Hello <em>there</em></p>'
        '<p style="visibility:hidden">Hidden words</p><div>Second block</div>'
        '<p>{long}</p></div></body>')
LONG = "word " * 60  # 300 characters


@pytest.fixture(scope="module")
def pages():
    variants = [PAGE.format(long=LONG), PAGE.format(long=LONG + "tail"),
                PAGE.format(long=LONG).replace("rgb(200,0,0)", "rgb(0,0,200)")]
    return render([Artifact("web", v) for v in variants], RenderConfig(num_browsers=1))


def test_real_blocks_come_from_painted_glyphs_with_their_rendered_colour(pages):
    blocks = page_blocks(pages[0])
    # the hidden paragraph paints nothing: no block; the red glyphs' mean is near rgb(200,0,0)
    assert [b.text for b in blocks] == ["hello there", "second block", LONG.strip()]
    assert np.abs(blocks[0].color - [200, 0, 0]).max() <= 12
    p = next(e for e in pages[0].elements if e.text.startswith("Hello"))
    _, y0, _, y1 = p.text_rects[0]
    # the glyph box sits inside the line box; boxes are fractions of the document's height
    # (no doctype: quirks mode stretches the root to the 800 px viewport)
    height = max(720, pages[0].elements[0].bbox[3])
    top, bottom = blocks[0].box[1] * height, (blocks[0].box[1] + blocks[0].box[3]) * height
    assert y0 <= top < bottom <= y1 and bottom - top < y1 - y0


def test_the_text_score_sees_past_the_probes_200_character_cut(pages):
    long = next(e for e in pages[0].elements if e.full_text.startswith("word"))
    assert len(long.text) == 200 and len(long.full_text) == len(LONG.strip())
    same, edited, recoloured = (design2code_scores(p, pages[0]) for p in pages)
    assert same == pytest.approx({"block": 1.0, "text": 1.0, "position": 1.0, "color": 1.0,
                                  "final": 0.8})
    assert edited["text"] < 1.0 and edited["color"] == 1.0
    assert recoloured["color"] < 1.0 and recoloured["text"] == 1.0


def test_eval_reports_design2codes_final_score_as_the_design2code_mean():
    page = PAGE.format(long=LONG)
    task = Task("page", "web", "Reproduce the page.", reference_code=page)
    cfg = Config(render=RenderConfig(num_browsers=1))
    row, other = asyncio.run(score_samples(cfg, [task, task], [page, "<p>Other words</p>"]))
    # no CLIP model: 0.2 × (1 + 1 + 1 + 1 + 0)
    assert row["design2code/mean"] == pytest.approx(0.8) and "design2code/clip" not in row
    assert row["design2code/block"] == 1.0 and other["design2code/mean"] < 0.8
