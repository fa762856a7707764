"""Feedback: a render turned into the three training signals — per-token credit weights,
the teacher's privileged context, and the sequence reward with its group advantages.

It reads `vsdpo.render`'s records (the defects arrive already detected and blamed) and is
read by the trainer; see docs/feedback.md and docs/architecture.md."""

from vsdpo.feedback.advantage import group_advantages
from vsdpo.feedback.context import (ContextConfig, best_sibling, reference_context,
                                    teacher_context, teacher_screenshot)
from vsdpo.feedback.credit import (credit_weight, random_statement_scores, statement_scores,
                                   token_weights, weight_table)
from vsdpo.feedback.reward import RewardConfig, reward, reward_components

__all__ = [
    "ContextConfig",
    "RewardConfig",
    "best_sibling",
    "credit_weight",
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
