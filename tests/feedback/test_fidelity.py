"""Content fidelity on real renders of the embedded tasks: every style's program holds all the
prompt's items; a program that leaves some out scores exactly the share it kept."""

import dataclasses

import pytest

from vsdpo.feedback.fidelity import content_fidelity, prompt_items
from vsdpo.render import Artifact, RenderConfig, render
from vsdpo.render.chart import ChartConfig
from vsdpo.tasks.programs import parse_prompt, prompt_text, solve, split_list, styles
from vsdpo.tasks.synthetic import generate_tasks
from vsdpo.tasks.task import Task

CONFIG = RenderConfig(num_browsers=1, timeout_s=60, chart=ChartConfig(timeout_s=60, workers=1))


def _keep_first(task: Task, k: int) -> Task:
    """The task whose prompt lists only the first k items (bars or bullets) of each block."""
    p = parse_prompt(task.prompt)
    blocks = tuple("; ".join(split_list(b)[:k]) for b in p.blocks)
    return Task(task.id, task.domain, prompt_text(dataclasses.replace(p, blocks=blocks)))


@pytest.fixture(scope="module")
def cases():
    """(task, code, expected fidelity) for every style of 4 tasks per domain (risky and safe),
    plus programs written for a prompt with fewer items, and one that does not run."""
    out = []
    for task in generate_tasks(["chart", "web", "slide"], 12, seed=5, split="eval"):
        out += [(task, solve(task, style), 1.0) for style in styles(task.domain)]
        if task.domain != "web":
            blocks = parse_prompt(task.prompt).blocks
            n, k = sum(len(split_list(b)) for b in blocks), 2 * len(blocks)
            per_item = 2 if task.domain == "chart" else 1  # a bar is a label and a value
            code = solve(_keep_first(task, 2), styles(task.domain)[-1])
            out.append((task, code, (1 + per_item * k) / (1 + per_item * n)))
    out.append((out[0][0], "import matplotlib.pyplot as plt\nraise SystemExit(plt.nope)", 0.0))
    results = render([Artifact(t.domain, code) for t, code, _ in out], CONFIG)
    return [(t, code, expected, r) for (t, code, expected), r in zip(out, results)]


def test_fidelity_is_the_share_of_the_prompts_items_drawn(cases):
    for task, code, expected, result in cases:
        assert content_fidelity(task, result, code) == pytest.approx(expected), (task.id, code)


def test_a_page_without_one_card_title_keeps_three_quarters():
    task = generate_tasks("web", 1, seed=1)[0]
    card = parse_prompt(task.prompt).blocks[1]
    code = solve(task, "wrap").replace(f">{card}<", "><")
    (result,) = render([Artifact("web", code)], CONFIG)
    assert content_fidelity(task, result, code) == 0.75


def test_tasks_not_made_by_the_generator_have_no_items():
    task = Task("x", "web", "Build a landing page for a bakery.")
    assert prompt_items(task) is None
