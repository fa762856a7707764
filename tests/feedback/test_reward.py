"""Sequence reward: r_exec × r_content × r_visual, in [0, 1], with every term exposed."""

import math

import pytest

from vsdpo.feedback import RewardConfig, reward, reward_components
from vsdpo.render.types import Defect, Element, RenderResult
from vsdpo.tasks import generate_tasks
from vsdpo.tasks.programs import parse_prompt, split_list
from vsdpo.tasks.task import Task

CHART = Task("t0", "chart", "Plot sales per quarter.")
SLIDE = Task("t1", "slide", "Make a title slide.")


def rendered(*defects, elements=()):
    return RenderResult(ok=True, image=b"png", width=640, height=480,
                        elements=list(elements), defects=list(defects))


def defect(kind="overlap", severity=0.5):
    return Defect(kind, (0, 0, 10, 10), severity, "measured", [(0, 1)])


def test_a_clean_render_without_reference_earns_one():
    assert reward(CHART, rendered()) == 1.0


def test_failing_code_earns_zero():
    assert reward(CHART, RenderResult(ok=False, error="NameError: x")) == 0.0


def test_a_blank_render_earns_zero():
    assert reward(CHART, rendered(defect("blank", 1.0))) == 0.0


def test_more_severe_defects_earn_less():
    mild = reward(CHART, rendered(defect(severity=0.2)))
    severe = reward(CHART, rendered(defect(severity=0.9)))
    assert 0.0 < severe < mild < 1.0
    assert severe == pytest.approx(math.exp(-0.9))


def test_more_defects_earn_less_and_kind_weights_scale_the_penalty():
    one, two = rendered(defect()), rendered(defect(), defect("text_overflow"))
    assert reward(CHART, two) < reward(CHART, one)
    light = RewardConfig(kind_weights={"overlap": 0.1})
    assert reward(CHART, one, config=light) == pytest.approx(math.exp(-0.05))


def test_components_name_every_term_and_multiply_to_the_reward():
    parts = reward_components(CHART, rendered(defect("low_contrast", 0.4)))
    assert parts["penalty_low_contrast"] == pytest.approx(0.2)
    assert parts["r_content"] == 1.0  # a prompt the generator did not make has no items
    product = parts["r_exec"] * parts["r_content"] * parts["r_visual"]
    assert parts["reward"] == pytest.approx(product)
    assert all(0.0 <= v <= 1.0 for k, v in parts.items() if not k.startswith("penalty_"))


def test_a_reference_blends_in_similarity_and_identical_renders_keep_one():
    elements = [Element("Axes", (80, 60, 580, 420), (0, 1), role="axes"),
                Element("Text", (250, 20, 390, 40), (0, 1), text="Sales", role="title")]
    ref = rendered(elements=elements)
    assert reward(CHART, ref, reference=ref) == 1.0
    parts = reward_components(CHART, rendered(), reference=ref)
    assert parts["sim_text"] == 0.0 and parts["reward"] < 1.0


def test_slides_are_scored_by_layout_rules_without_a_reference():
    spill = rendered(elements=[Element("p", (0, 0, 1280, 1400), (0, 1), text="long")])
    parts = reward_components(SLIDE, spill)
    assert {"rule_aspect", "rule_whitespace", "rule_collisions", "rule_balance"} <= set(parts)
    assert parts["reward"] < 1.0


def test_a_failed_reference_and_unknown_kind_weights_raise():
    with pytest.raises(ValueError, match="reference"):
        reward(CHART, rendered(), reference=RenderResult(ok=False, error="boom"))
    with pytest.raises(ValueError, match="kind_weights"):
        RewardConfig(kind_weights={"wobble": 1.0})


def test_r_content_is_the_share_of_the_prompts_text_items_in_the_render():
    """A synthetic chart whose render shows its title and only some of its bar labels."""
    task = generate_tasks("chart", 1, seed=5, split="eval")[0]
    p = parse_prompt(task.prompt)
    labels = [bar.split("=")[0] for block in p.blocks for bar in split_list(block)]
    shown = [p.title, *labels[:2]]
    elements = [Element("Text", (10 * i, 0, 10 * i + 9, 9), (0, 1), text=f" {t} ")
                for i, t in enumerate(shown)]
    parts = reward_components(task, rendered(elements=elements))
    assert parts["r_content"] == pytest.approx(3 / (1 + len(labels)))
    assert parts["reward"] == pytest.approx(parts["r_content"] * parts["r_visual"])
    assert reward_components(task, RenderResult(ok=False, error="x"))["r_content"] == 0.0
