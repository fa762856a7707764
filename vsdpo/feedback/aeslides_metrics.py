"""AeSlides' layout metrics, as its public code defines them, for `vsdpo eval` only.

AeSlides (Pan et al. 2026) trains on four verifiable rewards (aspect ratio, whitespace,
overlap, centroid; `src/gdpo.py`) and publishes code for three of them, in
github.com/ympan0508/aeslides `src/`. Each is recomputed here from our render:
- `aspect_ratio_reward` (`reward.py`): exp(−16·e² − 64·max(−e − 0.04, 0)²),
  e = ln(r / (16/9)), r = 1280 / the slide's adaptive height (`RenderResult.adaptive_height`); 1 only at 16:9
  exactly, and a slide taller than 16:9 loses faster than a wider one.
  `aspect_compliant`: 1 when the reward is 1.
- `content_ratio_crop`, `content_ratio_full` (`whitespace.py`): the share of pixels whose
  local grey-level standard deviation (21×21 Gaussian blur, then a 201×151 box window)
  exceeds 2.5 (0.05 of a 50 clip), inside the slide less 15% at the top and 10% at the other
  sides, and over the whole slide. Low means mostly whitespace.
- `centroid_score` (`centroid.py`): the area-weighted centre of the slide's text, images and
  icons, offset from the slide centre in tolerance units (0.75% of the width, 14.5% of the
  height), √((dx/tol_x)² + (dy/tol_y)²); `imbalanced`: 1 when it exceeds 1.
The overlap reward has no public code: `vsdpo eval` keeps our `slide_rules/collisions` for it.
docs/eval.md (AeSlides) lists the deviations (PNG not JPEG, no class or font-family cues for
icons, no background-image residuals, element boxes for long text).

The reward's `slide_rules.py` is separate and unchanged: an experiment trains on it.
"""

import io
import math

import numpy as np
from PIL import Image
from scipy import ndimage

from vsdpo.feedback.geometry import area
from vsdpo.render.types import BBox, Element, RenderResult

SLIDE_W, SLIDE_H = 1280, 720
# reward.py
TARGET, ALPHA, BETA, MARGIN = SLIDE_W / SLIDE_H, 16.0, 64.0, 0.04
# whitespace.py
GAUSS_K, BOX_W, BOX_H, STD_CLIP, THRESHOLD = 21, 201, 151, 50.0, 0.05
CROP = (0.15, 0.10, 0.10, 0.10)  # top, bottom, left, right
# centroid.py
TOL_X, TOL_Y, MIN_AREA, ICON_WEIGHT, LONG_TEXT = 0.0075, 0.145, 4.0, 0.5, 24
TEXT_TAGS = {"p", "span", "h1", "h2", "h3", "h4", "h5", "h6", "small", "strong", "label",
             "li", "td", "th", "a", "button"}
IMAGE_TAGS = {"img", "picture", "canvas", "video", "svg"}
ATOMIC_TAGS = IMAGE_TAGS | {"iframe", "object", "embed", "button", "input", "textarea", "select",
                           "option", "progress", "meter"}


def aeslides_metrics(result: RenderResult) -> dict[str, float]:
    """Every AeSlides metric the render allows: the aspect pair needs `adaptive_height`,
    the content ratios the screenshot, the centroid at least one weighted item."""
    out = {}
    if result.adaptive_height:
        reward = aspect_ratio_reward(SLIDE_W, result.adaptive_height)
        out |= {"aspect_ratio_reward": reward, "aspect_compliant": float(reward == 1.0)}
    if result.image:
        rgb_HW3 = np.asarray(Image.open(io.BytesIO(result.image)).convert("RGB"), np.float32)
        out |= content_ratios(np.rint(rgb_HW3 @ np.array([0.299, 0.587, 0.114], np.float32)))
    score = centroid_score(result.elements, result.width or SLIDE_W, result.height or SLIDE_H)
    if score is not None:
        out |= {"centroid_score": score, "imbalanced": float(score > 1.0)}
    return out


def aspect_ratio_reward(width: float, height: float) -> float:
    """1 at 16:9; exp(−α·e² − β·max(−e − margin, 0)²) off it, e = ln(ratio / 16:9)."""
    if width <= 0 or height <= 0:
        return 0.0
    e = math.log(width / height / TARGET)
    if e == 0.0:
        return 1.0
    return math.exp(-ALPHA * e * e - BETA * max(-e - MARGIN, 0.0) ** 2)


def content_ratios(gray_HW: np.ndarray) -> dict[str, float]:
    """Share of content pixels in the crop and in the whole grey image (float, 0–255)."""
    # OpenCV's GaussianBlur(ksize=21, sigma=0): σ = 0.3·((21 − 1)/2 − 1) + 0.8 = 3.5, radius
    # 10, reflect-101 border ("mirror"); its boxFilter reflects with the edge ("reflect")
    sigma = 0.3 * ((GAUSS_K - 1) / 2 - 1) + 0.8
    blurred = ndimage.gaussian_filter(gray_HW.astype(np.float32), sigma, mode="mirror",
                                      truncate=(GAUSS_K // 2) / sigma)
    mean = ndimage.uniform_filter(blurred, (BOX_H, BOX_W), mode="reflect")
    mean_sq = ndimage.uniform_filter(blurred * blurred, (BOX_H, BOX_W), mode="reflect")
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    content_HW = np.clip(std, 0.0, STD_CLIP) / STD_CLIP > THRESHOLD
    h, w = content_HW.shape
    top, bottom, left, right = CROP
    crop = content_HW[int(h * top):int(h * (1 - bottom)), int(w * left):int(w * (1 - right))]
    return {"content_ratio_crop": float(crop.mean()),
            "content_ratio_full": float(content_HW.mean())}


def centroid_score(elements: list[Element], width: float, height: float) -> float | None:
    """Offset of the weighted visual centre from the slide centre, in tolerance units; None
    when nothing on the slide carries weight."""
    items = _weighted_items(elements, width, height)  # (x, y, weight)
    total = sum(w for _, _, w in items)
    if total <= 0:
        return None
    cx = sum(x * w for x, _, w in items) / total
    cy = sum(y * w for _, y, w in items) / total
    dx, dy = (cx - width / 2) / width, (cy - height / 2) / height
    return math.hypot(dx / TOL_X, dy / TOL_Y)


def _weighted_items(elements: list[Element], width: float, height: float):
    """centroid.py's items from our elements: text boxes, images and atomic leaves by their
    area, icons (`<i>` with at most 16 characters) by half of it; boxes clipped to the slide."""
    children = [[] for _ in elements]
    for i, e in enumerate(elements):
        if e.parent is not None:
            children[e.parent].append(i)
    inner = _inner_text_lengths(elements, children)
    items = []
    for i, e in enumerate(elements):
        box = _clip(e.bbox, width, height)
        weight = area(box)
        if weight < MIN_AREA or e.kind in ("html", "body"):
            continue
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        text_like = inner[i] > 0 and (e.kind in TEXT_TAGS or bool(e.text)
                                      or inner[i] >= LONG_TEXT)
        if text_like:
            items.append((*centre, weight))
        if e.kind in IMAGE_TAGS:
            items.append((*centre, weight))
        elif e.kind == "i" and inner[i] <= 16:
            items.append((*centre, weight * ICON_WEIGHT))
        elif not text_like and not children[i] and e.kind in ATOMIC_TAGS:
            items.append((*centre, weight))
    return items


def _inner_text_lengths(elements: list[Element], children: list[list[int]]) -> list[int]:
    """Length of each element's text with its descendants' (innerText, whitespace collapsed,
    capped at 240 characters as centroid.py's tree caps it)."""
    lengths = [0] * len(elements)
    for i in reversed(range(len(elements))):  # children come after their parent
        parts = [n for n in [len(elements[i].text)] + [lengths[c] for c in children[i]] if n]
        lengths[i] = min(sum(parts) + max(len(parts) - 1, 0), 240)  # one space between parts
    return lengths


def _clip(box: BBox, width: float, height: float) -> BBox:
    x0, y0 = min(max(box[0], 0), width), min(max(box[1], 0), height)
    return x0, y0, min(max(box[2], 0), width), min(max(box[3], 0), height)
