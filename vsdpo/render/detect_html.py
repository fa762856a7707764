"""Visual defect detectors for rendered HTML (web pages and slides), on the DOM probe.

Each detector reads the probe's measured boxes and returns `Defect`s whose message carries
the measured numbers and whose spans blame the element's start tag plus the CSS
declarations that caused it, wherever they sit: inherited from an ancestor, imposed by a
constraining one, or a utility class (`css_blame.py`). Severity grows with how much is wrong
(the fraction hidden, overlapped or outside, how far below the contrast threshold).

Run a page through them with `vsdpo render page.html`.
"""

from dataclasses import dataclass

from vsdpo.render.css_blame import PAGE, Blamer
from vsdpo.render.probe import Probe
from vsdpo.render.source_map import SourceMap
from vsdpo.render.types import BBox, Defect, Span

REPLACED = {"img", "svg", "video", "canvas", "input", "button", "select", "textarea",
            "iframe", "object", "embed", "math"}
IMAGES = {"img", "svg", "video", "canvas", "picture"}
FIELDS = {"input", "textarea", "select"}
CLIPPING = {"hidden", "clip"}
CELL, CELL_ITEMS = 128, 64  # the overlap grid: cell size in px, items compared per cell
MAX_PER_KIND = 20  # the most severe defects of each kind are reported


@dataclass(frozen=True)
class Canvas:
    """The render's box: slides are a fixed 1280×720; web pages are viewport-wide."""

    domain: str
    width: int
    height: int


def _severity(x: float) -> float:
    return min(1.0, max(0.05, x))


def _area(b: BBox) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _intersect(a: BBox, b: BBox) -> BBox:
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


def _union(boxes: list[BBox]) -> BBox:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def _is_inline(display: str) -> bool:
    return display in ("inline", "contents")


def _label(probe: Probe, i: int) -> str:
    text = probe.text[i]
    return f"<{probe.tag[i]}>" + (f' "{text[:30]}"' if text else "")


def _painted(probe: Probe, i: int) -> list[BBox]:
    """The boxes element i itself paints: its text lines, or its box if replaced."""
    if not probe.visible[i]:
        return []
    if probe.tag[i] in REPLACED:
        return [probe.box[i]] if _area(probe.box[i]) > 0 else []
    return probe.text_rects[i]


def _filled(probe: Probe, i: int) -> list[BBox]:
    """What element i paints, counting a box filled with its own background colour."""
    p = probe.parent[i]
    under = probe.background[p] if p >= 0 else (255, 255, 255)
    own = probe.visible[i] and _area(probe.box[i]) > 0 and (
        probe.background[i] != under or (probe.background_image[i] and p >= 0
                                         and not probe.background_image[p]))
    return [probe.box[i]] if own and probe.tag[i] not in PAGE else _painted(probe, i)


def _container(probe: Probe, i: int) -> int:
    """The nearest block-level ancestor-or-self of element i: the box its text must fit."""
    while _is_inline(probe.display[i]) and probe.parent[i] >= 0:
        i = probe.parent[i]
    return i


def _candidate_pairs(items: list[tuple[BBox, int]]) -> set[tuple[int, int]]:
    """Index pairs of items whose boxes share a grid cell: O(n) for spread-out pages."""
    cells: dict[tuple[int, int], list[int]] = {}
    for k, (b, _) in enumerate(items):
        for cx in range(int(b[0]) // CELL, int(b[2]) // CELL + 1):
            for cy in range(int(b[1]) // CELL, int(b[3]) // CELL + 1):
                cells.setdefault((cx, cy), []).append(k)
    crowded = [ks[:CELL_ITEMS] for ks in cells.values()]  # bounds a pile of 5000 boxes
    return {(a, c) for ks in crowded for n, a in enumerate(ks) for c in ks[n + 1:]}


def _layered(probe: Probe, i: int, j: int) -> bool:
    """Whether elements i < j are meant to lie on each other: a fixed overlay (a cookie banner,
    a bar) over the page, which hides what it covers; text drawn over an earlier image (a
    caption, a hero banner); a floating label inside its form field."""
    tags = {probe.tag[i], probe.tag[j]}
    return (probe.fixed[i] != probe.fixed[j]
            or (probe.tag[i] in IMAGES and probe.tag[j] not in REPLACED)
            or ("label" in tags and bool(tags & FIELDS)))


def detect_overlap(probe: Probe, blame: Blamer) -> list[Defect]:
    """Text lines and replaced elements of unrelated elements that cover each other."""
    items = [(b, i) for i in range(len(probe)) for b in _painted(probe, i)]
    best: dict[tuple[int, int], tuple[float, BBox]] = {}
    for ka, kb in _candidate_pairs(items):
        (a, i), (b, j) = items[ka], items[kb]
        x = _intersect(a, b)
        if i == j or x[2] - x[0] <= 1 or x[3] - x[1] <= 1:
            continue
        key = (min(i, j), max(i, j))
        if _layered(probe, *key):
            continue
        frac = _area(x) / min(_area(a), _area(b))
        if frac >= 0.1 and frac > best.get(key, (0.0,))[0] and not probe.is_ancestor(*key):
            best[key] = (frac, x)
    defects = []
    for (i, j), (frac, x) in best.items():
        w, h = x[2] - x[0], x[3] - x[1]
        fam = ("position", "margin", "height", "font-size")
        defects.append(Defect(
            "overlap", x, _severity(frac),
            f"{_label(probe, i)} and {_label(probe, j)} overlap by {w:.0f}×{h:.0f}px "
            f"({frac:.0%} of the smaller)",
            blame.union(blame.spans(i, fam), blame.spans(j, fam),
                        blame.placement(i), blame.placement(j))))
    return defects


def _outside(ext: BBox, b: BBox) -> tuple[bool, bool]:
    """Whether `ext` leaves box b horizontally, vertically (by more than a pixel)."""
    return (ext[0] < b[0] - 1 or ext[2] > b[2] + 1), (ext[1] < b[1] - 1 or ext[3] > b[3] + 1)


def _clipper(probe: Probe, start: int, ext: BBox) -> tuple[int, BBox, bool, bool] | None:
    """The nearest ancestor-or-self that hides part of `ext` with overflow hidden/clip, and
    whether it cuts it horizontally, vertically."""
    i = start
    while i >= 0:
        ox, oy = probe.overflow[i][:2]
        b = probe.box[i]
        out_x, out_y = _outside(ext, b)
        cut_x, cut_y = ox in CLIPPING and out_x, oy in CLIPPING and out_y
        if (cut_x or cut_y) and _area(_intersect(ext, b)) > 0:
            return i, b, cut_x, cut_y
        i = probe.parent[i]
    return None


def _overflow_message(ext: BBox, b: BBox) -> tuple[str, float]:
    """Which way the text leaves its box, with the numbers, and the fraction outside."""
    tw, th, bw, bh = ext[2] - ext[0], ext[3] - ext[1], b[2] - b[0], b[3] - b[1]
    out = 1 - _area(_intersect(ext, b)) / max(_area(ext), 1e-6)
    if ext[2] > b[2] + 1 or ext[0] < b[0] - 1:
        return f"text is {tw:.0f}px wide in a {bw:.0f}px box", out
    return f"text is {th:.0f}px tall in a {bh:.0f}px box", out


def _clipped(probe: Probe, blame: Blamer, t: int, ext: BBox) -> tuple[int, Defect] | None:
    """Text of element t partly hidden by an ancestor-or-self with overflow hidden/clip."""
    clip = _clipper(probe, _container(probe, t), ext)
    if clip is None:
        return None
    a, b, cut_x, cut_y = clip
    msg, frac = _overflow_message(ext, b)
    if frac <= 0.01:
        return None
    # the clipping box's overflow and its size on the cut axis; nowrap text, when cut across
    parts = [blame.spans(t)]
    if cut_x:
        parts += [blame.spans(a, ("overflow-x",)), blame.constraint(a, "x"),
                  blame.spans(t, ("white-space",))]
    if cut_y:
        parts += [blame.spans(a, ("overflow-y",)), blame.constraint(a, "y")]
    spans = blame.union(*parts)
    return a, Defect("clipped_text", _union([ext, b]), _severity(frac),
                     f"{_label(probe, t)} is cut off by overflow:hidden on <{probe.tag[a]}>: {msg}",
                     spans)


def _overflowing(probe: Probe, blame: Blamer, t: int, ext: BBox) -> tuple[int, Defect] | None:
    """Text of element t running past the right or bottom edge of its block box."""
    c = _container(probe, t)
    b = probe.box[c]
    if probe.tag[c] in PAGE or (ext[2] <= b[2] + 1 and ext[3] <= b[3] + 1):
        return None
    msg, frac = _overflow_message(ext, b)
    if frac <= 0.01:
        return None
    # the size that holds the text in, and what makes the text wide (or tall)
    out_x, out_y = _outside(ext, b)
    parts = [blame.spans(c), blame.spans(t, ("font-size",))]
    if out_x:
        parts += [blame.constraint(c, "x"), blame.spans(t, ("white-space",))]
    if out_y:
        parts += [blame.constraint(c, "y"), blame.spans(t, ("line-height",))]
    spans = blame.union(*parts)
    return c, Defect("text_overflow", _union([ext, b]), _severity(frac),
                     f"{_label(probe, t)} overflows <{probe.tag[c]}>: {msg}", spans)


def _em_boxes(probe: Probe, t: int) -> BBox:
    """The union of element t's line rects, each cut to its centred em box: a line rect spans
    the font's ascent + descent (~1.45 em for CJK faces), which overhangs a `line-height: 1`
    box although the glyphs stay inside it."""
    size = probe.font[t][0]
    return _union([(x0, max(y0, (y0 + y1 - size) / 2), x1, min(y1, (y0 + y1 + size) / 2))
                   for x0, y0, x1, y1 in probe.text_rects[t]])


def detect_text_overflow(probe: Probe, blame: Blamer) -> list[Defect]:
    """Text cut by overflow:hidden (clipped_text), else leaving its box (text_overflow).

    One defect per (kind, box): the worst text in it speaks for the rest.
    """
    found: dict[tuple[str, int], Defect] = {}
    for t in range(len(probe)):
        if not probe.visible[t] or not probe.text_rects[t]:
            continue
        ext = _em_boxes(probe, t)
        hit = _clipped(probe, blame, t, ext) or _overflowing(probe, blame, t, ext)
        if hit is None:
            continue
        box, d = hit
        key = (d.kind, box)
        if key not in found or found[key].severity < d.severity:
            found[key] = d
    return list(found.values())


def detect_off_canvas(probe: Probe, blame: Blamer, canvas: Canvas) -> list[Defect]:
    """Painted content outside the slide, or beyond the viewport width of a web page."""
    w, h = canvas.width, canvas.height if canvas.domain == "slide" else float("inf")
    reported: set[int] = set()
    defects = []
    for i in range(len(probe)):
        if probe.parent[i] in reported:
            reported.add(i)  # its outermost offending ancestor speaks for it
            continue
        boxes = _filled(probe, i)
        if not boxes:
            continue
        ext = _union(boxes)
        x0 = 0 if canvas.domain == "slide" else float("-inf")  # web: only horizontal scroll
        outside = 1 - _area(_intersect(ext, (x0, x0, w, h))) / max(_area(ext), 1e-6)
        if outside <= 0.01:
            continue
        clip = _clipper(probe, i, ext)
        if clip is not None and probe.tag[clip[0]] not in PAGE:
            continue  # hidden by an overflow box before it reaches the edge
        reported.add(i)
        where = f"the {w}×{h} slide" if canvas.domain == "slide" else f"the {w}px-wide viewport"
        defects.append(Defect(
            "off_canvas", ext, _severity(outside),
            f"{_label(probe, i)} spans x {ext[0]:.0f}–{ext[2]:.0f}, y {ext[1]:.0f}–{ext[3]:.0f}: "
            f"{outside:.0%} of it is outside {where}",
            _off_canvas_blame(probe, blame, i, ext, (x0, x0, w, h))))
    return defects


def _off_canvas_blame(probe: Probe, blame: Blamer, i: int, ext: BBox, page: BBox) -> list[Span]:
    """What puts element i outside: its place and margins; past a side, its width and nowrap
    text; past the bottom, the size of its text (taller lines push it down)."""
    out_x, out_y = _outside(ext, page)
    parts = [blame.spans(i, ("margin", "width")), blame.placement(i)]
    if out_x:
        parts.append(blame.constraint(_container(probe, i), "x"))
    text = (("white-space",) if out_x else ()) + (("font-size", "line-height") if out_y else ())
    if probe.text_rects[i]:
        parts.append(blame.spans(i, text))
    return blame.union(*parts)


def _luminance(rgb) -> float:
    def lin(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(fg, bg) -> float:
    """WCAG 2 contrast ratio of two sRGB colours (0–255), 1 to 21."""
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _background_owner(probe: Probe, i: int) -> int:
    """The ancestor-or-self whose background colour the text is drawn on."""
    while probe.parent[i] >= 0 and probe.background[i] == probe.background[probe.parent[i]]:
        i = probe.parent[i]
    return i


def _over_image(probe: Probe, i: int, images: list[int]) -> bool:
    """Whether element i's text is drawn over an earlier image: its background is unknown."""
    ext = _union(probe.text_rects[i])
    return any(m < i and _area(_intersect(probe.box[m], ext)) > 0 for m in images)


def detect_low_contrast(probe: Probe, blame: Blamer) -> list[Defect]:
    """Text whose colour is too close to its effective background (WCAG 2); not text over an
    image or a background image, whose colour behind the text is unknown."""
    images = [m for m in range(len(probe)) if probe.tag[m] in IMAGES and probe.visible[m]]
    defects = []
    for i in range(len(probe)):
        if not probe.text_rects[i] or not probe.visible[i] or probe.background_image[i]:
            continue
        if probe.color[i] is None:
            continue
        *rgb, alpha = probe.color[i]
        bg = probe.background[i]
        fg = [c * alpha + b * (1 - alpha) for c, b in zip(rgb, bg)]
        size, weight = probe.font[i]
        large = size >= 24 or (size >= 18.66 and weight >= 700)
        need, ratio = (3.0 if large else 4.5), contrast_ratio(fg, bg)
        if ratio >= need or _over_image(probe, i, images):
            continue
        owner = _background_owner(probe, i)
        defects.append(Defect(
            "low_contrast", _union(probe.text_rects[i]), _severity((need - ratio) / (need - 1)),
            f"{_label(probe, i)}: contrast {ratio:.2f}:1 of rgb{tuple(round(c) for c in fg)} on "
            f"rgb{bg}, below {need}:1 for {'large' if large else 'normal'} {size:.0f}px text",
            blame.union(blame.spans(i, ("color",)),
                        blame.spans(owner, ("background",), probe.tag[owner] not in PAGE))))
    return defects


def _odd_edges(boxes: list[tuple[int, float]]) -> list[tuple[int, float, float]]:
    """Members whose edge is 0.5–4px off the most common edge: (index, edge, reference)."""
    edges = [round(e) for _, e in boxes]
    ref = max(set(edges), key=lambda e: (edges.count(e), -edges.index(e)))
    return [(i, e, ref) for i, e in boxes if 0.5 < abs(e - ref) <= 4]


def detect_misaligned(probe: Probe, blame: Blamer) -> list[Defect]:
    """Same-tag sibling blocks whose left (stacked) or top (in a row) edges nearly line up."""
    groups: dict[tuple[int, str], list[int]] = {}
    for i in range(len(probe)):
        if probe.visible[i] and not _is_inline(probe.display[i]) and _area(probe.box[i]) > 0:
            groups.setdefault((probe.parent[i], probe.tag[i]), []).append(i)
    defects = []
    for kids in groups.values():
        boxes = [probe.box[k] for k in kids]
        stacked = all(b[1] >= a[3] - 1 for a, b in zip(boxes, boxes[1:]))
        row = all(b[0] >= a[2] - 1 for a, b in zip(boxes, boxes[1:]))
        if len(kids) < 2 or not (stacked or row):
            continue
        axis, name = (0, "left") if stacked else (1, "top")
        for k, e, ref in _odd_edges([(k, probe.box[k][axis]) for k in kids]):
            d = abs(e - ref)
            defects.append(Defect(
                "misaligned", probe.box[k], _severity(d / 8),
                f"{_label(probe, k)} {name} edge at {e:.0f}px, {d:.0f}px off its siblings' {ref}px",
                blame.spans(k, ("margin", "position", "width"))))
    return defects


def detect_blank(probe: Probe, code: str, canvas: Canvas) -> list[Defect]:
    """Nothing but background: no visible text, replaced element or coloured box."""
    if any(_filled(probe, i) for i in range(len(probe))):
        return []
    return [Defect("blank", (0, 0, canvas.width, canvas.height), 1.0,
                   "the render shows only background: no visible text, image or coloured box",
                   [(0, len(code))] if code else [])]


def detect_html(probe: Probe, smap: SourceMap, code: str, canvas: Canvas) -> list[Defect]:
    """Every HTML detector on one probed page."""
    blame = Blamer(probe, smap)
    blank = detect_blank(probe, code, canvas)
    if blank:
        return blank
    found = (detect_overlap(probe, blame) + detect_text_overflow(probe, blame)
             + detect_off_canvas(probe, blame, canvas) + detect_low_contrast(probe, blame)
             + detect_misaligned(probe, blame))
    kept = []
    for kind in dict.fromkeys(d.kind for d in found):
        kept += sorted((d for d in found if d.kind == kind), key=lambda d: -d.severity)[:MAX_PER_KIND]
    return kept
