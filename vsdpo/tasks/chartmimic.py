"""ChartMimic scripts → chart tasks whose prompt describes the target chart in text.

A text-only policy sees no image, so the prompt must carry what a person would need to
redraw the chart (an image-input policy gets `IMAGE_INSTRUCTION` and the render instead).
Two sources, each used for what it is robust at:
- the reference rendered by our own sandboxed chart renderer (`vsdpo.render.chart`): every
  text the figure shows, by role and by panel (titles, axis labels, tick labels, legend,
  annotations), panel positions and data colours. Rendering resolves variables, f-strings
  and loops that a static reading would miss, and proves the reference renders — the
  trainer needs its render for the similarity reward;
- the script's AST: figure size, plotting calls, projections, colormaps, and the data
  preparation code (module-level statements that do not touch the figure), quoted as Python
  so the values are exact.
"""

import ast
from collections import Counter

from vsdpo.render.types import Element, RenderResult

PLOT_CALLS = (
    "bar", "barh", "plot", "scatter", "pie", "hist", "boxplot", "violinplot", "errorbar",
    "fill_between", "fill_betweenx", "fill", "stackplot", "step", "stem", "imshow", "matshow",
    "pcolormesh", "contour", "contourf", "quiver", "streamplot", "hexbin", "axhline",
    "axvline", "plot_surface", "bar3d", "table",
)
FIGURE_MODULES = ("plt", "matplotlib", "mpl", "sns", "seaborn")
MAX_DATA_CHARS = 3000
MAX_LIST_ITEMS = 24
MAX_COLORS = 12

INSTRUCTION = (
    "Write a complete, self-contained Python script that uses matplotlib (numpy allowed) to "
    "draw the chart specified below. Define all data inside the script, read no files, and "
    "do not call plt.show(): the current figure is captured when the script ends. Keep every "
    "text readable: no overlapping labels, nothing cut off at the figure edge. Reply with "
    "the script only: no Markdown fence, no explanation."
)
# ChartMimic's Direct Mimic task, in our words; the chart comes as the task's reference image.
IMAGE_INSTRUCTION = (
    "Write a complete, self-contained Python script that uses matplotlib (numpy allowed) to "
    "reproduce the chart in the image: the same chart type, data, texts, colours and layout. "
    "Choose figsize so that at 100 dpi the figure is about as large as the image. Define all "
    "data inside the script, read no files, and do not call plt.show(): the current figure is "
    "captured when the script ends. Keep every text readable: no overlapping labels, nothing "
    "cut off at the figure edge. Reply with the script only: no Markdown fence, no explanation."
)


def chart_prompt(code: str, result: RenderResult) -> str:
    """The instruction plus a text spec of the chart drawn by `code` (rendered as `result`)."""
    tree = ast.parse(code)
    lines = [INSTRUCTION, "", "Chart specification:"]
    lines += _figure_lines(tree)
    lines += _text_lines(tree, result)
    colors = _data_colors(result)
    if colors:
        lines.append(f"- Data colours, in drawing order: {', '.join(colors)}")
    data = data_code(code, tree)
    if data:
        lines += ["", "Data, as Python (use these exact values):", "```python", data, "```"]
    return "\n".join(lines)


def _figure_lines(tree: ast.Module) -> list[str]:
    size = _keyword_literal(tree, "figsize")
    lines = [f"- Figure size: {size[0]} x {size[1]} inches" if _is_pair(size)
             else "- Figure size: matplotlib's default (6.4 x 4.8 inches)"]
    calls = Counter(c for c in _method_calls(tree) if c in PLOT_CALLS)
    if calls:
        kinds = ", ".join(f"{name} ({n} call site{'s' * (n > 1)})" for name, n in calls.items())
        lines.append(f"- Plotting functions: {kinds}")
    projection = _keyword_literal(tree, "projection")
    if _keyword_literal(tree, "polar") is True or projection == "polar":
        lines.append("- Axes projection: polar")
    elif isinstance(projection, str):
        lines.append(f"- Axes projection: {projection}")
    cmaps = _keyword_literals(tree, "cmap")
    if cmaps:
        lines.append(f"- Colormaps: {', '.join(dict.fromkeys(cmaps))}")
    return lines


def _text_lines(tree: ast.Module, result: RenderResult) -> list[str]:
    """Texts grouped by panel (an axes element), then the figure-level ones."""
    explicit = {axis: _sets_ticks(tree, axis) for axis in "xy"}
    elements = result.elements
    panels = [i for i, e in enumerate(elements) if e.role == "axes"]
    legends = _legend_panels(elements, panels)  # legend index → its panel, or None
    lines = []
    for k, index in enumerate(panels, start=1):
        children = [e for i, e in enumerate(elements) if e.parent == index or
                    e.parent in legends and legends[e.parent] == index]
        body = _panel_texts(children, explicit)
        if len(panels) > 1:
            lines.append(f"- Panel {k} of {len(panels)} ({_position(elements[index], result)}):")
            body = ["  " + line for line in body]
        lines += body
    loose = [e for e in elements if e.role != "axes" and (
        e.parent is None or e.parent in legends and legends[e.parent] is None)]
    for role, name in (("legend_text", "Figure legend entries"), ("suptitle", "Figure title"),
                       ("annotation", "Figure texts")):
        texts = [e.text for e in loose if e.role == role and e.text.strip()]
        if texts:
            lines.append(f"- {name}: {_quoted(texts)}")
    return lines


def _legend_panels(elements: list[Element], panels: list[int]) -> dict[int, int | None]:
    """The tracer gives legends no parent: a legend belongs to the panel holding its centre."""
    owner = {}
    for i, e in enumerate(elements):
        if e.role == "legend":
            cx, cy = (e.bbox[0] + e.bbox[2]) / 2, (e.bbox[1] + e.bbox[3]) / 2
            inside = [p for p in panels if elements[p].bbox[0] <= cx <= elements[p].bbox[2]
                      and elements[p].bbox[1] <= cy <= elements[p].bbox[3]]
            owner[i] = inside[0] if inside else None
    return owner


def _panel_texts(children: list[Element], explicit: dict[str, bool]) -> list[str]:
    by_role: dict[str, list[str]] = {}
    for e in children:
        if e.text.strip():
            by_role.setdefault(e.role, []).append(e.text)
    lines = []
    for role, name in (("title", "Title"), ("xlabel", "X-axis label"), ("ylabel", "Y-axis label")):
        if role in by_role:
            lines.append(f"- {name}: {_quoted(by_role[role])}")
    for axis in "xy":
        ticks = by_role.get(f"{axis}tick_label", [])
        if ticks and (explicit[axis] or not all(map(_is_number, ticks))):
            lines.append(f"- {axis.upper()} tick labels: {_quoted(ticks)}")
    for role, name in (("legend_text", "Legend entries"), ("annotation", "Text annotations")):
        if role in by_role:
            lines.append(f"- {name}: {_quoted(by_role[role])}")
    return lines


def _position(axes: Element, result: RenderResult) -> str:
    w, h = max(result.width, 1), max(result.height, 1)
    x0, y0, x1, y1 = axes.bbox
    return (f"{axes.kind}, box left {x0 / w:.2f}, top {y0 / h:.2f}, right {x1 / w:.2f}, "
            f"bottom {y1 / h:.2f} of the figure")


def _data_colors(result: RenderResult) -> list[str]:
    colors = dict.fromkeys(e.color for e in result.elements if e.role == "data" and e.color)
    return ["#{:02x}{:02x}{:02x}".format(*c) for c in list(colors)[:MAX_COLORS]]


def data_code(code: str, tree: ast.Module | None = None) -> str:
    """Module-level statements that prepare data: imports, seeds and assignments that use
    no figure object. A statement reading `plt` (or a name derived from it) taints the
    names it assigns, so `fig, ax = plt.subplots()` and all that follows from it stay out."""
    tree = tree or ast.parse(code)
    tainted = set(FIGURE_MODULES)
    kept = []
    for stmt in tree.body:
        names = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in stmt.names] + [getattr(stmt, "module", None) or ""]
            if any(m.split(".")[0] in FIGURE_MODULES for m in modules):
                tainted |= {(a.asname or a.name).split(".")[0] for a in stmt.names}
                continue
        elif names & tainted or isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            tainted |= _assigned(stmt)
            continue
        elif isinstance(stmt, ast.Expr) and not _is_seed(stmt):
            continue
        kept.append(ast.get_source_segment(code, stmt))
    return _within_budget(kept)


def _within_budget(statements: list[str]) -> str:
    out, used = [], 0
    for k, s in enumerate(statements):
        if used + len(s) > MAX_DATA_CHARS:
            out.append(f"# ... {len(statements) - k} more statements omitted (too long)")
            break
        out.append(s)
        used += len(s) + 1
    return "\n".join(out)


def _assigned(stmt: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(stmt)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _is_seed(stmt: ast.Expr) -> bool:
    call = stmt.value
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and \
        call.func.attr == "seed"


def _method_calls(tree: ast.Module) -> list[str]:
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    return [n.func.attr for n in calls if isinstance(n.func, ast.Attribute)]


def _sets_ticks(tree: ast.Module, axis: str) -> bool:
    names = {f"set_{axis}ticks", f"set_{axis}ticklabels", f"{axis}ticks"}
    return any(c in names for c in _method_calls(tree))


def _keyword_literals(tree: ast.Module, name: str) -> list:
    values = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == name:
            try:
                values.append(ast.literal_eval(node.value))
            except ValueError:
                continue
    return values


def _keyword_literal(tree: ast.Module, name: str):
    values = _keyword_literals(tree, name)
    return values[0] if values else None


def _is_pair(value) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2 and \
        all(isinstance(v, (int, float)) for v in value)


def _is_number(text: str) -> bool:
    try:
        float(text.replace("\u2212", "-").replace("%", "").replace(",", ""))
    except ValueError:
        return False
    return True


def _quoted(texts: list[str]) -> str:
    shown = ", ".join('"' + " ".join(t.split()) + '"' for t in texts[:MAX_LIST_ITEMS])
    more = len(texts) - MAX_LIST_ITEMS
    return shown + (f", ... ({more} more)" if more > 0 else "")
