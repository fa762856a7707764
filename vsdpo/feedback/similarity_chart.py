"""ChartMimic-style similarity of a chart render to its reference, from traced artists.

No model weights, only the elements the chart tracer reports:
- text: F1 over the multiset of non-empty strings drawn (titles, labels, ticks, legend);
- type: F1 over the set of data-artist kinds (`Rectangle` for bars, `Line2D`, `Wedge`, ...);
- color: soft F1 over the distinct data colours, matched greedily by CIEDE2000 similarity;
- layout: soft F1 over the axes boxes (normalised to the canvas), matched by IoU.
Each component is in [0, 1]; a chart compared with itself scores 1.0 on all of them.
"""

import numpy as np

from vsdpo.feedback.color import color_similarity
from vsdpo.feedback.geometry import iou
from vsdpo.feedback.matching import greedy_match, multiset_f1, soft_f1
from vsdpo.render.types import RenderResult

DATA_ROLE = "data"
AXES_ROLE = "axes"


def _texts(result: RenderResult) -> list[str]:
    return [e.text.strip() for e in result.elements if e.text.strip()]


def _data_kinds(result: RenderResult) -> list[str]:
    return sorted({e.kind for e in result.elements if e.role == DATA_ROLE})


def _data_colors(result: RenderResult) -> list[tuple[int, int, int]]:
    colors = {tuple(e.color) for e in result.elements if e.role == DATA_ROLE and e.color}
    return sorted(colors)


def _axes_boxes(result: RenderResult) -> list[tuple[float, float, float, float]]:
    w, h = max(result.width, 1), max(result.height, 1)
    return [(e.bbox[0] / w, e.bbox[1] / h, e.bbox[2] / w, e.bbox[3] / h)
            for e in result.elements if e.role == AXES_ROLE]


def color_score(pred: list, ref: list) -> float:
    if not pred or not ref:
        return soft_f1(0.0, len(pred), len(ref))
    sim_MN = color_similarity(np.array(pred)[:, None, :], np.array(ref)[None, :, :])
    return soft_f1(float(sum(sim_MN[i, j] for i, j in greedy_match(sim_MN))), len(pred), len(ref))


def layout_score(pred: list, ref: list) -> float:
    sim_MN = np.array([[iou(a, b) for b in ref] for a in pred]).reshape(len(pred), len(ref))
    return soft_f1(float(sum(sim_MN[i, j] for i, j in greedy_match(sim_MN))), len(pred), len(ref))


def chart_similarity(result: RenderResult, reference: RenderResult) -> dict[str, float]:
    """Components `text`, `type`, `color`, `layout`, each in [0, 1]."""
    return {
        "text": multiset_f1(_texts(result), _texts(reference)),
        "type": multiset_f1(_data_kinds(result), _data_kinds(reference)),
        "color": color_score(_data_colors(result), _data_colors(reference)),
        "layout": layout_score(_axes_boxes(result), _axes_boxes(reference)),
    }
