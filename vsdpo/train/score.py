"""The render-and-score stage: completions → renders → reward, credit, teacher context.

`RenderScorer` is the real stage (the browser/sandbox pool and `vsdpo.feedback`). It
renders the code inside each completion (`vsdpo.feedback.extract`: the first Markdown fenced
block, else the whole text) and maps the token offsets into that code, so credit lands on
the program's tokens and never on fences or prose. Each sample is rewarded against its
task's reference render (`ReferenceRenders`), so a clean render that drops what the prompt
asked for scores lower. The trainer only needs something with the same `score` coroutine,
which is how tests drive the loop with hand-made rewards where rendering is beside the point.
"""

import asyncio
import sys
from dataclasses import dataclass
from typing import Protocol

import torch

from vsdpo.feedback import (ContextConfig, RewardConfig, best_sibling, random_statement_scores,
                            reference_context, reward_components, statement_scores,
                            teacher_context, token_weights)
from vsdpo.feedback.extract import extract_code, offsets_into_code
from vsdpo.feedback.fidelity import content_fidelity
from vsdpo.render import Artifact, RenderResult
from vsdpo.render.draw import open_rgb
from vsdpo.rollout import Completion
from vsdpo.tasks import Task


@dataclass
class Scored:
    reward: float
    ok: bool                       # the code ran and rendered
    defect_kinds: list[str]        # one entry per defect found
    context: str                   # the teacher's prompt
    credit_weight_T: torch.Tensor         # per-token weights on the divergence, mean 1
    fidelity: float | None = None  # share of the prompt's items drawn (synthetic tasks)
    result: RenderResult | None = None            # the render, for the rollout log
    reward_parts: dict[str, float] | None = None  # `reward_components`, for the rollout log


class Scorer(Protocol):
    async def score(self, tasks: list[Task], completions: list[Completion],
                    offsets: list[list[tuple[int, int]]], group_size: int) -> list[Scored]:
        """`tasks[i]` is the task of `completions[i]`; groups are consecutive."""


class ReferenceRenders:
    """Each task's `reference_code`, rendered once for the run (keyed by task id). A reference
    that does not render counts as none — its samples are scored without similarity — and
    each such task is reported once on stderr."""

    def __init__(self, pool):
        self.pool, self.by_id = pool, {}

    async def of(self, tasks: list[Task]) -> list[RenderResult | None]:
        new = list({t.id: t for t in tasks if t.reference_code and t.id not in self.by_id}
                   .values())
        results = await self.pool.render([Artifact(t.domain, t.reference_code) for t in new])
        for task, result in zip(new, results):
            if not result.ok:
                first_line = (result.error or "").partition("\n")[0]
                print(f"task {task.id}: its reference_code does not render, so its samples are "
                      f"scored without it: {first_line}", file=sys.stderr)
            self.by_id[task.id] = result if result.ok else None
        return [self.by_id.get(t.id) for t in tasks]


async def task_images(references: ReferenceRenders, tasks: list[Task]) -> list:
    """A vision-language student's image of each task (PIL): its `reference_image`, else its
    reference render; None where it has neither."""
    renders = iter(await references.of([t for t in tasks if not t.reference_image]))
    return [open_rgb(t.reference_image) if t.reference_image else _image_of(next(renders))
            for t in tasks]


class RenderScorer:
    """`teacher_sees` (`feedback.teacher_sees`): "traced" — the teacher reads the traced defect
    report on the sample's render, "plain" — each defect's kind and message only (and, for
    both, a clean sibling when `sibling`); "reference" — the task's reference program, where
    the task has one (OPSD-style). `credit`: "traced" weights up the blamed statements,
    "random" as many others drawn per sample from `seed` and the code (the control)."""

    def __init__(self, pool, alpha: float, sibling: bool, teacher_sees: str = "traced",
                 credit: str = "traced", seed: int = 0,
                 reward_config: RewardConfig = RewardConfig(),
                 context_config: ContextConfig = ContextConfig()):
        self.pool, self.alpha, self.sibling, self.teacher_sees = pool, alpha, sibling, teacher_sees
        self.credit, self.seed = credit, seed
        self.reward_config, self.context_config = reward_config, context_config
        self.references = ReferenceRenders(pool)

    async def score(self, tasks, completions, offsets, group_size) -> list[Scored]:
        extracted = [extract_code(c.text) for c in completions]
        codes = [code for code, _ in extracted]
        artifacts = [Artifact(domain=t.domain, code=code) for t, code in zip(tasks, codes)]
        results, references = await asyncio.gather(self.pool.render(artifacts),
                                                   self.references.of(tasks))
        parts = [reward_components(t, r, reference, self.reward_config)
                 for t, r, reference in zip(tasks, results, references)]
        rewards = [p["reward"] for p in parts]
        scored = []
        for i, (task, result) in enumerate(zip(tasks, results)):
            if self.teacher_sees == "reference" and task.reference_code:
                context = reference_context(task, self.context_config)
            else:
                sibling = self._sibling(i, codes, results, rewards, group_size)
                context = teacher_context(task, result, sibling, code=codes[i],
                                          traced=self.teacher_sees != "plain",
                                          config=self.context_config)
            credit_weight_T = token_weights(offsets_into_code(offsets[i], extracted[i][1]),
                                     self._scores(codes[i], result, task.domain), self.alpha)
            scored.append(Scored(rewards[i], result.ok, [d.kind for d in result.defects],
                                 context, credit_weight_T,
                                 content_fidelity(task, result, codes[i]), result, parts[i]))
        return scored

    async def task_images(self, tasks: list[Task]) -> list:
        return await task_images(self.references, tasks)

    def _scores(self, code: str, result: RenderResult, domain: str) -> dict:
        """r of each statement to weight up: the blamed ones, or as many random ones."""
        if self.alpha == 1.0 or not result.defects:
            return {}
        scores = statement_scores(code, result.defects, result.elements, domain)
        if self.credit == "random":
            return random_statement_scores(code, scores, domain, self.seed)
        return scores

    def _sibling(self, i, codes, results, rewards, group_size) -> str | None:
        if not self.sibling:
            return None
        g = i // group_size * group_size
        return best_sibling(i - g, codes[g:g + group_size], results[g:g + group_size],
                            rewards[g:g + group_size])


def _image_of(result: RenderResult | None):
    return None if result is None or result.image is None else open_rgb(result.image)
