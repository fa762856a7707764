"""The warm-start corpus, with feedback rendered by the real render pool and formatted by the
trainer's teacher context."""

import random

import pytest

from vsdpo.feedback import ContextConfig
from vsdpo.tasks import DOMAINS
from vsdpo.tasks.programs import PRONE_STYLES, ROBUST_STYLES, block_spans, parse_prompt, solve
from vsdpo.render.types import Artifact
from vsdpo.tasks.synthetic import generate_tasks, risky_blocks
from vsdpo.tasks.task import Task
from vsdpo.warmstart.corpus import (break_program, feedback_examples, local_repair,
                                    real_context_fn, real_render_fn, student_examples)
from vsdpo.warmstart.tokenizer import ASSISTANT, BOS, FEEDBACK, USER, format_prompt


def _task(prompt: str) -> Task:
    return Task("t", prompt.split(":")[0], prompt)


def _task_prompt(example_prompt: str) -> str:
    return example_prompt.removeprefix(BOS + USER).removesuffix(ASSISTANT)


def _block_styles(task: Task, code: str) -> list[str]:
    """Per block, the style that wrote it (every block of `code` matches one style's block)."""
    out = []
    for k, (start, end) in enumerate(block_spans(code, task.domain)):
        found = [s for s in PRONE_STYLES[task.domain] + ROBUST_STYLES[task.domain]
                 if code[start:end] == (lambda c: c[slice(*block_spans(c, task.domain)[k])])(
                     solve(task, s))]
        assert found, (task.prompt, code[start:end])
        out.append(found[0])
    return out


def test_student_examples_are_train_tasks_with_made_up_topics():
    examples = student_examples(600, seed=0, prone_fraction=0.7)
    for e, t in zip(examples, generate_tasks(DOMAINS, 600, seed=0)):
        title = parse_prompt(t.prompt).title
        topic, *rest = parse_prompt(_task_prompt(e.prompt)).title.split(" ")
        assert rest == title.split(" ")[1:] and topic.isalpha() and topic not in title
        assert e.prompt == format_prompt(t.prompt.replace(title, " ".join([topic, *rest])))
    assert len({parse_prompt(_task_prompt(e.prompt)).title.split()[0] for e in examples}) > 590


def test_student_blocks_are_prone_in_the_configured_share_each_on_its_own():
    examples = student_examples(300, seed=0, prone_fraction=0.7)
    per_block = [[s in PRONE_STYLES[t.domain] for s in _block_styles(t, e.completion)]
                 for e in examples for t in [_task(_task_prompt(e.prompt))]]
    share = sum(map(sum, per_block)) / (3 * len(per_block))
    assert 0.65 < share < 0.75
    assert sum(0 < sum(p) < 3 for p in per_block) > 0.5 * len(per_block)  # mixed programs


def test_broken_programs_fail_in_python():
    task = generate_tasks("chart", 1, seed=0)[0]
    rng = random.Random(0)
    for _ in range(4):
        with pytest.raises((SyntaxError, AttributeError)):
            exec(break_program(solve(task, "flat"), rng), {"__name__": "broken"})


@pytest.fixture(scope="module")
def feedback():
    return feedback_examples(24, seed=0, prone_fraction=0.7, render_fn=real_render_fn(),
                             context_fn=real_context_fn(), sibling_fraction=0.5)


def _attempt_prompt(e) -> str:
    return e.prompt.split(FEEDBACK)[1].split("\n")[0]


def test_feedback_contexts_carry_the_task_prompt_and_the_teacher_marker(feedback):
    for e in feedback:
        assert e.prompt.startswith(f"<|bos|>{FEEDBACK}") and e.prompt.endswith(ASSISTANT)
        assert "Feedback on a previous attempt" in e.prompt
        assert _attempt_prompt(e).split(": ")[0] in ("chart", "web", "slide")


def test_contexts_are_traced_or_plain(feedback):
    reports = [e.prompt for e in feedback if "has these problems" in e.prompt]
    traced = [p for p in reports if " at line" in p]
    assert traced and len(traced) < len(reports)


def test_a_reported_attempt_is_answered_with_a_program_of_the_family(feedback):
    reported = [e for e in feedback if "has these problems" in e.prompt]
    assert len(reported) >= 4
    for e in reported:
        target = _block_styles(_task(_attempt_prompt(e)), e.completion)
        assert any(s in ROBUST_STYLES[_task(_attempt_prompt(e)).domain] for s in target)


def test_the_target_is_the_shown_attempt_with_only_style_statements_changed(feedback):
    """The teacher reads the attempt last in its context; a run attempt's target differs from
    it only on style statements (a failed one's is mended instead)."""
    header = ContextConfig().attempt_note.split("{code}")[0]
    repaired = 0
    for e in feedback:
        assert e.prompt.count(header) == 1
        attempt = e.prompt.split(header)[1].split("\n\n" + ContextConfig().instruction)[0]
        if "failed to run" in e.prompt:
            continue
        lines = attempt.splitlines(), e.completion.splitlines()
        assert len(lines[0]) == len(lines[1])
        changed = [a for a, b in zip(*lines) if a != b]
        assert all("tick_params" in a or "style=" in a for a in changed), changed
        repaired += bool(changed)
    assert repaired >= 4


def test_the_local_repair_changes_exactly_the_risky_prone_blocks():
    """All-prone attempts on mixed prompts: the repair makes the risky blocks robust and keeps
    the safe blocks' prone style."""
    tasks = [t for t in generate_tasks(DOMAINS, 30, seed=4)
             if 0 < sum(risky_blocks(t.prompt)) < 3][:6]
    attempts = [[PRONE_STYLES[t.domain][0]] * 3 for t in tasks]
    codes = [solve(t, s) for t, s in zip(tasks, attempts)]
    results = real_render_fn()([Artifact(t.domain, c) for t, c in zip(tasks, codes)])
    for task, styles, code, result in zip(tasks, attempts, codes, results):
        repaired = _block_styles(task, local_repair(task, code, styles, result))
        want = [ROBUST_STYLES[task.domain][0] if risky else style
                for risky, style in zip(risky_blocks(task.prompt), styles)]
        assert repaired == want, (task.prompt, [d.message for d in result.defects])
