"""The warm-start corpus, with feedback rendered by the real render pool and formatted by the
trainer's teacher context."""

import random

import pytest

from vsdpo.tasks import DOMAINS
from vsdpo.tasks.programs import PRONE_STYLES, ROBUST_STYLES, solve
from vsdpo.tasks.synthetic import generate_tasks
from vsdpo.warmstart.corpus import (break_program, feedback_examples, real_context_fn,
                                    real_render_fn, student_examples)
from vsdpo.warmstart.tokenizer import ASSISTANT, FEEDBACK, format_prompt


def _robust_programs(prompt: str, domain: str) -> set[str]:
    task = next(t for t in generate_tasks(domain, 400, seed=1) if t.prompt == prompt)
    return {solve(task, s) for s in ROBUST_STYLES[domain]}


def test_student_examples_mix_prone_and_robust_styles_in_the_configured_share():
    examples = student_examples(600, seed=0, prone_fraction=0.7)
    tasks = generate_tasks(DOMAINS, 600, seed=0)
    assert all(e.prompt == format_prompt(t.prompt) for e, t in zip(examples, tasks))
    prone = sum(e.completion in {solve(t, s) for s in PRONE_STYLES[t.domain]}
                for e, t in zip(examples, tasks))
    robust = sum(e.completion in {solve(t, s) for s in ROBUST_STYLES[t.domain]}
                 for e, t in zip(examples, tasks))
    assert prone + robust == len(examples)
    assert 0.6 < prone / len(examples) < 0.8


def test_broken_programs_fail_in_python():
    task = generate_tasks("chart", 1, seed=0)[0]
    rng = random.Random(0)
    for _ in range(4):
        with pytest.raises((SyntaxError, AttributeError)):
            exec(break_program(solve(task, "plain"), rng), {"__name__": "broken"})


@pytest.fixture(scope="module")
def feedback():
    return feedback_examples(24, seed=0, prone_fraction=0.7, render_fn=real_render_fn(),
                             context_fn=real_context_fn(), sibling_fraction=0.5)


def test_feedback_contexts_carry_the_task_prompt_and_the_teacher_marker(feedback):
    for e in feedback:
        assert e.prompt.startswith(f"<|bos|>{FEEDBACK}") and e.prompt.endswith(ASSISTANT)
        assert "Feedback on a previous attempt" in e.prompt
        assert e.prompt.split(FEEDBACK)[1].split("\n")[0].split(": ")[0] in ("chart", "web", "slide")


def test_a_defect_report_or_traceback_is_answered_with_a_robust_program(feedback):
    reported = [e for e in feedback if "has these problems" in e.prompt or "failed to run" in e.prompt]
    assert len(reported) >= 4
    for e in reported:
        prompt = e.prompt.split(FEEDBACK)[1].split("\n")[0]
        assert e.completion in _robust_programs(prompt, prompt.split(":")[0])


def test_a_clean_render_is_answered_with_the_same_program(feedback):
    clean = [e for e in feedback if "no detected problems" in e.prompt]
    assert clean
    for e in clean:
        prompt = e.prompt.split(FEEDBACK)[1].split("\n")[0]
        domain = prompt.split(":")[0]
        task = next(t for t in generate_tasks(domain, 400, seed=1) if t.prompt == prompt)
        assert e.completion in {solve(task, s) for s in PRONE_STYLES[domain] + ROBUST_STYLES[domain]}
