"""Design2Code-style similarity of a web page (or slide) render to its reference, from the DOM.

Text blocks are the elements with direct text (the DOM probe reports each node's own text,
not its descendants'), with a positive area. Blocks are matched first by equal
text, then greedily by `difflib` ratio (≥ `MIN_TEXT_RATIO`). Components, each in [0, 1]:
- block: matched text length over all text length, both pages (unmatched blocks cost);
- text: mean difflib ratio of the matched pairs;
- position: mean `1 − max(|Δcx|, |Δcy|)` of the matched pairs, centres normalised per page;
- color: mean CIEDE2000 similarity of the matched pairs' text colours.
Without matches, text/position/color are 0 (1.0 when both pages have no text at all).
"""

import difflib
from collections import Counter, defaultdict

import numpy as np

from vsdpo.feedback.color import color_similarity
from vsdpo.feedback.geometry import area
from vsdpo.feedback.matching import greedy_match
from vsdpo.render.types import Element, RenderResult

MIN_TEXT_RATIO = 0.5


def text_blocks(result: RenderResult) -> list[Element]:
    return [e for e in result.elements if e.text.strip() and area(e.bbox) > 0]


def _norm(text: str) -> str:
    return " ".join(text.split())


def _char_counts(texts: list[str], alphabet: dict[str, int]) -> np.ndarray:
    counts_MA = np.zeros((len(texts), len(alphabet)), dtype=np.int32)
    for i, t in enumerate(texts):
        for ch, n in Counter(t).items():
            counts_MA[i, alphabet[ch]] = n
    return counts_MA


def _fuzzy_ratios(left: list[str], right: list[str]) -> np.ndarray:
    """difflib ratios `[M, N]`: per row, candidates in order of the character-bag upper
    bound (difflib's `quick_ratio`, vectorised here), stopping once the bound falls below
    the row's best ratio so far (or `MIN_TEXT_RATIO`); entries not computed stay 0."""
    sim_MN = np.zeros((len(left), len(right)))
    if not left or not right:
        return sim_MN
    alphabet = {ch: k for k, ch in enumerate(sorted(set("".join(left + right))))}
    counts_MA, counts_NA = _char_counts(left, alphabet), _char_counts(right, alphabet)
    lengths_MN = counts_MA.sum(1)[:, None] + counts_NA.sum(1)[None, :]
    common_MN = np.zeros(lengths_MN.shape, dtype=np.int64)
    for a in range(len(alphabet)):  # Σ_char min(count_left, count_right)
        common_MN += np.minimum(counts_MA[:, a, None], counts_NA[None, :, a])
    bound_MN = 2.0 * common_MN / np.maximum(lengths_MN, 1)
    for a in range(len(left)):
        best, matcher = MIN_TEXT_RATIO, difflib.SequenceMatcher(None, b=left[a])
        for b in np.argsort(-bound_MN[a], kind="stable"):
            if bound_MN[a, b] < best:  # no later candidate of this row can beat `best`
                break
            matcher.set_seq1(right[b])
            sim_MN[a, b] = matcher.ratio()
            best = max(best, sim_MN[a, b])
    return sim_MN


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
    sim_MN = _fuzzy_ratios([_norm(pred[i].text) for i in left], [_norm(ref[j].text) for j in right])
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
