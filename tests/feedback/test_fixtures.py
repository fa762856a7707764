"""Every feedback function on the real fixtures, rendered through `vsdpo.render.render`:
it runs, and returns values in range. One render per module of every third fixture (15
charts, 11 pages, 4 pages as slides) keeps it well under a minute; generous timeouts keep
it honest on a loaded machine (a timed-out render is still fed through every function)."""

import re
from pathlib import Path

import pytest
import torch

from vsdpo.feedback import (credit_weight, group_advantages, reward, reward_components,
                            teacher_context, weight_table)
from vsdpo.feedback.similarity_chart import chart_similarity
from vsdpo.feedback.similarity_web import web_similarity
from vsdpo.feedback.slide_rules import slide_rules
from vsdpo.render import Artifact, RenderConfig, render
from vsdpo.render.chart import ChartConfig
from vsdpo.tasks.task import Task

ALPHA = 3.0
TOKEN = re.compile(r"\w+|[^\w\s]+|\s+")  # a stand-in tokenizer: real (start, end) offsets


@pytest.fixture(scope="module")
def rendered(fixtures_dir: Path):
    charts = sorted((fixtures_dir / "chartmimic").glob("*.py"))[::3]
    pages = sorted((fixtures_dir / "design2code").glob("*.html"))[::3]
    files = charts + pages + pages[:4]
    domains = ["chart"] * len(charts) + ["web"] * len(pages) + ["slide"] * 4
    codes = [f.read_text() for f in files]
    config = RenderConfig(num_browsers=1, timeout_s=60, chart=ChartConfig(timeout_s=60))
    results = render([Artifact(d, c) for d, c in zip(domains, codes)], config)
    tasks = [Task(f.stem, d, f"Reproduce the {d} {f.name}.") for f, d in zip(files, domains)]
    return list(zip(tasks, codes, results))


def offsets(code: str) -> list[tuple[int, int]]:
    return [m.span() for m in TOKEN.finditer(code)]


def test_the_sample_holds_defects_blamed_on_code_in_every_domain(rendered):
    for domain in ("chart", "web", "slide"):
        blamed = [d for t, _, r in rendered if t.domain == domain for d in r.defects if d.spans]
        assert blamed, f"no {domain} fixture in the sample has a blamed defect"


def test_credit_weights_have_mean_one_and_blamed_over_unblamed_within_alpha_on_every_fixture(
        rendered):
    for task, code, result in rendered:
        offs = offsets(code)
        w_T = credit_weight(code, offs, result.defects, ALPHA, result.elements, task.domain)
        assert w_T.shape == (len(offs),) and w_T.dtype == torch.float32
        assert w_T.mean().item() == pytest.approx(1.0, abs=1e-5), task.id
        assert w_T.max() <= ALPHA * w_T.min() * (1 + 1e-6), task.id
        if any(d.spans for d in result.defects):
            assert w_T.max() > w_T.min(), f"{task.id}: a blamed defect weighted no token"
        for text, r, w in weight_table(code, result.defects, ALPHA, result.elements, task.domain):
            assert text and 0.0 <= r <= 1.0 and w == pytest.approx(1 + (ALPHA - 1) * r)


def test_teacher_context_keeps_the_prompt_first_and_fits_the_cap_on_every_fixture(rendered):
    for task, code, result in rendered:
        text = teacher_context(task, result, code=code)
        assert text.startswith(task.prompt) and len(text) <= 6000, task.id
        if result.ok and result.defects:  # the most severe defect survives truncation
            assert max(result.defects, key=lambda d: d.severity).message in text, task.id


def test_reward_and_every_component_lie_in_zero_one_on_every_fixture(rendered):
    rewards = []
    for task, _, result in rendered:
        parts = reward_components(task, result, reference=result if result.ok else None)
        assert all(0.0 <= v <= 1.0 for k, v in parts.items() if not k.startswith("penalty_"))
        assert parts["reward"] == reward(task, result, reference=result if result.ok else None)
        rewards.append(parts["reward"])
    adv = group_advantages(rewards[: len(rewards) // 4 * 4], group_size=4)
    assert torch.allclose(adv.view(-1, 4).mean(dim=1), torch.zeros(len(rewards) // 4), atol=1e-5)


def test_each_fixture_is_most_similar_to_itself(rendered):
    for domain, similarity in (("chart", chart_similarity), ("web", web_similarity),
                               ("slide", web_similarity)):
        ok = [r for t, _, r in rendered if t.domain == domain and r.ok]
        for result, other in zip(ok, ok[1:] + ok[:1]):
            self_score = similarity(result, result)
            assert all(v == 1.0 for v in self_score.values()), self_score
            other_score = similarity(other, result)
            assert all(0.0 <= v <= 1.0 for v in other_score.values())
            assert sum(other_score.values()) < sum(self_score.values())


def test_slide_rules_lie_in_zero_one_on_every_page_and_slide(rendered):
    for task, _, result in rendered:
        if task.domain != "chart":
            assert all(0.0 <= v <= 1.0 for v in slide_rules(result).values()), task.id
