"""Solution styles against the real render pool (Chromium, sandboxed matplotlib): robust
programs render clean on every prompt; prone ones show the intended defect exactly on the
risky prompts."""

import pytest

from vsdpo.render import Artifact, render
from vsdpo.tasks import DOMAINS
from vsdpo.tasks.programs import PRONE_STYLES, ROBUST_STYLES, solve, styles
from vsdpo.tasks.synthetic import generate_tasks, is_risky

INTENDED = {"chart": "overlap", "web": "text_overflow", "slide": "off_canvas"}


@pytest.fixture(scope="module")
def rendered():
    """(task, style, result) for 8 tasks per domain, half of them eval-split, every style."""
    tasks = generate_tasks(DOMAINS, 12, seed=11) + generate_tasks(DOMAINS, 12, seed=11, split="eval")
    cases = [(t, s) for t in tasks for s in styles(t.domain)]
    results = render([Artifact(t.domain, solve(t, s)) for t, s in cases])
    return [(t, s, r) for (t, s), r in zip(cases, results)]


def test_the_rendered_sample_has_risky_and_safe_prompts_of_every_domain(rendered):
    for domain in DOMAINS:
        risk = {is_risky(t.prompt) for t, _, _ in rendered if t.domain == domain}
        assert risk == {True, False}, domain


def test_every_program_executes(rendered):
    failed = [(t.prompt, s, r.error) for t, s, r in rendered if not r.ok]
    assert not failed


def test_robust_programs_render_without_defects(rendered):
    bad = [(t.prompt, s, [d.message for d in r.defects]) for t, s, r in rendered
           if s in ROBUST_STYLES[t.domain] and r.defects]
    assert not bad


def test_prone_programs_are_clean_on_safe_prompts(rendered):
    bad = [(t.prompt, s, [d.message for d in r.defects]) for t, s, r in rendered
           if s in PRONE_STYLES[t.domain] and not is_risky(t.prompt) and r.defects]
    assert not bad


def test_prone_programs_show_the_intended_defect_on_risky_prompts(rendered):
    missing = [(t.prompt, s, [d.kind for d in r.defects]) for t, s, r in rendered
               if s in PRONE_STYLES[t.domain] and is_risky(t.prompt)
               and INTENDED[t.domain] not in {d.kind for d in r.defects}]
    assert not missing
