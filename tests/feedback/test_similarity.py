"""Reference metrics on hand-built renders: 1.0 against itself, lower when visibly different."""

import dataclasses

import pytest

from vsdpo.feedback.similarity_chart import chart_similarity
from vsdpo.feedback.similarity_web import web_similarity
from vsdpo.feedback.slide_rules import slide_rules
from vsdpo.render.types import Element, RenderResult


def chart(bar_color=(31, 119, 180), title="Sales", kind="Rectangle", axes=(80, 60, 580, 420)):
    return RenderResult(ok=True, width=640, height=480, elements=[
        Element("Axes", axes, (0, 5), role="axes"),
        Element("Text", (250, 20, 390, 40), (10, 20), text=title, role="title", parent=0),
        Element("Text", (100, 430, 120, 445), (30, 40), text="Q1", role="xtick_label", parent=0),
        Element(kind, (100, 200, 140, 420), (50, 60), role="data", color=bar_color, parent=0),
        Element(kind, (200, 150, 240, 420), (50, 60), role="data", color=(255, 127, 14), parent=0),
    ])


def page(title="Welcome", body="Our products are made by hand.", color=(0, 0, 0), y=400):
    return RenderResult(ok=True, width=1280, height=720, elements=[
        Element("body", (0, 0, 1280, 720), (0, 6)),
        Element("h1", (100, 50, 600, 100), (10, 14), text=title, color=color, parent=0),
        Element("p", (100, y, 900, y + 30), (30, 33), text=body, parent=0),
    ])


def test_a_chart_compared_with_itself_scores_one_on_every_component():
    assert chart_similarity(chart(), chart()) == {"text": 1.0, "type": 1.0, "color": 1.0,
                                                  "layout": 1.0}


def test_a_chart_with_other_colours_type_title_and_axes_scores_lower_on_each():
    other = chart(bar_color=(44, 160, 44), title="Costs", kind="Line2D", axes=(40, 60, 320, 420))
    score = chart_similarity(other, chart())
    assert all(0.0 <= v < 1.0 for v in score.values()), score
    assert score["type"] == 0.0 and score["text"] == pytest.approx(0.5)


def test_a_page_compared_with_itself_scores_one_on_every_component():
    assert web_similarity(page(), page()) == {"block": 1.0, "text": 1.0, "position": 1.0,
                                              "color": 1.0}


def test_a_page_with_moved_recoloured_reworded_text_scores_lower():
    other = page(title="Welcome!", color=(200, 0, 0), y=650)
    score = web_similarity(other, page())
    assert score["block"] == 1.0  # both blocks still match (fuzzy title)
    assert 0.9 < score["text"] < 1.0 and score["position"] < 1.0 and score["color"] < 1.0


def test_a_page_with_unrelated_text_matches_no_blocks():
    score = web_similarity(page(title="zzzz", body="qqqq"), page())
    assert score == {"block": 0.0, "text": 0.0, "position": 0.0, "color": 0.0}


def test_a_balanced_16_9_slide_without_collisions_passes_every_rule():
    slide = RenderResult(ok=True, width=1280, height=720, elements=[
        Element("h1", (160, 80, 1120, 200), (0, 1), text="Title"),
        Element("p", (160, 384, 1120, 664), (2, 3), text="Body"),
    ])
    # left/right even; 15 rows of 8 px on top vs 35 below: 1 − 20/50 = 0.6
    assert slide_rules(slide) == {"aspect": 1.0, "whitespace": 1.0, "collisions": 1.0,
                                  "balance": pytest.approx(0.5 * (1.0 + 0.6))}


def test_an_overflowing_lopsided_slide_with_colliding_boxes_scores_lower():
    slide = RenderResult(ok=True, width=1280, height=720, elements=[
        Element("h1", (0, 0, 500, 300), (0, 1), text="Title"),
        Element("p", (100, 200, 600, 1000), (2, 3), text="Body"),
    ])
    rules = slide_rules(slide)
    assert rules["aspect"] == pytest.approx((1280 / 1000) / (16 / 9))
    assert rules["collisions"] == 0.0 and rules["balance"] < 0.5


def test_an_empty_slide_scores_zero_on_whitespace_and_balance():
    rules = slide_rules(dataclasses.replace(page(), elements=[]))
    assert rules["whitespace"] == 0.0 and rules["balance"] == 0.0
