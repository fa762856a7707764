"""Blame global chart style: which rcParams statements decided a defective text's size.

A tick label that collides because of `plt.rcParams["font.size"] = 22` got its size there,
not from the line that made it, so that statement shares the blame. `install()` patches
matplotlib once, in the warm worker:

- `RcParams.__setitem__` records the user line that last set each key. Every public way
  to set global style ends there: `rcParams[...] = ...`, `rcParams.update`, `mpl.rc` /
  `plt.rc`, `plt.style.use`, seaborn's `set` / `set_theme` / `set_context`.
- `Text.set_fontsize` / `set_fontproperties` mark a text's font properties explicit when
  the user call that reached them was given a size (`fontsize=`, `size=`, `prop=`,
  `fontdict={"size": ...}`, `tick_params(labelsize=...)`, `label.set_fontsize(...)`).
  Matplotlib filling in its rc default does not count, nor does creating tick labels
  (they copy the first tick's font properties, mark included).

`add_causes()` then gives each text whose size was not explicit the span of the last
statement that set its role's rc key (`xtick.labelsize`, `axes.titlesize`, ...) and, when
that value is relative (`"large"`) or unset, of `font.size` — only while the text's size is
still what those keys give. `figure.figsize` is blamed too when the figure took its size
from it and it shrank the canvas below matplotlib's default.
"""

import math
import sys
from inspect import CO_VARARGS, CO_VARKEYWORDS

import matplotlib as mpl
import numpy as np
from matplotlib import text as mtext
from matplotlib.font_manager import FontProperties

from vsdpo.render.chart_trace import LAYOUT_FUNCS, USER_FILE, ChartItem, line_spans, user_line

# The rc keys a text of each role takes its size from, in order of preference
# (pie labels are annotations sized by `xtick.labelsize`).
_SIZE_KEYS = {"title": ("axes.titlesize",), "xlabel": ("axes.labelsize",),
              "ylabel": ("axes.labelsize",), "xtick_label": ("xtick.labelsize",),
              "ytick_label": ("ytick.labelsize",), "suptitle": ("figure.titlesize",),
              "legend_text": ("legend.fontsize", "legend.title_fontsize"),
              "annotation": ("font.size", "xtick.labelsize")}
_SIZE_ARGS = frozenset({"fontsize", "size", "labelsize", "title_fontsize", "fontproperties",
                        "font_properties", "font", "prop"})
_SIZE_SETTERS = frozenset({"set_fontsize", "set_size", "set_fontproperties",
                           "set_font_properties", "set_font"})
_set_by: dict[str, int] = {}  # rc key -> user line that last set it (this chart's process)


def _record_rc(original):
    def setitem(self, key, val):
        original(self, key, val)
        line = user_line()
        if line is not None and self is mpl.rcParams:
            _set_by[key] = line

    setitem.__wrapped__ = original
    return setitem


def _names_a_size(params: dict) -> bool:
    """Whether a call's parameters, or a dict among them (`kwargs`, `fontdict`), give a size."""
    for name, value in params.items():
        if isinstance(value, dict):
            if not _SIZE_ARGS.isdisjoint(value):
                return True
        elif name in _SIZE_ARGS and value is not None:
            return True
    return False


def _explicit_size() -> bool | None:
    """Whether the user call now setting a font was given a size; None outside user calls.

    The user call is the frame just below the innermost `<chart>` frame; only its
    parameters count, not what it computes (`set_title` passes the rc default on).
    """
    frame, entry = sys._getframe(2), None
    while frame is not None:
        code = frame.f_code
        if code.co_filename == USER_FILE:
            if entry is None or entry.f_code.co_name in _SIZE_SETTERS:
                return True
            code = entry.f_code
            count = (code.co_argcount + code.co_kwonlyargcount
                     + bool(code.co_flags & CO_VARARGS) + bool(code.co_flags & CO_VARKEYWORDS))
            local = entry.f_locals
            return _names_a_size({n: local.get(n) for n in code.co_varnames[:count]})
        if code.co_name in LAYOUT_FUNCS or code.co_name == "_get_tick":
            return None
        entry, frame = frame, frame.f_back
    return None


def _mark_explicit(original):
    def traced(self, *args, **kwargs):
        explicit = _explicit_size()
        result = original(self, *args, **kwargs)
        if explicit is not None:
            self._fontproperties._vs_explicit = explicit  # copied with the properties
        return result

    traced.__wrapped__ = original
    return traced


def install() -> None:
    """Patch matplotlib so rc statements and explicit font sizes are recorded (idempotent)."""
    if hasattr(mpl.RcParams.__setitem__, "__wrapped__"):
        return
    mpl.RcParams.__setitem__ = _record_rc(mpl.RcParams.__setitem__)
    for name in ("set_fontsize", "set_fontproperties"):
        setattr(mtext.Text, name, _mark_explicit(getattr(mtext.Text, name)))


def _chain(key: str) -> tuple[float, list[int]]:
    """The size `key` gives now, and the user lines that decided it."""
    value = mpl.rcParams[key]
    keys = [key, "font.size"] if key != "font.size" and not isinstance(value, float) else [key]
    return (FontProperties(size=value).get_size_in_points(),
            [_set_by[k] for k in keys if k in _set_by])


def size_lines(text: mtext.Text, role: str, chains: dict) -> list[int]:
    """User lines of the rc statements that decided `text`'s font size (none if explicit)."""
    if getattr(text._fontproperties, "_vs_explicit", False):
        return []
    for key in _SIZE_KEYS.get(role, ()):
        size, lines = chains[key]
        if math.isclose(size, text.get_fontsize(), rel_tol=1e-6):
            return lines
    return []


def canvas_lines(fig) -> list[int]:
    """The `figure.figsize` statement, if the figure took that size and it shrank the canvas."""
    line, figsize = _set_by.get("figure.figsize"), mpl.rcParams["figure.figsize"]
    default = mpl.rcParamsDefault["figure.figsize"]
    if line is None or not np.allclose(fig.get_size_inches(), figsize):
        return []
    return [line] if figsize[0] < default[0] or figsize[1] < default[1] else []


def add_causes(fig, items: list[ChartItem], code: str) -> None:
    """Add the deciding rc statements' spans to the texts' `extra_spans`."""
    if not _set_by:
        return
    spans, canvas = line_spans(code), canvas_lines(fig)
    chains = {key: _chain(key) for keys in _SIZE_KEYS.values() for key in keys}
    for item in items:
        if not isinstance(item.artist, mtext.Text):
            continue
        for line in size_lines(item.artist, item.element.role, chains) + canvas:
            span = spans[line] if 0 < line < len(spans) else None
            if span and span != item.element.span and span not in item.extra_spans:
                item.extra_spans.append(span)
