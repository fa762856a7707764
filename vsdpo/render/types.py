"""The records the render pool hands to the feedback stage (docs/architecture.md, "Rendering").

Boxes are `(x0, y0, x1, y1)` in render pixels, origin top-left. Spans are `(start, end)`
character offsets into `Artifact.code`, end exclusive.
"""

from dataclasses import dataclass, field
from typing import Literal

Domain = Literal["web", "slide", "chart"]
BBox = tuple[float, float, float, float]
Span = tuple[int, int]

DEFECT_KINDS = (
    "overlap",
    "text_overflow",
    "clipped_text",
    "off_canvas",
    "low_contrast",
    "misaligned",
    "blank",
    "layout_warning",
)


@dataclass(frozen=True)
class Artifact:
    """One program to render: HTML for `web`/`slide`, Python (matplotlib) for `chart`."""

    domain: Domain
    code: str


@dataclass
class Element:
    """One drawn thing (a DOM node or a matplotlib artist) and the code that made it.

    `kind` is the tag name (`div`, `p`) or the artist class (`Text`, `Rectangle`, `Line2D`);
    `role` says what a chart artist is for (`title`, `xtick_label`, `legend`, `data`, ...),
    empty for DOM nodes. `parent` indexes the parent element in `RenderResult.elements`.
    Colours are RGB 0–255. A DOM node's `text` is its own (direct) text, whitespace collapsed
    and cut at 200 characters, as the reward compares it; `full_text` is the same uncut and
    `text_rects` the boxes of its lines, for the Design2Code columns (`design2code_metrics`).
    """

    kind: str
    bbox: BBox
    span: Span | None
    text: str = ""
    role: str = ""
    parent: int | None = None
    color: tuple[int, int, int] | None = None
    background: tuple[int, int, int] | None = None
    font_size: float | None = None
    full_text: str = ""
    text_rects: list[BBox] = field(default_factory=list)


@dataclass
class ChartLog:
    """What ChartMimic's low-level evaluators log from a chart (`vsdpo.render.chart_log`).

    `texts`: each line of text drawn, tick labels of the x and y axes left out; `calls`: one
    name per plotting call (`bar`, `plot`, ...), calls made inside another not counted;
    `colors`: distinct (drawing function, `#RRGGBB` or colormap name) pairs; `grid`: per
    axes placed on a grid, `(nrows, ncols, row_start, row_end, col_start, col_end)`.
    """

    texts: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    colors: list[tuple[str, str]] = field(default_factory=list)
    grid: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)


@dataclass
class Defect:
    """A visible problem and the statements to blame for it."""

    kind: str
    bbox: BBox
    severity: float
    message: str
    spans: list[Span] = field(default_factory=list)

    def __post_init__(self):
        if self.kind not in DEFECT_KINDS:
            raise ValueError(f"Defect.kind must be one of {DEFECT_KINDS}, got {self.kind!r}")
        if not 0.0 < self.severity <= 1.0:
            raise ValueError(f"Defect.severity must be in (0, 1], got {self.severity}")


@dataclass
class RenderResult:
    """What one render produced. Never raised: failures are `ok=False` with `error` set."""

    ok: bool
    error: str | None = None
    image: bytes | None = None
    width: int = 0
    height: int = 0
    elements: list[Element] = field(default_factory=list)
    defects: list[Defect] = field(default_factory=list)
    missed_urls: list[str] = field(default_factory=list)  # network requests the page made: refused
    substituted_fonts: list[str] = field(default_factory=list)  # served with another font
    # slides: the document's height laid out in a 10 px tall viewport, as AeSlides' adaptive-
    # height render measures it (`feedback/aeslides_metrics.py`); None for other domains
    adaptive_height: int | None = None
    chart_log: ChartLog | None = None  # charts only: ChartMimic's view, for its eval columns


class RenderTimeout(Exception):
    """A job ran past its timeout; the slot was rebuilt and the job is not retried."""


class ChromiumDied(Exception):
    """The browser, or the renderer of the page a job was using, died under the job."""
