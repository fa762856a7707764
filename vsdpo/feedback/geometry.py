"""Box geometry shared by credit and the reference metrics. Boxes are `(x0, y0, x1, y1)`."""

import numpy as np

from vsdpo.render.types import BBox, Element


def iou(a: BBox, b: BBox) -> float:
    """Intersection over union of two boxes; 0 when the union has no area."""
    inter = intersection_area(a, b)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def area(box: BBox) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def intersection_area(a: BBox, b: BBox) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, iw) * max(0.0, ih)


def leaves(elements: list[Element]) -> list[int]:
    """Indices of elements no other element names as parent, with a positive area."""
    parents = {e.parent for e in elements if e.parent is not None}
    return [i for i, e in enumerate(elements) if i not in parents and area(e.bbox) > 0]


def coverage_mask(boxes: list[BBox], width: float, height: float, cell: float = 8.0) -> np.ndarray:
    """Boolean `[H/cell, W/cell]` grid, True where any box covers the cell's centre."""
    rows, cols = max(1, int(np.ceil(height / cell))), max(1, int(np.ceil(width / cell)))
    mask_HW = np.zeros((rows, cols), dtype=bool)
    centres_y = (np.arange(rows) + 0.5) * cell
    centres_x = (np.arange(cols) + 0.5) * cell
    for x0, y0, x1, y1 in boxes:
        ys = (centres_y >= y0) & (centres_y < y1)
        xs = (centres_x >= x0) & (centres_x < x1)
        mask_HW |= ys[:, None] & xs[None, :]
    return mask_HW
