"""Global chart style shares the blame: the rcParams statement that decided a defective
text's size (or the canvas) is blamed with the line that drew it, and no other rc statement."""

import importlib.util

import pytest

from chart_session import blamed, render_ok

HEAD = "import matplotlib\nimport matplotlib as mpl\nimport matplotlib.pyplot as plt\n"
# Five labels that fit at the default 10 pt and collide at 16 pt and above.
BARS = ("fig, ax = plt.subplots(figsize=(6, 4))\n"
        'ax.bar(["Northwest", "Southeast", "Midlands", "Highlands", "Lowlands"], '
        "[3, 5, 2, 4, 6])\n")
BAR_LINE = BARS.splitlines()[1]
UNRELATED = "plt.rcParams['lines.linewidth'] = 3"
needs_seaborn = pytest.mark.skipif(importlib.util.find_spec("seaborn") is None,
                                   reason="seaborn is not installed")


def render(body: str):
    code = HEAD + body
    return code, render_ok(code)


def tick_overlap(code: str, result) -> list[str]:
    [defect] = [d for d in result.defects if "x-axis tick labels overlap" in d.message]
    return blamed(code, defect)


def test_the_labels_fit_without_global_style():
    _, result = render(UNRELATED + "\n" + BARS)
    assert result.defects == []


@pytest.mark.parametrize("statement", [
    "plt.rcParams['font.size'] = 22",
    "plt.rcParams.update({'font.size': 22})",
    "matplotlib.rcParams['xtick.labelsize'] = 22",
    "plt.rc('font', size=22)",
    "mpl.rc('xtick', labelsize=22)",
    "plt.style.use({'xtick.labelsize': 22})",
    "plt.style.use('seaborn-v0_8-poster')",
    *(pytest.param(s, marks=needs_seaborn) for s in (
        "sns.set(font_scale=2)",
        "sns.set_theme(style='whitegrid', font_scale=2)",
        "sns.set_context('poster')")),
])
def test_the_rc_statement_that_enlarged_colliding_tick_labels_is_blamed(statement):
    seaborn = "import seaborn as sns\n" if statement.startswith("sns.") else ""
    code, result = render(f"{seaborn}{UNRELATED}\n{statement}\n{BARS}")
    spans = tick_overlap(code, result)
    assert statement in spans and BAR_LINE in spans
    assert UNRELATED not in spans


def test_only_the_last_statement_that_set_the_size_is_blamed():
    code, result = render("plt.rcParams['font.size'] = 30\nplt.rcParams['font.size'] = 22\n"
                          + BARS)
    assert tick_overlap(code, result) == [BAR_LINE, "plt.rcParams['font.size'] = 22"]


def test_an_absolute_tick_label_size_clears_the_font_size_statement():
    code, result = render("mpl.rcParams['xtick.labelsize'] = 22\nmpl.rcParams['font.size'] = 9\n"
                          + BARS)
    assert tick_overlap(code, result) == [BAR_LINE, "mpl.rcParams['xtick.labelsize'] = 22"]


def test_a_relative_title_size_resolves_through_font_size():
    code, result = render("plt.rcParams['font.size'] = 40\n"
                          "plt.rcParams['axes.titlesize'] = 'large'\n"
                          "fig, ax = plt.subplots(figsize=(4, 3))\nax.plot([1, 2])\n"
                          "ax.set_title('Quarterly revenue by region')\n")
    [defect] = [d for d in result.defects if d.kind == "off_canvas" and "title" in d.message]
    assert set(blamed(code, defect)) == {"ax.set_title('Quarterly revenue by region')",
                                         "plt.rcParams['font.size'] = 40",
                                         "plt.rcParams['axes.titlesize'] = 'large'"}


@pytest.mark.parametrize("explicit", [
    "ax.set_xticks(range(5), ['Northwest', 'Southeast', 'Midlands', 'Highlands', 'Lowlands'], "
    "fontsize=22)",
    "ax.tick_params(axis='x', labelsize=22)",
    "plt.setp(ax.get_xticklabels(), fontsize=22)",
])
def test_an_explicit_size_in_the_call_clears_the_rc_statement(explicit):
    # The same size as the rc default: only the call, not the value, tells them apart.
    code, result = render(f"plt.rcParams['font.size'] = 22\n{BARS}{explicit}\n")
    assert "plt.rcParams['font.size'] = 22" not in tick_overlap(code, result)


def test_a_global_figsize_that_shrinks_the_canvas_is_blamed():
    statement = "plt.rcParams['figure.figsize'] = (3, 2)"
    code, result = render(f"{statement}\n{BARS.replace('figsize=(6, 4)', '')}")
    assert statement in tick_overlap(code, result)


def test_an_explicit_figsize_clears_the_global_one():
    statement = "plt.rcParams['figure.figsize'] = (3, 2)"
    code, result = render(f"{statement}\n{BARS.replace('(6, 4)', '(3.5, 2.5)')}")
    assert statement not in tick_overlap(code, result)
