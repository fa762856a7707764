"""Chart defect detectors: run on the traced items of one drawn matplotlib figure.

Input is `vsdpo.render.chart_trace.ChartItem`s (an `Element` plus the rotated outline of a
text and the data points in pixels, origin top-left), the figure size and the layout
warnings matplotlib raised. Output is `Defect`s whose spans are the user lines of the
artists to blame, plus each item's `extra_spans` (its tick styling, and the rc statements
that decided its size: `vsdpo.render.chart_rc`). The detectors run inside the chart
sandbox, next to the live figure.

- overlapping tick labels: per axis, using the rotated text outline, so labels rotated out
  of each other's way are not reported;
- overlapping texts in general (title vs tick labels, annotations, neighbouring subplots);
- text outside the figure (`off_canvas`);
- a legend covering plotted data (patch area under it, line segments / points through it);
- layout warnings (`Tight layout not applied`, ...), and a blank figure with no data.
"""

import numpy as np
from matplotlib.collections import Collection
from matplotlib.patches import Patch

from vsdpo.render.types import BBox, Defect, Span

TOUCH_PX = 1.0          # outlines are shrunk by this much: touching texts do not overlap
MARGIN_FRACTION = 0.15  # ...or by this much of their short side: the empty descent/leading
MIN_OVERLAP_PX2 = 1.0   # smaller intersections are rounding noise
FULL_SEVERITY_HITS = 10  # this many data points/segments under a legend = severity 1
_TICK_ROLES = ("xtick_label", "ytick_label")


def detect_chart_defects(items, width: float, height: float,
                         warnings: list[tuple[str, Span | None]]) -> list[Defect]:
    """All chart defects of one figure; see the module docstring for the kinds."""
    texts = [i for i in items if i.poly is not None]
    pairs = overlapping_pairs(texts)
    defects = tick_overlaps(texts, pairs) + text_overlaps(texts, pairs)
    defects += off_canvas(texts, width, height)
    defects += legend_over_data(items) + layout_warnings(warnings, width, height)
    defects += blank(items, width, height)
    return defects


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _inset(poly_T42: np.ndarray) -> np.ndarray:
    """Rectangles shrunk on every side by the touch tolerance (never below a point)."""
    c_T2 = poly_T42.mean(axis=1)
    u_T2, v_T2 = poly_T42[:, 1] - poly_T42[:, 0], poly_T42[:, 3] - poly_T42[:, 0]
    lu_T1 = np.linalg.norm(u_T2, axis=1, keepdims=True)
    lv_T1 = np.linalg.norm(v_T2, axis=1, keepdims=True)
    eu_T2 = np.divide(u_T2, lu_T1, out=np.zeros_like(u_T2), where=lu_T1 > 0)
    ev_T2 = np.divide(v_T2, lv_T1, out=np.zeros_like(v_T2), where=lv_T1 > 0)
    d_T1 = np.maximum(TOUCH_PX, MARGIN_FRACTION * np.minimum(lu_T1, lv_T1))
    hu_T1, hv_T1 = np.maximum(lu_T1 / 2 - d_T1, 0), np.maximum(lv_T1 / 2 - d_T1, 0)
    su_4, sv_4 = np.array([-1, 1, 1, -1]), np.array([-1, -1, 1, 1])
    return (c_T2[:, None] + su_4[None, :, None] * (hu_T1 * eu_T2)[:, None]
            + sv_4[None, :, None] * (hv_T1 * ev_T2)[:, None])


def _clip(subject: np.ndarray, clipper: np.ndarray) -> np.ndarray:
    """Sutherland–Hodgman: the part of convex `subject` inside convex `clipper`."""
    if np.cross(clipper[1] - clipper[0], clipper[2] - clipper[1]) < 0:
        clipper = clipper[::-1]
    out = list(subject)
    for a, b in zip(clipper, np.roll(clipper, -1, axis=0)):
        if not out:
            break
        pts, out = out, []
        inside = [np.cross(b - a, p - a) >= 0 for p in pts]
        for k, p in enumerate(pts):
            q, q_in = pts[k - 1], inside[k - 1]
            if inside[k] != q_in:
                e, f = q - a, p - q
                t = np.cross(b - a, e) / np.cross(f, b - a) if np.cross(f, b - a) else 0.0
                out.append(q + t * f)
            if inside[k]:
                out.append(p)
    return np.array(out) if len(out) >= 3 else np.zeros((0, 2))


def _union(boxes: list[BBox]) -> BBox:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def _spans(items) -> list[Span]:
    spans = []
    for item in items:
        for s in (item.element.span, *item.extra_spans):
            if s is not None and s not in spans:
                spans.append(s)
    return spans


def overlapping_pairs(texts) -> list[tuple[int, int, float]]:
    """(i, j, fraction of the smaller text covered) for every overlapping pair of texts.

    Outlines are shrunk first (touching is not overlapping, see `_inset`); axis-aligned
    bounds prune the pairs, the exact convex intersection decides the rest.
    """
    if len(texts) < 2:
        return []
    poly_T42 = _inset(np.stack([t.poly for t in texts]))
    lo_T2, hi_T2 = poly_T42.min(axis=1), poly_T42.max(axis=1)
    hit_TT = np.all((lo_T2[:, None] < hi_T2[None]) & (lo_T2[None] < hi_T2[:, None]), axis=2)
    pairs = []
    for i, j in zip(*np.nonzero(np.triu(hit_TT, k=1))):
        inter = _clip(poly_T42[i], poly_T42[j])
        area = _area(inter) if len(inter) else 0.0
        if area >= MIN_OVERLAP_PX2:
            smaller = max(min(_area(texts[i].poly), _area(texts[j].poly)), 1e-9)
            pairs.append((int(i), int(j), min(1.0, area / smaller)))
    return pairs


def _same_tick_axis(a, b) -> bool:
    return a.element.role in _TICK_ROLES and (a.axes, a.element.role) == (b.axes, b.element.role)


def tick_overlaps(texts, pairs) -> list[Defect]:
    """One defect per axis whose tick labels overlap each other."""
    groups: dict[tuple, list] = {}
    for i, j, f in pairs:
        if _same_tick_axis(texts[i], texts[j]):
            groups.setdefault((texts[i].axes, texts[i].element.role), []).append((i, j, f))
    defects = []
    for (axes, role), hits in groups.items():
        involved = [texts[k] for k in sorted({k for i, j, _ in hits for k in (i, j)})]
        total = sum(1 for t in texts if (t.axes, t.element.role) == (axes, role))
        worst = max(f for _, _, f in hits)
        defects.append(Defect(
            "overlap", _union([t.element.bbox for t in involved]), worst,
            f"{len(involved)} of {total} {role[0]}-axis tick labels overlap "
            f"({len(hits)} pairs, worst {worst:.0%} of the smaller label)", _spans(involved)))
    return defects


def text_overlaps(texts, pairs) -> list[Defect]:
    """Pairs of texts that overlap, other than tick labels of one axis (`tick_overlaps`)."""
    defects = []
    for i, j, f in pairs:
        a, b = texts[i], texts[j]
        if _same_tick_axis(a, b):
            continue
        ea, eb = a.element, b.element
        defects.append(Defect(
            "overlap", _union([ea.bbox, eb.bbox]), f,
            f"{ea.role} {ea.text[:30]!r} overlaps {eb.role} {eb.text[:30]!r} "
            f"by {f:.0%} of the smaller text", _spans([a, b])))
    return defects


def off_canvas(texts, width: float, height: float) -> list[Defect]:
    """Texts reaching past the figure's edge by more than their box's empty margin."""
    defects = []
    for t in texts:
        x0, y0, x1, y1 = t.element.bbox
        tol = max(TOUCH_PX, MARGIN_FRACTION * min(x1 - x0, y1 - y0))
        if x0 >= -tol and y0 >= -tol and x1 <= width + tol and y1 <= height + tol:
            continue
        area = (x1 - x0) * (y1 - y0)
        inside = max(0.0, min(x1, width) - max(x0, 0)) * max(0.0, min(y1, height) - max(y0, 0))
        outside = 1.0 - inside / area if area > 0 else 1.0
        if outside <= 0:
            continue
        defects.append(Defect(
            "off_canvas", t.element.bbox, min(1.0, outside),
            f"{t.element.role} {t.element.text[:30]!r} is {outside:.0%} outside the "
            f"{width:.0f}x{height:.0f} figure", _spans([t])))
    return defects


def _segments_through(points: np.ndarray, rect: BBox) -> int:
    """Number of polyline segments that cross `rect` (Liang–Barsky, vectorised)."""
    if len(points) < 2:
        return 0
    p0, d = points[:-1], np.diff(points, axis=0)
    t0, t1 = np.zeros(len(d)), np.ones(len(d))
    ok = np.ones(len(d), dtype=bool)
    for p, q in ((-d[:, 0], p0[:, 0] - rect[0]), (d[:, 0], rect[2] - p0[:, 0]),
                 (-d[:, 1], p0[:, 1] - rect[1]), (d[:, 1], rect[3] - p0[:, 1])):
        ok &= ~((p == 0) & (q < 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = q / p
        t0 = np.where(p < 0, np.maximum(t0, r), t0)
        t1 = np.where(p > 0, np.minimum(t1, r), t1)
    return int(np.sum(ok & (t0 <= t1)))


def _covered_fraction(artist, grid_display: np.ndarray) -> np.ndarray:
    """Which grid points (display coords) fall inside a filled data artist."""
    if isinstance(artist, Patch):
        if not artist.get_fill():
            return np.zeros(len(grid_display), dtype=bool)
        path = artist.get_transform().transform_path(artist.get_path())
        return path.contains_points(grid_display)
    if isinstance(artist, Collection) and not len(artist.get_offsets()):
        hit = np.zeros(len(grid_display), dtype=bool)
        transform = artist.get_transform()
        for path in artist.get_paths()[:200]:
            hit |= transform.transform_path(path).contains_points(grid_display)
        return hit
    return np.zeros(len(grid_display), dtype=bool)


def legend_over_data(items) -> list[Defect]:
    """Legends drawn on top of data: filled area under them, or points/segments through them."""
    defects = []
    for leg in (i for i in items if i.element.role == "legend"):
        x0, y0, x1, y1 = leg.element.bbox
        rect = (x0 + 2, y0 + 2, x1 - 2, y1 - 2)
        if rect[2] <= rect[0] or rect[3] <= rect[1]:
            continue
        gx, gy = np.meshgrid(np.linspace(rect[0], rect[2], 12), np.linspace(rect[1], rect[3], 12))
        grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
        fig_h = leg.artist.get_figure(root=True).bbox.height
        grid_display = np.stack([grid[:, 0], fig_h - grid[:, 1]], axis=1)
        covered, hits, culprits = np.zeros(len(grid), dtype=bool), 0, []
        for d in items:
            if d.element.role != "data" or (leg.axes is not None and d.axes != leg.axes):
                continue
            n = 0
            if d.points is not None and len(d.points):
                inside = ((d.points[:, 0] > rect[0]) & (d.points[:, 0] < rect[2])
                          & (d.points[:, 1] > rect[1]) & (d.points[:, 1] < rect[3]))
                n = _segments_through(d.points, rect) if d.path_segments else int(inside.sum())
            cover = _covered_fraction(d.artist, grid_display)
            if n or cover.any():
                hits += n
                covered |= cover
                culprits.append(d)
        frac = float(covered.mean())
        if frac < 0.05 and hits == 0:
            continue
        severity = min(1.0, max(frac, hits / FULL_SEVERITY_HITS))
        defects.append(Defect(
            "overlap", leg.element.bbox, severity,
            f"legend covers plotted data: {frac:.0%} of its area over filled data, "
            f"{hits} data points/segments under it ({len(culprits)} artists)", _spans([leg])))
    return defects


def layout_warnings(warnings: list[tuple[str, Span | None]], width: float,
                    height: float) -> list[Defect]:
    """Each layout warning matplotlib raised, blamed on the user line that triggered it."""
    return [Defect("layout_warning", (0.0, 0.0, width, height), 0.5,
                   f"matplotlib warned: {message}", [span] if span else [])
            for message, span in warnings]


def blank(items, width: float, height: float) -> list[Defect]:
    """A figure that draws no data at all."""
    if any(i.element.role == "data" for i in items):
        return []
    axes = [i for i in items if i.element.role == "axes"]
    where = f"{len(axes)} axes" if axes else "no axes"
    return [Defect("blank", (0.0, 0.0, width, height), 1.0,
                   f"the {width:.0f}x{height:.0f} figure draws no data ({where})", _spans(axes))]
