"""Design2Code-style similarity of a web page (or slide) render to its reference, from the DOM.

Text blocks are the innermost elements carrying text. Blocks are matched first by equal
text, then greedily by `difflib` ratio (≥ `MIN_TEXT_RATIO`). Components, each in [0, 1]:
- block: matched text length over all text length, both pages (unmatched blocks cost);
- text: mean difflib ratio of the matched pairs;
- position: mean `1 − max(|Δcx|, |Δcy|)` of the matched pairs, centres normalised per page;
- color: mean CIEDE2000 similarity of the matched pairs' text colours.
Without matches, text/position/color are 0 (1.0 when both pages have no text at all).
"""

import difflib
from collections import defaultdict

import numpy as np

from vsdpo.feedback.color import color_similarity
from vsdpo.feedback.matching import greedy_match
from vsdpo.render.types import Element, RenderResult

MIN_TEXT_RATIO = 0.5


def text_blocks(result: RenderResult) -> list[Element]:
    """Elements with text that contain no other element with text."""
    with_text = [i for i, e in enumerate(result.elements) if e.text.strip()]
    text_parents = {result.elements[i].parent for i in with_text}
    return [result.elements[i] for i in with_text if i not in text_parents]


def _norm(text: str) -> str:
    return " ".join(text.split())


def match_blocks(pred: list[Element], ref: list[Element]) -> list[tuple[int, int, float]]:
    """(pred index, ref index, text ratio): exact text first, then fuzzy best-first."""
    by_text = defaultdict(list)
    for j, b in enumerate(ref):
        by_text[_norm(b.text)].append(j)
    pairs, left = [], []
    for i, b in enumerate(pred):
        js = by_text.get(_norm(b.text))
        if js:
            pairs.append((i, js.pop(0), 1.0))
        else:
            left.append(i)
    right = [j for js in by_text.values() for j in js]
    sim_MN = np.zeros((len(left), len(right)))
    for a, i in enumerate(left):
        matcher = difflib.SequenceMatcher(None, _norm(pred[i].text), autojunk=False)
        for b, j in enumerate(right):
            matcher.set_seq2(_norm(ref[j].text))
            if matcher.real_quick_ratio() >= MIN_TEXT_RATIO and matcher.quick_ratio() >= MIN_TEXT_RATIO:
                sim_MN[a, b] = matcher.ratio()
    for a, b in greedy_match(sim_MN, threshold=MIN_TEXT_RATIO - 1e-9):
        pairs.append((left[a], right[b], float(sim_MN[a, b])))
    return pairs


def _centre(e: Element, result: RenderResult) -> np.ndarray:
    x0, y0, x1, y1 = e.bbox
    return np.array([(x0 + x1) / 2 / max(result.width, 1), (y0 + y1) / 2 / max(result.height, 1)])


def web_similarity(result: RenderResult, reference: RenderResult) -> dict[str, float]:
    """Components `block`, `text`, `position`, `color`, each in [0, 1]."""
    pred, ref = text_blocks(result), text_blocks(reference)
    if not pred and not ref:
        return {"block": 1.0, "text": 1.0, "position": 1.0, "color": 1.0}
    pairs = match_blocks(pred, ref)
    if not pairs:
        return {"block": 0.0, "text": 0.0, "position": 0.0, "color": 0.0}
    total = sum(len(_norm(b.text)) for b in pred) + sum(len(_norm(b.text)) for b in ref)
    matched = sum(len(_norm(pred[i].text)) + len(_norm(ref[j].text)) for i, j, _ in pairs)
    position = [1.0 - float(np.abs(_centre(pred[i], result) - _centre(ref[j], reference)).max())
                for i, j, _ in pairs]
    black = (0, 0, 0)
    color = color_similarity([pred[i].color or black for i, _, _ in pairs],
                             [ref[j].color or black for _, j, _ in pairs])
    return {
        "block": matched / total if total else 1.0,
        "text": float(np.mean([r for _, _, r in pairs])),
        "position": float(np.clip(np.mean(position), 0.0, 1.0)),
        "color": float(np.mean(color)),
    }
