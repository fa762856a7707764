"""The warm-start corpus, with feedback rendered by the real render pool and formatted by the
trainer's teacher context."""

import random

import pytest

from vsdpo.tasks import DOMAINS
from vsdpo.tasks.programs import PRONE_STYLES, ROBUST_STYLES, parse_prompt, solve
from vsdpo.tasks.task import Task
from vsdpo.tasks.synthetic import generate_tasks
from vsdpo.warmstart.corpus import (break_program, feedback_examples, real_context_fn,
                                    real_render_fn, student_examples)
from vsdpo.warmstart.tokenizer import ASSISTANT, BOS, FEEDBACK, USER, format_prompt


def _task(prompt: str) -> Task:
    return Task("t", prompt.split(":")[0], prompt)


def _robust_programs(prompt: str, domain: str) -> set[str]:
    return {solve(_task(prompt), s) for s in ROBUST_STYLES[domain]}


def _task_prompt(example_prompt: str) -> str:
    return example_prompt.removeprefix(BOS + USER).removesuffix(ASSISTANT)


def test_student_examples_are_train_tasks_with_made_up_topics():
    examples = student_examples(600, seed=0, prone_fraction=0.7)
    for e, t in zip(examples, generate_tasks(DOMAINS, 600, seed=0)):
        title = parse_prompt(t.prompt)["title"]
        topic, *rest = parse_prompt(_task_prompt(e.prompt))["title"].split(" ")
        assert rest == title.split(" ")[1:] and topic.isalpha() and topic not in title
        assert e.prompt == format_prompt(t.prompt.replace(title, " ".join([topic, *rest])))
    assert len({parse_prompt(_task_prompt(e.prompt))["title"].split()[0] for e in examples}) > 590


def test_student_examples_mix_prone_and_robust_styles_in_the_configured_share():
    examples = student_examples(600, seed=0, prone_fraction=0.7)
    tasks = [_task(_task_prompt(e.prompt)) for e in examples]
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
        assert e.completion in {solve(_task(prompt), s)
                                for s in PRONE_STYLES[domain] + ROBUST_STYLES[domain]}
