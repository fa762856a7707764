"""Trace every matplotlib artist to the line of user code that made it, and read it back.

`install()` patches matplotlib once, in the warm worker before any chart runs:

- `Artist.__init__` records the innermost user line (frames whose filename is `USER_FILE`)
  that created the artist;
- `Text.set_text` / `set_position` / `set_x` / `set_y` record the user line that last set
  the text or moved it (so `ax.set_title("...")` owns the title created by `subplots`);
- `Axis` tick configuration (`set_ticklabels`, `set_ticks`, locators, formatters, units)
  records the user line that decided the tick labels, and `set_tick_params` the line that
  styled them. Tick labels are created lazily while drawing, so they take the axis's line
  (e.g. `ax.set_xticklabels(...)`, or `ax.bar(names, ...)` via categorical units), never
  `tight_layout` or the final draw.

Calls made while matplotlib lays out or draws (`draw`, `tight_layout`, `get_tightbbox`, ...)
never count as "setting" anything. `extract()` then walks the drawn figure and returns
`ChartItem`s: an `Element` (top-left pixel box, span of the user line, role) plus the
geometry detectors need (the rotated outline of a text, data points in pixels).
"""

import sys
from dataclasses import dataclass, field

import numpy as np
from matplotlib import artist as martist
from matplotlib import axis as maxis
from matplotlib import colors as mcolors
from matplotlib import text as mtext
from matplotlib.collections import Collection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import Bbox

from vsdpo.render.types import Element, Span

USER_FILE = "<chart>"
# Frames of these functions mean "matplotlib is laying out or drawing", not "the user set it".
LAYOUT_FUNCS = frozenset({"draw", "draw_wrapper", "tight_layout", "get_tightbbox",
                          "_update_ticks", "get_window_extent", "print_figure", "savefig",
                          "execute_constrained_layout", "_get_renderer"})
_TICK_LABEL_METHODS = ("set_ticklabels", "set_ticks", "set_major_locator", "set_minor_locator",
                       "set_major_formatter", "set_minor_formatter", "set_units")
_MAX_POINTS = 5000  # data points kept per artist for the legend check


def user_line() -> int | None:
    """Line number of the innermost user frame, or None (no user frame, or inside a layout)."""
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code.co_filename == USER_FILE:
            return frame.f_lineno
        if code.co_name in LAYOUT_FUNCS:
            return None
        frame = frame.f_back
    return None


def _wrap(cls, name: str, attr: str) -> None:
    """Make `cls.name` record the calling user line in `self.<attr>` before running."""
    original = getattr(cls, name)

    def traced(self, *args, **kwargs):
        line = user_line()
        if line is not None:
            setattr(self, attr, line)
        return original(self, *args, **kwargs)

    traced.__wrapped__ = original
    setattr(cls, name, traced)


def install() -> None:
    """Patch matplotlib so artists remember their user lines (idempotent)."""
    if getattr(martist.Artist, "_vs_traced", False):
        return
    original_init = martist.Artist.__init__

    def init(self, *args, **kwargs):
        self._vs_line = user_line()
        original_init(self, *args, **kwargs)

    martist.Artist.__init__ = init
    for name in ("set_text", "set_position", "set_x", "set_y"):
        _wrap(mtext.Text, name, "_vs_set_line")
    for name in _TICK_LABEL_METHODS:
        _wrap(maxis.Axis, name, "_vs_tick_line")
    _wrap(maxis.Axis, "set_tick_params", "_vs_tick_style_line")
    martist.Artist._vs_traced = True


def line_spans(code: str) -> list[Span]:
    """`spans[n]` = character span of line n (1-based; index 0 unused), newline excluded."""
    spans, start = [(0, 0)], 0
    for line in code.splitlines(keepends=True):
        spans.append((start, start + len(line.rstrip("\r\n"))))
        start += len(line)
    return spans


@dataclass
class ChartItem:
    """An element plus the geometry detectors need; `poly` and `points` in top-left pixels."""

    element: Element
    poly: np.ndarray | None = None                 # [4, 2] text outline (rotated)
    points: np.ndarray | None = None               # [P, 2] data vertices / offsets
    path_segments: bool = False                    # points form a polyline (Line2D)
    artist: object = None                          # the live artist (hit tests, rc blame)
    axes: int | None = None                        # index of the owning axes item
    extra_spans: list[Span] = field(default_factory=list)


def _rgb(color) -> tuple[int, int, int] | None:
    try:
        rgba = mcolors.to_rgba(color)
    except (ValueError, TypeError):
        return None
    return tuple(int(round(c * 255)) for c in rgba[:3])


class _Extractor:
    """Walks one drawn figure; converts display boxes (origin bottom-left) to top-left."""

    def __init__(self, fig, renderer, code: str):
        self.fig, self.renderer = fig, renderer
        self.height = fig.bbox.height
        self.spans = line_spans(code)
        self.items: list[ChartItem] = []

    def span(self, line: int | None) -> Span | None:
        return self.spans[line] if line and 0 < line < len(self.spans) else None

    def box(self, bbox) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = (float(v) for v in bbox.extents)
        return (x0, self.height - y1, x1, self.height - y0)

    def add(self, item: ChartItem) -> int:
        self.items.append(item)
        return len(self.items) - 1

    def text(self, t, role: str, fallback: int | None, parent: int | None,
             background, tick_line: int | None = None, axes: int | None = None) -> None:
        if not t.get_visible() or not t.get_text().strip():
            return
        bbox = t.get_window_extent(self.renderer)
        if bbox.width <= 0 or bbox.height <= 0:
            return
        line = tick_line or getattr(t, "_vs_set_line", None) or t._vs_line or fallback
        element = Element(kind=type(t).__name__, bbox=self.box(bbox), span=self.span(line),
                          text=t.get_text(), role=role, parent=parent, color=_rgb(t.get_color()),
                          background=_rgb(background), font_size=float(t.get_fontsize()))
        self.add(ChartItem(element, poly=self.outline(t, bbox), artist=t, axes=axes))

    def outline(self, t, bbox) -> np.ndarray:
        """The text's rotated rectangle: the axis-aligned box only for multiples of 90°."""
        angle = t.get_rotation()
        w, h = bbox.width, bbox.height
        if angle % 90:
            t.set_rotation(0)  # measure the unrotated box, then restore
            flat = t.get_window_extent(self.renderer)
            t.set_rotation(angle)
            w, h = flat.width, flat.height
        theta = np.deg2rad(angle if angle % 90 else 0.0)
        cx, cy = (bbox.x0 + bbox.x1) / 2, (bbox.y0 + bbox.y1) / 2
        corners_42 = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
        rot_22 = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        pts_42 = corners_42 @ rot_22.T + [cx, cy]
        pts_42[:, 1] = self.height - pts_42[:, 1]
        return pts_42

    def data(self, artist, parent: int, axes_line: int | None) -> None:
        if not artist.get_visible():
            return
        points, polyline = self.data_points(artist)
        box = self.data_box(artist, points)
        if box is None:
            return
        if isinstance(artist, Line2D):
            color = artist.get_color()
        elif isinstance(artist, (Patch, Collection)):
            fc = artist.get_facecolor()
            color = fc if isinstance(artist, Patch) else (fc[0] if len(fc) else None)
        else:
            color = None
        element = Element(kind=type(artist).__name__, bbox=box,
                          span=self.span(artist._vs_line or axes_line), role="data",
                          parent=parent, color=_rgb(color) if color is not None else None)
        self.add(ChartItem(element, points=points, path_segments=polyline, artist=artist,
                           axes=parent))

    def data_box(self, artist, points):
        """Top-left box of a data artist; collections may only know their offsets or paths."""
        bbox = artist.get_window_extent(self.renderer)
        if np.all(np.isfinite(bbox.extents)) and bbox.width + bbox.height > 0:
            return self.box(bbox)
        if points is not None and len(points):
            (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
            return (float(x0), float(y0), float(x1), float(y1))
        if isinstance(artist, Collection) and len(artist.get_paths()):
            transform = artist.get_transform()
            boxes = [transform.transform_path(p).get_extents() for p in artist.get_paths()[:200]]
            return self.box(Bbox.union(boxes))
        return None

    def data_points(self, artist) -> tuple[np.ndarray | None, bool]:
        if isinstance(artist, Line2D):
            xy = artist.get_transform().transform(artist.get_xydata()[:_MAX_POINTS])
            polyline = artist.get_linestyle() not in ("None", "none", "", " ")
        elif isinstance(artist, Collection) and len(artist.get_offsets()):
            xy = artist.get_offset_transform().transform(artist.get_offsets()[:_MAX_POINTS])
            polyline = False
        else:
            return None, False
        xy = np.asarray(xy, dtype=float)
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        xy[:, 1] = self.height - xy[:, 1]
        return xy, polyline

    def axes(self, ax) -> None:
        line = ax._vs_line
        parent = self.add(ChartItem(Element(kind=type(ax).__name__,
                                            bbox=self.box(ax.get_window_extent(self.renderer)),
                                            span=self.span(line), role="axes")))
        fig_bg, ax_bg = self.fig.get_facecolor(), ax.get_facecolor()
        for t in (ax.title, ax._left_title, ax._right_title):
            self.text(t, "title", line, parent, fig_bg, axes=parent)
        if ax.axison:  # `ax.axis("off")` hides labels and ticks
            self.text(ax.xaxis.label, "xlabel", line, parent, fig_bg, axes=parent)
            self.text(ax.yaxis.label, "ylabel", line, parent, fig_bg, axes=parent)
            self.ticks(ax.xaxis, "xtick_label", line, parent, fig_bg)
            self.ticks(ax.yaxis, "ytick_label", line, parent, fig_bg)
        for t in ax.texts:
            self.text(t, "annotation", line, parent, ax_bg, axes=parent)
        for artist in (*ax.patches, *ax.lines, *ax.collections, *ax.images, *ax.tables):
            self.data(artist, parent, line)
        if ax.legend_ is not None:
            self.legend(ax.legend_, line, axes=parent)

    def ticks(self, axis, role: str, fallback: int | None, parent: int, background) -> None:
        if not axis.get_visible():
            return
        label_line = getattr(axis, "_vs_tick_line", None) or fallback
        style_line = getattr(axis, "_vs_tick_style_line", None)
        first = len(self.items)
        for tick in axis._update_ticks():
            for label in (tick.label1, tick.label2) if tick.get_visible() else ():
                self.text(label, role, fallback, parent, background, tick_line=label_line,
                          axes=parent)
        style = self.span(style_line) if style_line != fallback else None  # axes set-up
        for item in self.items[first:]:
            item.extra_spans = [style] if style else []

    def legend(self, legend, fallback: int | None, axes: int | None) -> None:
        if not legend.get_visible():
            return
        frame = legend.get_frame()
        line = legend._vs_line or fallback
        parent = self.add(ChartItem(Element(kind="Legend", role="legend",
                                            bbox=self.box(legend.get_window_extent(self.renderer)),
                                            span=self.span(line), background=_rgb(frame.get_facecolor())),
                                    artist=legend, axes=axes))
        for t in legend.get_texts():
            self.text(t, "legend_text", line, parent, frame.get_facecolor(), axes=axes)
        if legend.get_title().get_text():
            self.text(legend.get_title(), "legend_text", line, parent, frame.get_facecolor(),
                      axes=axes)


def shift(items: list[ChartItem], dx: float, dy: float) -> None:
    """Move every item by (dx, dy) pixels: the image was cropped or extended."""
    for item in items:
        x0, y0, x1, y1 = item.element.bbox
        item.element.bbox = (x0 + dx, y0 + dy, x1 + dx, y1 + dy)
        for geometry in (item.poly, item.points):
            if geometry is not None:
                geometry += (dx, dy)


def extract(fig, renderer, code: str) -> list[ChartItem]:
    """All traced items of a drawn figure, axes first, each followed by its contents."""
    ex = _Extractor(fig, renderer, code)
    for ax in fig.axes:
        if ax.get_visible():
            ex.axes(ax)
    fig_line = fig._vs_line
    suptitle = getattr(fig, "_suptitle", None)
    for t in fig.texts:
        role = "suptitle" if t is suptitle else "annotation"
        ex.text(t, role, fig_line, None, fig.get_facecolor())
    for legend in fig.legends:
        ex.legend(legend, fig_line, axes=None)
    return ex.items
