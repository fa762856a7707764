"""Sequence reward for GRPO: `reward = r_exec × r_content × r_visual`, in [0, 1].

- r_exec: 1 when the code ran and drew something, else 0 (`ok=False`, or a `blank` defect).
- r_content: for the synthetic tasks, the share of the prompt's text items (title, labels,
  bullets, card text) in the render's text (`fidelity.content_fidelity` without code); 1 for
  tasks without items (JSONL corpora). The similarity terms barely notice a dropped item
  (Design2Code's text score compares matched blocks only): without this factor a clean slide
  with 7 of its 13 bullets scored 0.966 against 0.981 for all 13, and GRPO learned to drop
  bullets: after `make demo` the trained policy kept 279 of 500 bullets where the warm-start
  kept 451. With r_content the 7-bullet slide scores 0.552.
- r_defects = exp(−Σ_d weight(kind_d)·severity_d): one severe overlap (weight 1, severity 1)
  leaves e^−1 ≈ 0.37; never reaches 0, so a page with many small defects still ranks
  below one with fewer.
- quality: the mean of the reference-free and reference components that apply — charts
  and web pages with a `reference` render: ChartMimic / Design2Code-style similarity
  (`similarity_chart.py`, `similarity_web.py`); slides: AeSlides-style rules
  (`slide_rules.py`), plus web similarity when a reference is given.
- r_visual = (1 − λ)·r_defects + λ·quality with λ = `quality_weight`; r_defects alone when
  no quality component applies (a chart or page without reference).

The trainer renders `task.reference_code` once per task and passes that RenderResult.
"""

from dataclasses import dataclass, field

import numpy as np

from vsdpo.feedback.fidelity import content_fidelity
from vsdpo.feedback.similarity_chart import chart_similarity
from vsdpo.feedback.similarity_web import web_similarity
from vsdpo.feedback.slide_rules import slide_rules
from vsdpo.render.types import DEFECT_KINDS, RenderResult
from vsdpo.tasks.task import Task


def _default_kind_weights() -> dict[str, float]:
    return {"overlap": 1.0, "text_overflow": 1.0, "clipped_text": 1.0, "off_canvas": 1.0,
            "low_contrast": 0.5, "misaligned": 0.3, "blank": 1.0, "layout_warning": 0.2}


@dataclass
class RewardConfig:
    """`kind_weights`: penalty per unit severity for each defect kind (a kind left out
    weighs 1.0); `quality_weight`: λ, the share of r_visual given to quality."""

    kind_weights: dict[str, float] = field(default_factory=_default_kind_weights)
    quality_weight: float = 0.5

    def __post_init__(self):
        unknown = set(self.kind_weights) - set(DEFECT_KINDS)
        if unknown:
            raise ValueError(f"RewardConfig.kind_weights: unknown kinds {sorted(unknown)}; "
                             f"known kinds are {DEFECT_KINDS}")
        if any(w < 0 for w in self.kind_weights.values()):
            raise ValueError(f"RewardConfig.kind_weights must be >= 0, got {self.kind_weights}")
        if not 0.0 <= self.quality_weight <= 1.0:
            raise ValueError("RewardConfig.quality_weight must be in [0, 1], "
                             f"got {self.quality_weight}")


def is_blank(result: RenderResult) -> bool:
    return any(d.kind == "blank" for d in result.defects)


def quality_components(domain: str, result: RenderResult,
                       reference: RenderResult | None) -> dict[str, float]:
    """Reference similarity (`sim_*`) and slide rules (`rule_*`) that apply, each in [0, 1]."""
    if reference is not None and not reference.ok:
        raise ValueError(f"reference render failed ({reference.error!r}): render "
                         "task.reference_code successfully or pass reference=None")
    out = {}
    if domain == "slide":
        out.update({f"rule_{k}": v for k, v in slide_rules(result).items()})
    if reference is not None:
        similarity = chart_similarity if domain == "chart" else web_similarity
        out.update({f"sim_{k}": v for k, v in similarity(result, reference).items()})
    return out


def reward_components(task: Task, result: RenderResult, reference: RenderResult | None = None,
                      config: RewardConfig = RewardConfig()) -> dict[str, float]:
    """Every term of the reward, for logging; `reward` is the one the trainer uses."""
    r_exec = float(result.ok and not is_blank(result))
    r_content = content_fidelity(task, result, code=None) if r_exec else 0.0
    r_content = 1.0 if r_content is None else r_content
    penalties = {f"penalty_{k}": 0.0 for k in DEFECT_KINDS}
    for d in result.defects:
        penalties[f"penalty_{d.kind}"] += config.kind_weights.get(d.kind, 1.0) * d.severity
    r_defects = float(np.exp(-sum(penalties.values())))
    quality = quality_components(task.domain, result, reference) if r_exec else {}
    r_visual = r_defects
    if quality:
        mean_quality = float(np.mean(list(quality.values())))
        r_visual = (1 - config.quality_weight) * r_defects + config.quality_weight * mean_quality
        quality["quality"] = mean_quality
    return {"r_exec": r_exec, "r_content": r_content, "r_defects": r_defects, **penalties,
            **quality, "r_visual": r_visual, "reward": r_exec * r_content * r_visual}


def reward(task: Task, result: RenderResult, reference: RenderResult | None = None,
           config: RewardConfig = RewardConfig()) -> float:
    """`r_exec × r_content × r_visual` in [0, 1]; see the module docstring for the terms."""
    return reward_components(task, result, reference, config)["reward"]
