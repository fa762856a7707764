"""The reward sees the task: a clean render that drops what was asked for (half of each
block's bars or bullets, the title, a card) scores lower than one that keeps it, on the
embedded tasks by at least the share of items dropped, and on real fixtures against the
reference render."""

import asyncio
import dataclasses
import re

import pytest
import torch

from vsdpo.feedback import reward, reward_components
from vsdpo.feedback.fidelity import prompt_items
from vsdpo.render import Artifact, RenderConfig, RenderPool, render
from vsdpo.render.chart import ChartConfig
from vsdpo.rollout import Completion
from vsdpo.tasks.programs import ROBUST_STYLES, parse_prompt, prompt_text, solve, split_list
from vsdpo.tasks.synthetic import generate_tasks
from vsdpo.tasks.task import Task
from vsdpo.train.score import RenderScorer

CONFIG = RenderConfig(num_browsers=1, timeout_s=60, chart=ChartConfig(timeout_s=60, workers=1))
DROPS = {"chart": ("items", "title"), "web": ("title", "block"), "slide": ("items", "title")}


def _dropped(task: Task, what: str) -> Task:
    """The task's prompt with half of each block's items, an empty title, or an empty
    first block (a web card's title)."""
    p = parse_prompt(task.prompt)
    if what == "title":
        p = dataclasses.replace(p, title="")
    elif what == "block":
        p = dataclasses.replace(p, blocks=("", *p.blocks[1:]))
    else:
        p = dataclasses.replace(p, blocks=tuple("; ".join(split_list(b)[:len(split_list(b)) // 2])
                                                for b in p.blocks))
    return Task(task.id, task.domain, prompt_text(p))


def _texts(task: Task) -> list[str]:
    return [text for kind, text in prompt_items(task) if kind == "text"]


@pytest.fixture(scope="module")
def synthetic():
    """Per domain: a task, its reference render, a clean render of a robust style other than
    the reference's (when there is one), and that style's renders with content dropped."""
    cases, artifacts = [], []
    for domain in DROPS:
        task = generate_tasks(domain, 1, seed=3, split="eval")[0]
        style = ROBUST_STYLES[domain][-1]
        codes = [task.reference_code, solve(task, style),
                 *(solve(_dropped(task, f), style) for f in DROPS[domain])]
        cases.append((task, codes))
        artifacts += [Artifact(domain, c) for c in codes]
    results = iter(render(artifacts, CONFIG))
    return [(task, codes, [next(results) for _ in codes]) for task, codes in cases]


def test_dropping_content_lowers_the_reward_of_a_clean_synthetic_render(synthetic):
    for task, _, (reference, full, *dropped) in synthetic:
        assert reference.ok and full.ok and not full.defects, task.id
        keep = reward(task, full, reference)
        for field, result in zip(DROPS[task.domain], dropped):
            assert result.ok and not result.defects, (task.id, field)
            less = reward_components(task, result, reference)
            share = len(_texts(_dropped(task, field))) / len(_texts(task))
            assert less["r_content"] == pytest.approx(share), (task.id, field)
            assert less["reward"] <= keep * share + 0.05, (task.id, field)
            assert reward(task, result) < reward(task, full), (task.id, field)


def test_the_scorer_renders_each_reference_once_and_rewards_against_it(synthetic):
    """Through `RenderScorer` with the real pool: two steps of the same tasks, each sample a
    full or a dropped program; the dropped ones score lower, and each task's reference is
    rendered once for both steps."""
    tasks, texts = [], []
    for task, (_, full, *dropped), _ in synthetic:
        for code in (full, *dropped):
            tasks.append(task)
            texts.append(f"```python\n{code}\n```")
    completions = [Completion(i, [0], text, torch.zeros(1), True) for i, text in enumerate(texts)]
    offsets = [[(0, len(t))] for t in texts]

    async def two_steps():
        async with RenderPool(CONFIG) as pool:
            scorer = RenderScorer(pool, alpha=3.0, sibling=False)
            rendered = []
            render_batch = pool.render

            async def counting(artifacts):
                rendered.extend(artifacts)
                return await render_batch(artifacts)
            pool.render = counting
            first = await scorer.score(tasks, completions, offsets, group_size=1)
            second = await scorer.score(tasks, completions, offsets, group_size=1)
            return first, second, rendered

    first, second, rendered = asyncio.run(two_steps())
    assert [s.reward for s in first] == [s.reward for s in second]
    references = [a for a in rendered if a.code in {t.reference_code for t in tasks}]
    assert len(references) == len(synthetic)  # once per task, not per sample or step
    i = 0
    for task, (_, _, *dropped), _ in synthetic:
        full, *less = first[i:i + 1 + len(dropped)]
        assert all(s.reward < full.reward for s in less), task.id
        i += 1 + len(dropped)


# Real pages and charts: the title, or half the paragraphs / list items, taken out.
_TITLE_LINE = re.compile(r"^.*\b(?:set_title|title|suptitle)\(.*$\n?", re.M)
_BLOCK = re.compile(r"<(p|li|h[1-3])\b[^>]*>.*?</\1>", re.S | re.I)


def _drop_page_blocks(html: str) -> str:
    blocks = list(_BLOCK.finditer(html))
    for m in reversed(blocks[::2]):
        html = html[:m.start()] + html[m.end():]
    return html


def test_dropping_content_lowers_the_reward_on_real_fixtures(fixtures_dir):
    charts = [p for p in sorted((fixtures_dir / "chartmimic").glob("*.py"))
              if _TITLE_LINE.search(p.read_text())][:6]
    pages = [p for p in sorted((fixtures_dir / "design2code").glob("*.html"))
             if len(_BLOCK.findall(p.read_text())) >= 4][:6]
    pairs = [("chart", p.read_text(), _TITLE_LINE.sub("", p.read_text())) for p in charts]
    pairs += [("web", p.read_text(), _drop_page_blocks(p.read_text())) for p in pages]
    results = render([Artifact(d, c) for d, full, less in pairs for c in (full, less)], CONFIG)
    compared = {"chart": 0, "web": 0}
    for (domain, _, _), full, less in zip(pairs, results[::2], results[1::2]):
        if not (full.ok and less.ok):
            continue
        task = Task("fixture", domain, "Reproduce it.")
        # the similarity term always drops; the reward too unless taking content out also
        # took a defect out (r_defects is the other term)
        quality = reward_components(task, less, full)["quality"]
        assert quality < reward_components(task, full, full)["quality"], domain
        if len(less.defects) >= len(full.defects):
            assert reward(task, less, full) < reward(task, full, full), domain
        compared[domain] += 1
    assert compared["chart"] >= 3 and compared["web"] >= 3, compared
