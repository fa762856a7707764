"""Design2Code's visual score of a page render against its reference: the `design2code/*`
columns of `vsdpo eval`, for evaluation only.

Re-derived from Design2Code's definition (NoviScl/Design2Code, `metrics/visual_score.py`,
`visual_eval_v3_multi`, and `metrics/ocr_free_utils.py`, `get_blocks_ocr_free`), but from what
our render records (DOM probe and screenshot) instead of two extra re-coloured renders. The
training reward's `sim_*` terms (`similarity_web.py`) are a cheaper cousin and are not this.

- Blocks. Design2Code paints every text-tag element (`TEXT_TAGS`) in a colour of its own; a
  block is the text that inherits that colour (the element's own text nodes and those of
  descendants that are not text tags, lower-cased, joined by spaces) and the glyph pixels of
  that colour. Here the same grouping runs over the probe's elements; a block's box is the
  bounding box of its glyph cores in the screenshot (inside the group's text line boxes), its
  colour their mean. Text that paints no glyph is no block.
- Matching. Costs are −`SequenceMatcher(pred, ref).ratio()`; an optimal assignment
  (Hungarian); neighbouring blocks on one side are merged while a merge lowers the mean of
  the assigned costs by more than `MERGE_GAIN`; the final assignment adds a context bonus
  (`CONTEXT_BONUS` × the two best costs around the cell); pairs below `MIN_TEXT_RATIO` drop.
- Scores. block: matched box area over all box area (areas as page fractions); text: mean
  ratio of the pairs; position: mean `1 − max(|Δcx|, |Δcy|)` of the box centres (page
  fractions); color: mean `max(0, 1 − CIEDE2000/100)` of the glyph colours. No block on a side,
  or no pair: all four are 0. final: `0.2 × (block + text + position + color + clip)`.

docs/eval.md (Design2Code) lists each rule with its source and what still differs.
Shapes: `_MN` predicted blocks × reference blocks; `_HW3` an RGB screenshot.
"""

import io
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np
from PIL import Image
from scipy.optimize import linear_sum_assignment

from vsdpo.feedback.color import color_similarity
from vsdpo.render.types import BBox, RenderResult

# the tags Design2Code re-colours (ocr_free_utils.process_html); other tags' text inherits
TEXT_TAGS = frozenset(("p", "h1", "h2", "h3", "h4", "h5", "h6", "div", "span", "a", "b", "li",
                       "table", "td", "th", "button", "footer", "header", "figcaption"))
MIN_PAGE_HEIGHT = 720  # Design2Code screenshots full pages in a 1280×720 viewport
MIN_TEXT_RATIO = 0.5
MERGE_GAIN = 0.05
CONTEXT_BONUS = 0.1
# A glyph core pixel differs from its line's background (the line box's most common colour)
# by at least CORE × the line's largest difference: Design2Code keeps only the pixels drawn in
# (nearly) the exact text colour, the anti-aliased rim falls outside. Below MIN_INK no glyph.
CORE, MIN_INK = 0.75, 16


@dataclass
class Block:
    text: str
    box: tuple[float, float, float, float]  # x, y, w, h as fractions of the page's size
    color: np.ndarray  # RGB, (3,)


def page_blocks(result: RenderResult) -> list[Block]:
    """Design2Code's text blocks of one render, in document order."""
    image_HW3 = np.asarray(Image.open(io.BytesIO(result.image)).convert("RGB")) \
        if result.image else None
    width, height = max(result.width, 1), _page_height(result)
    owner, groups = [], {}
    for i, e in enumerate(result.elements):
        up = owner[e.parent] if e.parent is not None else None
        owner.append(i if e.kind in TEXT_TAGS else up)
        if owner[i] is not None and e.full_text:
            groups.setdefault(owner[i], []).append(e)
    blocks = []
    for head, members in groups.items():
        found = _glyphs(image_HW3, [r for e in members for r in e.text_rects])
        if found is None:
            continue
        (x0, y0, x1, y1), color = found
        color = color if color is not None else np.array(result.elements[head].color or (0,) * 3)
        blocks.append(Block(" ".join(e.full_text.lower() for e in members),
                            (x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height),
                            color))
    return blocks


def _page_height(result: RenderResult) -> float:
    """The height of the whole document (Design2Code's full-page screenshot), ≥ 720 px."""
    roots = [e.bbox[3] for e in result.elements if e.kind in ("html", "body")]
    lines = [r[3] for e in result.elements for r in e.text_rects]
    return max([MIN_PAGE_HEIGHT, *roots, *lines])


def _glyphs(image_HW3: np.ndarray | None, rects: list[BBox]):
    """(box in page pixels, mean RGB) of the glyph cores inside `rects`; None when the lines
    paint nothing. Lines outside the screenshot (past its height cap, or no screenshot)
    count whole, with colour None (the caller's CSS colour)."""
    height = 0 if image_HW3 is None else image_HW3.shape[0]
    seen = [r for r in rects if r[1] < height]
    if not seen:
        if not rects:
            return None
        x0, y0, x1, y1 = np.array(rects).T
        return (x0.min(), y0.min(), x1.max(), y1.max()), None
    cores = []  # (rows, columns, RGB) of each line's glyph cores
    for x0, y0, x1, y1 in seen:
        top, left = max(int(y0), 0), max(int(x0), 0)
        crop_HW3 = image_HW3[top:int(np.ceil(y1)), left:int(np.ceil(x1))].astype(np.int32)
        if crop_HW3.size == 0:
            continue
        packed = (crop_HW3[..., 0] << 16 | crop_HW3[..., 1] << 8 | crop_HW3[..., 2]).ravel()
        values, counts = np.unique(packed, return_counts=True)
        mode = values[counts.argmax()]
        background = np.array([mode >> 16, mode >> 8 & 255, mode & 255])
        distance_HW = np.abs(crop_HW3 - background).max(-1)
        if distance_HW.max() < MIN_INK:
            continue
        y, x = np.nonzero(distance_HW >= CORE * distance_HW.max())
        cores.append((y + top, x + left, crop_HW3[y, x]))
    if not cores:
        return None
    ys, xs, colors = (np.concatenate(c) for c in zip(*cores))
    color = colors.mean(0).astype(int)  # Design2Code truncates the mean
    return (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), color


def _merged(a: Block, b: Block) -> Block:
    """Two neighbours as one: texts joined, boxes united, colours averaged (floored)."""
    x0, y0 = min(a.box[0], b.box[0]), min(a.box[1], b.box[1])
    x1 = max(a.box[0] + a.box[2], b.box[0] + b.box[2])
    y1 = max(a.box[1] + a.box[3], b.box[1] + b.box[3])
    color = np.floor((a.color + b.color) / 2)
    return Block(f"{a.text} {b.text}", (x0, y0, x1 - x0, y1 - y0), color)


def _ratios(pred: list[str], ref: list[str]) -> np.ndarray:
    """`[M, N]` text similarity, `SequenceMatcher(None, pred, ref).ratio()` (not symmetric)."""
    sim_MN = np.zeros((len(pred), len(ref)))
    for j, text in enumerate(ref):
        matcher = SequenceMatcher(None, b=text)  # the reference side's index, built once
        for i, other in enumerate(pred):
            matcher.set_seq1(other)
            sim_MN[i, j] = matcher.ratio()
    return sim_MN


def _with_context(cost_MN: np.ndarray, bonus: float) -> np.ndarray:
    """Each confident cell (cost < −0.5) adds `bonus` × the two lowest other costs of its
    3×3 neighbourhood: a pair whose neighbours also pair well is likelier right."""
    out_MN = cost_MN.copy()
    for i, j in zip(*np.nonzero(cost_MN < -0.5)):
        near = np.sort(cost_MN[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2], axis=None)
        near = np.delete(near, np.flatnonzero(near == cost_MN[i, j])[0])
        out_MN[i, j] += bonus * near[:2].sum()
    return out_MN


def _assignment(sim_MN: np.ndarray, bonus: float = 0.0):
    """The optimal assignment: rows, columns and the assigned costs."""
    cost_MN = -sim_MN if bonus == 0.0 else _with_context(-sim_MN, bonus)
    rows, cols = linear_sum_assignment(cost_MN)
    return rows, cols, cost_MN[rows, cols]


def _gain(before: np.ndarray, after: np.ndarray) -> float:
    """Design2Code's `difference_of_means`: drop the costs both assignments share, then the
    mean of what is left of `before` minus that of `after`; a positive gain counts only if
    `after` also holds the single best cost."""
    old, new = Counter(before.tolist()), Counter(after.tolist())
    common = old & new
    old, new = list((old - common).elements()), list((new - common).elements())
    diff = (np.mean(old) if old else 0.0) - (np.mean(new) if new else 0.0)
    if diff > 0 and min(old) <= min(new):
        return 0.0
    return float(diff)


def _merge_neighbours(pred: list[Block], ref: list[Block], sim_MN: np.ndarray, axis: int):
    """One merge pass over one side (`axis` 0: pred, 1: ref): every neighbour merge that
    gains more than `MERGE_GAIN` on its own, best first, none sharing a block."""
    blocks = list(pred if axis == 0 else ref)
    before = _assignment(sim_MN)[2]

    def ratios(block):  # the merged block against the other side
        if axis == 0:
            return _ratios([block.text], [b.text for b in ref])[0]
        return _ratios([b.text for b in pred], [block.text])[:, 0]

    merges = []
    for i in range(len(blocks) - 1):
        block = _merged(blocks[i], blocks[i + 1])
        line = ratios(block)
        trial_MN = np.delete(sim_MN, i + 1, axis)
        np.moveaxis(trial_MN, axis, 0)[i] = line
        gain = _gain(before, _assignment(trial_MN)[2])
        if gain > MERGE_GAIN:
            merges.append((gain, i, block, line))
    merges.sort(key=lambda m: m[0], reverse=True)
    sim_MN, taken = sim_MN.copy(), set()
    for _, i, block, line in merges:
        if not taken & {i, i + 1}:
            taken |= {i, i + 1}
            blocks[i], blocks[i + 1] = block, None
            np.moveaxis(sim_MN, axis, 0)[i] = line
    kept = [k for k, b in enumerate(blocks) if b is not None]
    sim_MN, blocks = np.take(sim_MN, kept, axis), [blocks[k] for k in kept]
    if axis == 0:
        return blocks, ref, sim_MN, bool(merges)
    return pred, blocks, sim_MN, bool(merges)


def match_blocks(pred: list[Block], ref: list[Block]):
    """Design2Code's `find_possible_merge` and its filter: the merged blocks of both sides
    and the pairs `(pred index, ref index, text ratio)` with ratio ≥ `MIN_TEXT_RATIO`."""
    sim_MN = _ratios([b.text for b in pred], [b.text for b in ref])
    changed = True
    while changed:
        pred, ref, sim_MN, changed_pred = _merge_neighbours(pred, ref, sim_MN, axis=0)
        pred, ref, sim_MN, changed_ref = _merge_neighbours(pred, ref, sim_MN, axis=1)
        changed = changed_pred or changed_ref
    rows, cols, _ = _assignment(sim_MN, CONTEXT_BONUS)
    pairs = [(i, j, float(sim_MN[i, j])) for i, j in zip(rows, cols)
             if sim_MN[i, j] >= MIN_TEXT_RATIO]
    return pred, ref, pairs


def _centre(b: Block) -> np.ndarray:
    return np.array([b.box[0] + b.box[2] / 2, b.box[1] + b.box[3] / 2])


def _area(b: Block) -> float:
    return b.box[2] * b.box[3]


def block_scores(pred: list[Block], ref: list[Block]) -> dict[str, float]:
    """block, text, position and color of two pages' blocks; all 0 when nothing pairs."""
    if not pred or not ref:
        return dict.fromkeys(("block", "text", "position", "color"), 0.0)
    pred, ref, pairs = match_blocks(pred, ref)
    if not pairs:
        return dict.fromkeys(("block", "text", "position", "color"), 0.0)
    matched = sum(_area(pred[i]) + _area(ref[j]) for i, j, _ in pairs)
    total = sum(map(_area, pred)) + sum(map(_area, ref))
    position = [1.0 - np.abs(_centre(pred[i]) - _centre(ref[j])).max() for i, j, _ in pairs]
    color = color_similarity([pred[i].color for i, _, _ in pairs],
                             [ref[j].color for _, j, _ in pairs])
    return {"block": float(matched / total), "text": float(np.mean([r for _, _, r in pairs])),
            "position": float(np.mean(position)), "color": float(np.mean(color))}


def design2code_scores(result: RenderResult, reference: RenderResult,
                       clip: float = 0.0) -> dict[str, float]:
    """The four block columns and `final` = 0.2 × (the four + `clip`), Design2Code's score
    (`clip` 0 without a CLIP model). A failed render has no blocks and scores 0.2 × clip."""
    scores = block_scores(page_blocks(result), page_blocks(reference))
    return scores | {"final": float(0.2 * (sum(scores.values()) + clip))}
