"""AeSlides' metrics on hand-worked inputs; the expected values are worked out in comments."""

import io
import math

import numpy as np
import pytest
from PIL import Image

from vsdpo.feedback.aeslides_metrics import (aeslides_metrics, aspect_ratio_reward,
                                             centroid_score, content_ratios)
from vsdpo.render.types import Element, RenderResult


@pytest.mark.parametrize("height, expected", [
    (720, 1.0),  # 1280/720 = 16/9 exactly: e = 0
    # r = 1280/800 = 1.6, e = ln(1.6 / 1.7778) = ln(0.9) = -0.105361; 16e² = 0.177614;
    # too tall by 0.105361 - 0.04 = 0.065361, 64 · 0.065361² = 0.273413; exp(-0.451027)
    (800, 0.636977),
    # r = 2.0, e = ln(1.125) = 0.117783; wider, no tall term: exp(-16 · 0.013873) = exp(-0.221967)
    (640, 0.800943),
    (0, 0.0),  # nothing laid out
])
def test_aspect_ratio_reward_is_one_at_16_9_and_falls_faster_for_taller_slides(height, expected):
    assert aspect_ratio_reward(1280, height) == pytest.approx(expected, abs=1e-6)


def test_a_flat_image_has_no_content():
    # a constant image: every local standard deviation is 0 ≤ 2.5
    assert content_ratios(np.full((720, 1280), 200.0)) == {"content_ratio_crop": 0.0,
                                                           "content_ratio_full": 0.0}


def test_a_hard_edge_is_content_within_half_a_box_window_of_it():
    # black left half, white right half. A window 201 px wide straddles the edge for the
    # 201 columns within 100 px of it, where std ≈ 255·√(p(1−p)) ≫ 2.5 for any black share p;
    # the 21 px blur spreads the edge by ≤ 10 px more: 201–221 content columns of 1280.
    gray_HW = np.zeros((720, 1280))
    gray_HW[:, 640:] = 255.0
    ratios = content_ratios(gray_HW)
    assert 201 / 1280 <= ratios["content_ratio_full"] <= 221 / 1280
    # the crop keeps columns 128–1151 (1024) and every content column lies inside it
    assert ratios["content_ratio_crop"] == pytest.approx(ratios["content_ratio_full"] * 1280 / 1024)


def _el(kind, box, text="", parent=None):
    return Element(kind=kind, bbox=box, span=None, text=text, parent=parent)


def test_centroid_of_one_text_box_is_its_centre_in_tolerance_units():
    # centre (200, 125); dx = (200 − 640)/1280 = −0.34375 → /0.0075 = −45.8333;
    # dy = (125 − 360)/720 = −0.326389 → /0.145 = −2.250958; √(45.8333² + 2.250958²)
    score = centroid_score([_el("p", (100, 100, 300, 150), "Title")], 1280, 720)
    assert score == pytest.approx(math.hypot(45.8333333, 2.2509579), abs=1e-5)


def test_mirrored_text_boxes_balance():
    boxes = [_el("p", (100, 335, 300, 385), "Left"), _el("p", (980, 335, 1180, 385), "Right")]
    assert centroid_score(boxes, 1280, 720) == pytest.approx(0.0, abs=1e-9)


def test_an_icon_weighs_half_its_area():
    # text (0..100) weight 5000 at x = 50; empty <i> (1180..1280) weight 0.5·5000 at x = 1230;
    # cx = (50·5000 + 1230·2500)/7500 = 443.333; dx = −196.667/1280 = −0.153646 → −20.486
    elements = [_el("p", (0, 335, 100, 385), "Text"), _el("i", (1180, 335, 1280, 385))]
    assert centroid_score(elements, 1280, 720) == pytest.approx(20.48611, abs=1e-4)


def test_a_container_of_long_text_weighs_its_whole_box():
    # the div's text (30 characters, from its child) is ≥ 24: the div is an item, area 460800
    # at (320, 360), and so is the p, area 64000 at (320, 50); cx = 320 → dx term −33.3333;
    # cy = (360·460800 + 50·64000)/524800 = 322.1951 → dy = −0.052507 → −0.362118
    elements = [_el("div", (0, 0, 640, 720)), _el("p", (0, 0, 640, 100), "x" * 30, parent=0)]
    assert centroid_score(elements, 1280, 720) == pytest.approx(math.hypot(33.33333, 0.362118),
                                                                abs=1e-4)


def test_an_empty_slide_has_no_centroid_and_metrics_skip_what_the_render_lacks():
    assert centroid_score([_el("div", (0, 0, 1280, 720))], 1280, 720) is None
    bare = RenderResult(ok=True, width=1280, height=720,
                        elements=[_el("p", (590, 335, 690, 385), "Centre")])
    assert aeslides_metrics(bare) == {"centroid_score": 0.0, "imbalanced": 0.0}


def test_a_full_render_gets_every_metric():
    buf = io.BytesIO()
    Image.new("RGB", (1280, 720), "white").save(buf, "PNG")
    result = RenderResult(ok=True, image=buf.getvalue(), width=1280, height=720,
                          adaptive_height=800, elements=[_el("p", (100, 100, 300, 150), "T")])
    metrics = aeslides_metrics(result)
    assert metrics["aspect_ratio_reward"] == pytest.approx(0.636977, abs=1e-6)
    assert metrics["aspect_compliant"] == 0.0 and metrics["imbalanced"] == 1.0
    assert metrics["content_ratio_crop"] == metrics["content_ratio_full"] == 0.0
