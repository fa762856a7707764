"""ChartMimic's low-level scores (text, layout, type, colour), as ChartMimic defines them.

These are `vsdpo eval`'s `chartmimic/*` columns, computed from the `ChartLog` the chart
worker records (`vsdpo.render.chart_log`) and re-derived from ChartMimic's evaluators in
`chart2code/utils/evaluator/`: `text_evaluator.py`, `layout_evaluator.py`,
`chart_type_evaluator.py`, `color_evaluator.py` with `color_utils.py`. They are not the
training reward: the reward's `sim_*` terms are `similarity_chart.py`'s look-alikes, left as
they are so that running experiments stay comparable. docs/eval.md (ChartMimic) lists where
the two differ, and where these still differ from ChartMimic.

Each score is ChartMimic's F1, 2·matched / (|generated| + |reference|), with:
- text: matched = lines drawn in both (a multiset: each line as often as in both);
- layout: matched = grid positions in both (a multiset);
- type: matched = Σ over plotting functions of min(calls in each);
- color: matched = Σ over drawing functions of the best one-to-one pairing of their colours,
  each pair scoring 1 − ΔE00/100 (colormap names: 1 if equal, else 0; a colour against a
  name: 0). A side with more than 10 colours is first thinned: a colour more than 0.7
  similar to one kept before it is dropped.
A side with nothing logged scores 0, even against an empty reference (ChartMimic's rule).
"""

from collections import Counter, defaultdict

import numpy as np
from scipy.optimize import linear_sum_assignment

from vsdpo.feedback.color import color_similarity
from vsdpo.render.types import ChartLog, RenderResult

MAX_COLORS = 10        # more colours than this are thinned (ChartMimic's `filter_color`)
THIN_SIMILARITY = 0.7  # ... dropping each within this similarity of one kept before it


def _f1(matched: float, num_pred: int, num_ref: int) -> float:
    if num_pred == 0 or num_ref == 0:
        return 0.0
    return 2.0 * matched / (num_pred + num_ref)


def multiset_score(pred: list, ref: list) -> float:
    """Text, layout and type: F1 of two multisets (lines, grid positions, plotting calls)."""
    return _f1(sum((Counter(pred) & Counter(ref)).values()), len(pred), len(ref))


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def _similarity_MN(pred: list[str], ref: list[str]) -> np.ndarray:
    """1 − ΔE00/100 between hex colours; 1/0 (equal or not) between colormap names."""
    sim_MN = np.zeros((len(pred), len(ref)))
    for i, a in enumerate(pred):
        for j, b in enumerate(ref):
            if a.startswith("#") and b.startswith("#"):
                sim_MN[i, j] = color_similarity(_rgb(a), _rgb(b))
            elif not a.startswith("#") and not b.startswith("#"):
                sim_MN[i, j] = float(a == b)
    return sim_MN


def thin_colors(colors: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """ChartMimic's `filter_color`, in drawing order: above 10 colours, drop each that is
    more than 0.7 similar to one kept before it (whatever function drew either)."""
    if len(colors) <= MAX_COLORS:
        return colors
    kept = []
    for group, color in colors:
        if not kept or _similarity_MN([color], [c for _, c in kept]).max() <= THIN_SIMILARITY:
            kept.append((group, color))
    return kept


def color_score(pred: list[tuple[str, str]], ref: list[tuple[str, str]]) -> float:
    """Soft F1 of (drawing function, colour) pairs, matched only within a function."""
    pred, ref = thin_colors(pred), thin_colors(ref)
    by_group = defaultdict(lambda: ([], []))
    for side, pairs in ((0, pred), (1, ref)):
        for group, color in pairs:
            by_group[group][side].append(color)
    matched = 0.0
    for pred_colors, ref_colors in by_group.values():
        if pred_colors and ref_colors:
            sim_MN = _similarity_MN(pred_colors, ref_colors)
            rows, cols = linear_sum_assignment(sim_MN, maximize=True)
            matched += float(sim_MN[rows, cols].sum())
    return _f1(matched, len(pred), len(ref))


def chartmimic_scores(result: RenderResult, reference: RenderResult) -> dict[str, float]:
    """`text`, `layout`, `type`, `color` of `result` against `reference`, each in [0, 1];
    all 0 when `result` did not render."""
    pred, ref = result.chart_log or ChartLog(), reference.chart_log or ChartLog()
    return {
        "text": multiset_score(pred.texts, ref.texts),
        "layout": multiset_score(pred.grid, ref.grid),
        "type": multiset_score(pred.calls, ref.calls),
        "color": color_score(pred.colors, ref.colors),
    }
