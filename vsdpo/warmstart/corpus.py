"""The warm-start corpus: what the embedded policy reads before reinforcement learning.

Two kinds of `(prompt text, program)` pairs, both on train-split synthetic tasks:

- student examples: `format_prompt(task prompt) → program` whose style is prone with
  probability `prone_fraction`, drawn independently of the prompt, so the warm-started
  model executes most of the time yet shows defects on the risky prompts;
- feedback examples: an attempt (student-like, sometimes a broken chart program) is rendered
  by the real render pool and turned into a teacher context by the same function the trainer
  uses; the target is the attempt itself when it rendered clean, else a robust program (or
  the clean sibling, when the context shows one). This is what makes the feedback-conditioned
  teacher genuinely better than the student.

In every example the title's topic word is made up: eval topics never occur in training, and
a model that has seen real training topics writes one of those instead of copying the
prompt's (LOG.md, "The warm-start copies after a copy stage").

`render_fn` and `context_fn` are parameters so tests can swap the render pool; by default
they are `vsdpo.render.render` and `vsdpo.feedback.teacher_context`.
"""

import random
import string
from collections.abc import Callable
from dataclasses import dataclass

from vsdpo.render.types import Artifact, RenderResult
from vsdpo.tasks.programs import PRONE_STYLES, ROBUST_STYLES, parse_prompt, solve
from vsdpo.tasks.synthetic import generate_tasks
from vsdpo.tasks.task import DOMAINS, Task
from vsdpo.warmstart.tokenizer import format_prompt, format_teacher_prompt

RenderFn = Callable[[list[Artifact]], list[RenderResult]]
ContextFn = Callable[[Task, RenderResult, str, str | None], str]  # task, result, code, sibling


@dataclass(frozen=True)
class Example:
    prompt: str  # formatted: format_prompt(...) or format_teacher_prompt(...)
    completion: str  # the program; the end-of-sequence token is added when encoding


def student_style(task: Task, prone_fraction: float, rng: random.Random) -> str:
    """A style as the warm-started student picks it: prone or robust, blind to the prompt."""
    pool = PRONE_STYLES if rng.random() < prone_fraction else ROBUST_STYLES
    return rng.choice(pool[task.domain])


def with_made_up_topic(task: Task, rng: random.Random) -> Task:
    """The task with its title's first word (the topic) replaced by 4–9 random letters: like a
    held-out topic, it splits into short tokens that only copying predicts."""
    title = parse_prompt(task.prompt)["title"]
    word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9))).capitalize()
    new_title = " ".join([word, *title.split(" ")[1:]])
    return Task(task.id, task.domain, task.prompt.replace(f"title: {title}", f"title: {new_title}"))


def train_tasks(num: int, seed: int, rng: random.Random) -> list[Task]:
    """Train-split tasks, each with a made-up topic."""
    tasks = generate_tasks(DOMAINS, num, seed=seed, split="train")
    return [with_made_up_topic(t, rng) for t in tasks]


def student_examples(num: int, seed: int, prone_fraction: float) -> list[Example]:
    rng = random.Random(f"student:{seed}")
    tasks = train_tasks(num, seed, rng)
    return [Example(format_prompt(t.prompt), solve(t, student_style(t, prone_fraction, rng)))
            for t in tasks]


def break_program(code: str, rng: random.Random) -> str:
    """A chart program that fails: a misspelt method or an unclosed bracket."""
    if rng.random() < 0.5:
        return code.replace("ax.set_title(", "ax.set_titel(")
    return code.replace(")\n", "\n", 1)


def feedback_examples(num: int, seed: int, prone_fraction: float, render_fn: RenderFn,
                      context_fn: ContextFn, sibling_fraction: float = 0.5) -> list[Example]:
    """`num` teacher examples; renders `num` attempts in one call of `render_fn`."""
    rng = random.Random(f"feedback:{seed}")
    tasks = train_tasks(num, seed + 1, rng)
    attempts = []
    for task in tasks:
        code = solve(task, student_style(task, prone_fraction, rng))
        if task.domain == "chart" and rng.random() < 0.2:
            code = break_program(code, rng)
        attempts.append(code)
    results = render_fn([Artifact(t.domain, code) for t, code in zip(tasks, attempts)])
    examples = []
    for task, code, result in zip(tasks, attempts, results):
        fixed = solve(task, rng.choice(ROBUST_STYLES[task.domain]))
        sibling = fixed if rng.random() < sibling_fraction else None
        target = code if result.ok and not result.defects else fixed
        examples.append(Example(format_teacher_prompt(context_fn(task, result, code, sibling)),
                                target))
    return examples


def real_context_fn() -> ContextFn:
    """The trainer's teacher context: `vsdpo.feedback.teacher_context` with its defaults."""
    from vsdpo.feedback import teacher_context

    def context(task: Task, result: RenderResult, code: str, sibling: str | None) -> str:
        return teacher_context(task, result, sibling, code=code)
    return context


def real_render_fn() -> RenderFn:
    from vsdpo.render import render

    return render
