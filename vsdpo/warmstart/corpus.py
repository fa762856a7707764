"""The warm-start corpus: what the embedded policy reads before reinforcement learning.

Two kinds of `(prompt text, program)` pairs, both on train-split synthetic tasks:

- student examples: `format_prompt(task prompt) → program` in which each block's style is
  prone with probability `prone_fraction`, drawn independently per block and blind to the
  prompt, so the warm-started model executes most of the time yet shows defects on the risky
  blocks;
- feedback examples: an attempt (student-like, sometimes a broken chart program) is rendered
  by the real render pool and turned into a teacher context by the same function the trainer
  uses: the traced report, or the plain one (kinds and messages only, as SDPO's teacher
  reads), with a clean sibling half the time. The target is a *local repair*: the attempt
  with only the blocks that the report blames switched to a robust style (and a broken line
  mended); a clean attempt is its own target. So the feedback-conditioned teacher differs
  from the student exactly on the guilty statements, and copies as the student does
  elsewhere.

In every example the title's topic word is made up: eval topics never occur in training, and
a model that has seen real training topics writes one of those instead of copying the
prompt's (docs/tasks.md, "The warm-start").

`render_fn` and `context_fn` are parameters so tests can swap the render pool; by default
they are `vsdpo.render.render` and `vsdpo.feedback.teacher_context`.
"""

import random
import string
from collections.abc import Callable
from dataclasses import dataclass

from vsdpo.render.types import Artifact, RenderResult
from vsdpo.tasks.programs import PRONE_STYLES, ROBUST_STYLES, block_spans, parse_prompt, solve
from vsdpo.tasks.synthetic import generate_tasks, risky_blocks
from vsdpo.tasks.task import DOMAINS, Task
from vsdpo.warmstart.tokenizer import format_prompt, format_teacher_prompt

RenderFn = Callable[[list[Artifact]], list[RenderResult]]
# task, result, code, sibling, traced (the traced report, or the plain one)
ContextFn = Callable[[Task, RenderResult, str, str | None, bool], str]


@dataclass(frozen=True)
class Example:
    prompt: str  # formatted: format_prompt(...) or format_teacher_prompt(...)
    completion: str  # the program; the end-of-sequence token is added when encoding
    task_prompt: str  # the task as the student reads it: its words are the content


def student_styles(task: Task, prone_fraction: float, rng: random.Random) -> list[str]:
    """One style per block as the warm-started student picks it: prone or robust, each block
    on its own and blind to the prompt."""
    num = len(parse_prompt(task.prompt).blocks)
    return [rng.choice((PRONE_STYLES if rng.random() < prone_fraction else ROBUST_STYLES)
                       [task.domain]) for _ in range(num)]


def clean_sibling(task: Task, rng: random.Random) -> str:
    """A program as the group's best clean sample looks: robust on the risky blocks, any style
    on the safe ones."""
    robust = ROBUST_STYLES[task.domain][0]
    styles = [robust if risky else style for risky, style in
              zip(risky_blocks(task.prompt), student_styles(task, 0.5, rng))]
    return solve(task, styles)


def local_repair(task: Task, code: str, per_block: list[str], result: RenderResult) -> str:
    """The attempt with each block that a defect's spans touch switched to a robust style."""
    blamed = [any(s < end and start < e for d in result.defects for s, e in d.spans)
              for start, end in block_spans(code, task.domain)]
    robust = ROBUST_STYLES[task.domain][0]
    return solve(task, [robust if hit else style for hit, style in zip(blamed, per_block)])


def with_made_up_topic(task: Task, rng: random.Random) -> Task:
    """The task with its title's first word (the topic) replaced by 4–9 random letters: like a
    held-out topic, it splits into short tokens that only copying predicts."""
    title = parse_prompt(task.prompt).title
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
    return [Example(format_prompt(t.prompt), solve(t, student_styles(t, prone_fraction, rng)),
                    t.prompt) for t in tasks]


def break_program(code: str, rng: random.Random) -> str:
    """A chart program that fails: a misspelt method or an unclosed bracket."""
    if rng.random() < 0.5:
        return code.replace("fig.suptitle(", "fig.suptitel(")
    return code.replace(")\n", "\n", 1)


def feedback_examples(num: int, seed: int, prone_fraction: float, render_fn: RenderFn,
                      context_fn: ContextFn, sibling_fraction: float = 0.5,
                      plain_fraction: float = 0.5) -> list[Example]:
    """`num` teacher examples; renders `num` attempts in one call of `render_fn`."""
    rng = random.Random(f"feedback:{seed}")
    tasks = train_tasks(num, seed + 1, rng)
    attempts = []
    for task in tasks:
        per_block = student_styles(task, prone_fraction, rng)
        code = solve(task, per_block)
        if task.domain == "chart" and rng.random() < 0.2:
            code = break_program(code, rng)
        attempts.append((code, per_block))
    results = render_fn([Artifact(t.domain, code) for t, (code, _) in zip(tasks, attempts)])
    examples = []
    for task, (code, per_block), result in zip(tasks, attempts, results):
        if not result.ok:  # a broken line: mend it, change nothing else
            target = solve(task, per_block)
        else:
            target = local_repair(task, code, per_block, result)
        sibling = clean_sibling(task, rng) if rng.random() < sibling_fraction else None
        traced = rng.random() >= plain_fraction
        context = context_fn(task, result, code, sibling, traced)
        examples.append(Example(format_teacher_prompt(context), target, task.prompt))
    return examples


def real_context_fn() -> ContextFn:
    """The trainer's teacher context: `vsdpo.feedback.teacher_context` with its defaults."""
    from vsdpo.feedback import teacher_context

    def context(task: Task, result: RenderResult, code: str, sibling: str | None,
                traced: bool) -> str:
        return teacher_context(task, result, sibling, code=code, traced=traced)
    return context


def real_render_fn() -> RenderFn:
    from vsdpo.render import render

    return render
