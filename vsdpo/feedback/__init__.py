"""Feedback: a render turned into the three training signals (DESIGN.md §1, §4.3) —
per-token credit weights, the teacher's privileged context, and the sequence reward with
its group advantages. The defect detectors live here too but are imported by
`vsdpo.render` directly."""

from vsdpo.feedback.advantage import group_advantages
from vsdpo.feedback.context import (ContextConfig, best_sibling, reference_context,
                                    teacher_context, teacher_screenshot)
from vsdpo.feedback.credit import (credit_weights, random_statement_scores, statement_scores,
                                   token_weights, weight_table)
from vsdpo.feedback.reward import RewardConfig, reward, reward_components

__all__ = [
    "ContextConfig",
    "RewardConfig",
    "best_sibling",
    "credit_weights",
    "group_advantages",
    "random_statement_scores",
    "reward",
    "reward_components",
    "reference_context",
    "statement_scores",
    "teacher_context",
    "teacher_screenshot",
    "token_weights",
    "weight_table",
]
