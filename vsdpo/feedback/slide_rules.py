"""AeSlides-style layout rules for a slide render; they need no reference.

Computed on the leaf elements (no children, positive area) of a 1280×720 (16:9) slide:
- aspect: how close the used canvas (the viewport grown to the content's extent) stays to
  16:9, `min(ratio / (16/9), (16/9) / ratio)`; content spilling below the slide lowers it;
- whitespace: 1 when the uncovered fraction of the slide is within `WHITESPACE_RANGE`,
  falling linearly to 0 at a fully empty or fully covered slide;
- collisions: 1 − the fraction of leaves whose box overlaps another leaf's box;
- balance: mean of left/right and top/bottom balance of covered area, `1 − |a − b| / (a + b)`.
Each in [0, 1]; an empty slide scores 0 on whitespace and balance.
"""

import numpy as np

from vsdpo.feedback.geometry import coverage_mask, intersection_area, leaves
from vsdpo.render.types import RenderResult

ASPECT = 16 / 9
WHITESPACE_RANGE = (0.2, 0.6)


def _aspect(result: RenderResult, boxes) -> float:
    right = max([result.width] + [b[2] for b in boxes])
    bottom = max([result.height] + [b[3] for b in boxes])
    if right <= 0 or bottom <= 0:
        return 0.0
    ratio = right / bottom
    return min(ratio / ASPECT, ASPECT / ratio)


def _whitespace(mask_HW: np.ndarray) -> float:
    free = 1.0 - float(mask_HW.mean())
    lo, hi = WHITESPACE_RANGE
    if free < lo:
        return free / lo
    if free > hi:
        return (1.0 - free) / (1.0 - hi)
    return 1.0


def _collisions(boxes) -> float:
    if not boxes:
        return 1.0
    hit = set()
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if intersection_area(boxes[i], boxes[j]) > 0:
                hit.update((i, j))
    return 1.0 - len(hit) / len(boxes)


def _balance(mask_HW: np.ndarray) -> float:
    def even(a: float, b: float) -> float:
        return 1.0 - abs(a - b) / (a + b) if a + b > 0 else 0.0
    h, w = mask_HW.shape
    left, right = mask_HW[:, : w // 2].sum(), mask_HW[:, w - w // 2:].sum()
    top, bottom = mask_HW[: h // 2].sum(), mask_HW[h - h // 2:].sum()
    return 0.5 * (even(float(left), float(right)) + even(float(top), float(bottom)))


def slide_rules(result: RenderResult) -> dict[str, float]:
    """Components `aspect`, `whitespace`, `collisions`, `balance`, each in [0, 1]."""
    boxes = [result.elements[i].bbox for i in leaves(result.elements)]
    mask_HW = coverage_mask(boxes, result.width, result.height)
    return {
        "aspect": _aspect(result, boxes),
        "whitespace": _whitespace(mask_HW),
        "collisions": _collisions(boxes),
        "balance": _balance(mask_HW),
    }
