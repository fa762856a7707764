"""ChartMimic's view of a chart: what its low-level evaluators log while the script runs.

ChartMimic (github.com/ChartMimic/ChartMimic, `chart2code/utils/evaluator/`) scores a
generated chart against its reference from four logs, each made by patching matplotlib in a
separate run of the script. Here the worker's one run records all four into a `ChartLog`:

- texts: every string the renderer is asked to draw, one per line of a multi-line text (as
  `Text.draw` splits them), after ChartMimic has removed the ticks of every axes of the figure
  (`set_xticks([])`, `set_yticks([])`). Removing them would cost a second draw; instead the
  one draw is recorded and the texts that the removal takes away are left out: the major tick
  labels and the offset texts ("1e6") of each axes' x and y axis.
- calls: one name per call of a plotting function on ChartMimic's list (`_CALLS`); a call
  made while another listed call runs (the `bar`s inside `hist`) does not count.
- colors: for each call of a function on ChartMimic's colour list (`_COLORS`), the colours
  of the artists it returned, read again once the figure is drawn; colormap names for images
  and contours. As there, a function's artists are kept once per colour they were created
  with (bars recoloured after the call leave only the last one), and pairs are distinct.
- grid: each axes' place on its grid spec (axes without one, e.g. `fig.add_axes`, skipped).

`install()` patches matplotlib once, in the warm worker; `start()` clears the log before a
chart runs; the worker draws inside `recording_texts()` and then reads `finish(fig)`.
Only `vsdpo eval`'s ChartMimic columns read the log (`vsdpo.feedback.chartmimic_metrics`);
the training reward does not.
"""

import contextlib
import functools

from matplotlib import cbook
from matplotlib import colors as mcolors
from matplotlib import text as mtext
from matplotlib.axes import Axes
from matplotlib.axes._base import _process_plot_var_args
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.image import NonUniformImage
from matplotlib.patches import Circle, Ellipse, PathPatch
from matplotlib.projections.polar import PolarAxes
from mpl_toolkits.mplot3d import Axes3D

from vsdpo.render.types import ChartLog


class _State:
    """The log of the chart being run; the worker forks one process per chart."""

    def __init__(self):
        self.calls: list[str] = []
        self.call_depth = 0
        self.color_depth = 0
        self.colored: dict[tuple[str, str], tuple] = {}  # (function, first colour) → artist
        self.texts: list[tuple[object, str]] | None = None  # (Text, line) while recording
        self.drawing = None  # the Text being drawn


_state = _State()


def _hex(color) -> str:
    """A colour as ChartMimic writes it: `#RRGGBB`, upper case (a `#RRGGBBAA` string kept)."""
    if isinstance(color, str) and color.startswith("#") and len(color) in (7, 9):
        return color.upper()
    return mcolors.to_hex(color).upper()


# Readers: an artist → its colours (`#RRGGBB`) or colormap name, as ChartMimic reads them.
def _line(artist):
    return [_hex(artist.get_color())]


def _face(artist):
    return [_hex(artist.get_facecolor())]


def _bar_face(artist):
    return [_hex(artist._original_facecolor)]  # the colour as given, before alpha


def _faces(artist):
    return [_hex(c) for c in artist.get_facecolors()]


def _edges(artist):
    return [_hex(c) for c in artist.get_edgecolors()]


def _cmap(artist):
    return [artist.get_cmap().name]


def _first_face(artist):
    faces = artist.get_facecolors()
    return [_hex(faces[0])] if len(faces) else []


# Rules: (args, kwargs, result) of a call → the (artist, reader) pairs it logs.
def _result(reader):
    return lambda args, kwargs, result: [(result, reader)]


def _each(reader, pick=lambda result: result):
    return lambda args, kwargs, result: [(a, reader) for a in pick(result)]


def _self(reader):
    return lambda args, kwargs, result: [(args[0], reader)]


def _cmap_or(reader):
    """A `cmap=` argument's name when given (ChartMimic reads the argument), else `reader`."""
    def rule(args, kwargs, result):
        cmap = kwargs.get("cmap")
        if cmap is None:
            return [(result, reader)]
        name = cmap if isinstance(cmap, str) else cmap.name
        return [(result, lambda artist: [name])]
    return rule


def _hist_patches(result):
    patches = result[2]
    if isinstance(patches, cbook.silent_list):  # several data sets: one container each
        return [p for container in patches for p in container]
    return patches


def _squarify_patches(ax):
    return [p for container in ax.containers for p in container]


def _exactly(cls, name):
    """`name` for an instance of `cls` itself; None (logs nothing) for a subclass."""
    return lambda args: name if type(args[0]) is cls else None


# (owner, method, name counted per call); owners of one name count as one chart type
_CALLS = [
    *((Axes, m, m) for m in (
        "bar", "barh", "axhline", "axvline", "axvspan", "axhspan", "hlines", "vlines",
        "errorbar", "boxplot", "violinplot", "violin", "hist", "fill_between",
        "fill_betweenx", "scatter", "quiver", "pie", "fill", "imshow", "pcolor", "contour",
        "contourf", "broken_barh", "tripcolor")),
    (Axes, "plot", lambda args: "plot_polar" if type(args[0]) is PolarAxes else "plot"),
    *((Axes3D, m, f"3d.{m}") for m in (
        "scatter", "plot", "plot_surface", "bar3d", "bar", "add_collection3d")),
    (NonUniformImage, "__init__", "NonUniformImage"),
    (Ellipse, "__init__", "patch"),
    (Circle, "__init__", "patch"),
]

# (owner, method, colour group, rule); a group of None logs nothing but still nests
_COLORS = [
    (_process_plot_var_args, "_make_line", "plot", lambda args, kwargs, result:
        [(result[0], _line)]),
    (Axes, "bar", "bar", _each(_bar_face)),
    (Axes, "scatter", lambda args: "scatter_polar" if type(args[0]) is PolarAxes
        else "scatter", _cmap_or(_first_face)),
    (Axes, "axhline", "axhline", _result(_line)),
    (Axes, "axvline", "axvline", _result(_line)),
    (Axes, "_fill_between_x_or_y", "fill_between", _result(_first_face)),
    (Axes, "pie", "pie", _each(_face, lambda result: result[0])),
    (Axes, "axvspan", "axvspan", _result(_face)),
    (Axes, "axhspan", "axhspan", _result(_face)),
    (Axes, "hlines", "hlines", _result(_edges)),
    (Axes, "vlines", "vlines", _result(_edges)),
    (Axes, "boxplot", "boxplot", _each(_face, lambda result: [
        b for b in result["boxes"] if type(b) is PathPatch])),
    (Axes, "violinplot", "violinplot", _each(_first_face, lambda result: result["bodies"])),
    (Axes, "hist", "hist", _each(_face, _hist_patches)),
    (PolarAxes, "plot", _exactly(PolarAxes, "plot_polar"), _each(_line)),
    (Axes, "quiver", "quiver", _result(_faces)),
    *((Axes, m, m, _result(_cmap)) for m in (
        "imshow", "pcolor", "contour", "contourf", "tripcolor")),
    (Axes, "fill", "fill", _each(_face)),
    (NonUniformImage, "__init__", "NonUniformImage", _self(_cmap)),
    (Ellipse, "__init__", _exactly(Ellipse, "patch"), _self(_face)),
    (Circle, "__init__", _exactly(Circle, "patch"), _self(_face)),
    (Axes, "broken_barh", "broken_barh", _result(_faces)),
    (Axes3D, "scatter", "3d.scatter", _cmap_or(_faces)),
    (Axes3D, "plot", "3d.plot", _each(_line)),
    (Axes3D, "plot_surface", "3d.plot_surface", _cmap_or(_first_face)),
    (Axes3D, "bar3d", "3d.bar3d", _result(_first_face)),
    (Axes3D, "bar", "3d.bar", _each(_face)),
    (Axes3D, "add_collection3d", "3d.add_collection3d", _result(_faces)),
]


def _count_calls(owner, method: str, name) -> None:
    original = getattr(owner, method)

    @functools.wraps(original)
    def traced(*args, **kwargs):
        if _state.call_depth:
            return original(*args, **kwargs)
        _state.calls.append(name(args) if callable(name) else name)
        _state.call_depth += 1
        try:
            return original(*args, **kwargs)
        finally:
            _state.call_depth -= 1

    setattr(owner, method, traced)


def _log_colors(owner, method: str, group, rule) -> None:
    original = getattr(owner, method)

    @functools.wraps(original)
    def traced(*args, **kwargs):
        if _state.color_depth:
            return original(*args, **kwargs)
        _state.color_depth += 1
        try:
            result = original(*args, **kwargs)
        finally:
            _state.color_depth -= 1
        name = group(args) if callable(group) else group
        if name is not None:
            _keep(name, args, kwargs, result, rule)
        return result

    setattr(owner, method, traced)


def _keep(group: str, args, kwargs, result, rule) -> None:
    """Remember each artist under (group, the last colour it has now); later ones replace."""
    try:
        for artist, reader in rule(args, kwargs, result):
            colors = reader(artist)
            if colors:
                _state.colored[(group, colors[-1])] = (artist, reader)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError):
        pass  # a colour ChartMimic could not read either: its log run would fail


def _draw_text(original):
    @functools.wraps(original)
    def draw_text(self, gc, x, y, s, *args, **kwargs):
        if _state.texts is not None:
            _state.texts.append((_state.drawing, s))
        return original(self, gc, x, y, s, *args, **kwargs)
    return draw_text


def _text_draw(original):
    @functools.wraps(original)
    def draw(self, renderer):
        outer, _state.drawing = _state.drawing, self
        try:
            return original(self, renderer)
        finally:
            _state.drawing = outer
    return draw


def install() -> None:
    """Wrap ChartMimic's plotting functions and the text drawing (idempotent)."""
    if getattr(Axes, "_vs_chart_log", False):
        return
    for owner, method, name in _CALLS:
        _count_calls(owner, method, name)
    for owner, method, group, rule in _COLORS:
        _log_colors(owner, method, group, rule)
    with contextlib.suppress(ImportError):
        import squarify
        _count_calls(squarify, "plot", "squarify")
        _log_colors(squarify, "plot", "squarify", _each(_face, _squarify_patches))
    RendererAgg.draw_text = _draw_text(RendererAgg.draw_text)
    mtext.Text.draw = _text_draw(mtext.Text.draw)
    Axes._vs_chart_log = True


def start() -> None:
    """Forget what earlier code (the worker's warm-up) logged."""
    global _state
    _state = _State()


@contextlib.contextmanager
def recording_texts():
    """Record the lines drawn inside the block (the worker's one draw of the figure)."""
    _state.texts = []
    try:
        yield
    finally:
        _state.drawing = None


def _tick_texts(fig) -> set:
    """What `set_xticks([])` and `set_yticks([])` on every axes of `fig` take away."""
    texts = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            texts.add(axis.offsetText)
            for tick in axis.majorTicks:
                texts.update((tick.label1, tick.label2))
    return texts


def _colors() -> list[tuple[str, str]]:
    pairs = {}
    for (group, _), (artist, reader) in _state.colored.items():
        with contextlib.suppress(ValueError, TypeError, IndexError, AttributeError):
            pairs.update(dict.fromkeys((group, c) for c in reader(artist)))
    return list(pairs)


def _grid(fig) -> list[tuple[int, int, int, int, int, int]]:
    grid = []
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is not None:
            nrows, ncols = spec.get_gridspec().get_geometry()
            grid.append((nrows, ncols, spec.rowspan.start, spec.rowspan.stop - 1,
                         spec.colspan.start, spec.colspan.stop - 1))
    return grid


def finish(fig) -> ChartLog:
    """The log of the chart, once `fig` was drawn inside `recording_texts()`."""
    ticks = _tick_texts(fig)
    texts = [line for text, line in _state.texts or () if text not in ticks]
    _state.texts = None
    return ChartLog(texts=texts, calls=list(_state.calls), colors=_colors(), grid=_grid(fig))
