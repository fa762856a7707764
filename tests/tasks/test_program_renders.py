"""Solution styles against the real render pool (Chromium, sandboxed matplotlib): each block's
defect follows its own risk and style, and shows inside that block only; robust programs
render clean; every program draws all of its prompt's items."""

import random

import pytest

from vsdpo.feedback.fidelity import content_fidelity
from vsdpo.render import Artifact, render
from vsdpo.tasks import DOMAINS
from vsdpo.tasks.programs import PRONE_STYLES, ROBUST_STYLES, block_spans, solve, styles
from vsdpo.tasks.synthetic import generate_tasks, risky_blocks

INTENDED = {"chart": {"overlap"}, "web": {"text_overflow", "clipped_text"}, "slide": {"off_canvas"}}


@pytest.fixture(scope="module")
def rendered():
    """(task, per-block styles, code, result): 8 tasks per domain, half of them eval-split,
    every single style and two random mixes each."""
    tasks = [*generate_tasks(DOMAINS, 12, seed=11),
             *generate_tasks(DOMAINS, 12, seed=11, split="eval")]
    rng = random.Random(0)
    cases = []
    for t in tasks:
        mixes = [[rng.choice(styles(t.domain)) for _ in range(3)] for _ in range(2)]
        cases += [(t, [s] * 3) for s in styles(t.domain)] + [(t, m) for m in mixes]
    codes = [solve(t, s) for t, s in cases]
    results = render([Artifact(t.domain, c) for (t, _), c in zip(cases, codes)])
    return [(t, s, c, r) for (t, s), c, r in zip(cases, codes, results)]


def _blocks_with_defects(code: str, domain: str, result) -> list[bool]:
    return [any(s < end and start < e for d in result.defects for s, e in d.spans)
            for start, end in block_spans(code, domain)]


def test_every_program_executes_and_draws_all_its_items(rendered):
    bad = [(t.prompt, s, r.error) for t, s, c, r in rendered
           if not r.ok or content_fidelity(t, r, c) != 1.0]
    assert not bad


def test_robust_programs_render_without_defects(rendered):
    bad = [(t.prompt, s, [d.message for d in r.defects]) for t, s, _, r in rendered
           if all(x in ROBUST_STYLES[t.domain] for x in s) and r.defects]
    assert not bad


def test_a_block_shows_a_defect_exactly_when_it_is_risky_and_prone(rendered):
    bad = []
    for t, s, code, r in rendered:
        want = [risky and style in PRONE_STYLES[t.domain]
                for risky, style in zip(risky_blocks(t.prompt), s)]
        if _blocks_with_defects(code, t.domain, r) != want:
            bad.append((t.prompt, s, want, [d.message for d in r.defects]))
    assert not bad


def test_the_defects_are_of_the_intended_kinds(rendered):
    kinds = {(t.domain, d.kind) for t, _, _, r in rendered for d in r.defects}
    assert kinds and all(k in INTENDED[domain] for domain, k in kinds), kinds
