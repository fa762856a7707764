"""Small matching helpers shared by the reference metrics (no scipy needed).

`greedy_match` pairs items best-first from a similarity matrix: for the few dozen items a
render has it is close to the optimal assignment, and it is deterministic.
"""

from collections import Counter

import numpy as np


def greedy_match(sim_MN: np.ndarray, threshold: float = 0.0) -> list[tuple[int, int]]:
    """Pairs (i, j), best similarity first, each row and column used once, sim > threshold."""
    sim_MN = np.asarray(sim_MN, dtype=np.float64)
    if sim_MN.size == 0:
        return []
    order = np.argsort(-sim_MN, axis=None, kind="stable")
    used_i, used_j, pairs = set(), set(), []
    for flat in order:
        i, j = divmod(int(flat), sim_MN.shape[1])
        if sim_MN[i, j] <= threshold:
            break
        if i not in used_i and j not in used_j:
            used_i.add(i), used_j.add(j)
            pairs.append((i, j))
    return pairs


def soft_f1(matched_sum: float, num_pred: int, num_ref: int) -> float:
    """F1 where each match contributes its similarity: 2·Σsim / (|pred| + |ref|).

    Two empty sets agree perfectly (1.0).
    """
    if num_pred + num_ref == 0:
        return 1.0
    return 2.0 * matched_sum / (num_pred + num_ref)


def multiset_f1(pred: list, ref: list) -> float:
    """F1 of two multisets (each item matched at most as often as it occurs in both)."""
    common = sum((Counter(pred) & Counter(ref)).values())
    return soft_f1(common, len(pred), len(ref))
