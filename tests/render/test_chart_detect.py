"""Chart detectors on hand-made matplotlib programs: each defect kind found and blamed on
the line that caused it, and clean charts that must report nothing."""

import pytest

from chart_session import blamed, render_ok

HEAD = "import matplotlib.pyplot as plt\nimport numpy as np\n"
NAMES = 'names = [f"An extraordinarily long category name {i}" for i in range(8)]\n'


def render(body: str):
    code = HEAD + body
    return code, render_ok(code)


def of_kind(result, kind: str, text: str = ""):
    return [d for d in result.defects if d.kind == kind and text in d.message]


def test_long_category_names_overlap_and_are_blamed_on_set_xticklabels():
    code, result = render(NAMES + "fig, ax = plt.subplots(figsize=(6, 4))\n"
                          "ax.bar(range(8), range(1, 9))\nax.set_xticks(range(8))\n"
                          "ax.set_xticklabels(names)\n")
    [defect] = of_kind(result, "overlap", "x-axis tick labels")
    assert "8 of 8" in defect.message and 0 < defect.severity <= 1
    assert blamed(code, defect) == ["ax.set_xticklabels(names)"]
    assert defect.bbox[3] > 300  # the box is where the labels are: the bottom of the figure


def test_categorical_bars_blame_the_bar_call_for_overlapping_labels():
    code, result = render(NAMES + "fig, ax = plt.subplots(figsize=(6, 4))\n"
                          "ax.bar(names, range(1, 9))\n")
    [defect] = of_kind(result, "overlap", "x-axis tick labels")
    assert blamed(code, defect) == ["ax.bar(names, range(1, 9))"]


def test_tick_params_that_enlarge_labels_are_blamed_too():
    code, result = render("fig, ax = plt.subplots(figsize=(4, 3))\n"
                          'ax.bar(["alpha", "beta", "gamma", "delta"], [1, 2, 3, 4])\n'
                          'ax.tick_params(axis="x", labelsize=24)\n')
    [defect] = of_kind(result, "overlap", "x-axis tick labels")
    assert 'ax.tick_params(axis="x", labelsize=24)' in blamed(code, defect)


@pytest.mark.parametrize("rotation", [90, 45])
def test_rotated_labels_do_not_overlap_even_when_their_boxes_do(rotation):
    code, result = render(NAMES + "fig, ax = plt.subplots(figsize=(8, 8))\n"
                          "ax.bar(range(8), range(1, 9))\nax.set_xticks(range(8))\n"
                          f'ax.set_xticklabels(names, rotation={rotation}, ha="right")\n'
                          "plt.tight_layout()\n")
    ticks = [e for e in result.elements if e.role == "xtick_label"]
    if rotation == 45:  # the axis-aligned boxes of neighbours overlap; the outlines do not
        a, b = ticks[0].bbox, ticks[1].bbox
        assert a[2] > b[0]
    assert of_kind(result, "overlap") == []


def test_an_annotation_over_the_title_is_blamed_on_both_lines():
    code, result = render('fig, ax = plt.subplots()\nax.plot([0, 1], [0, 1])\n'
                          'ax.set_title("Revenue over time")\n'
                          'ax.text(0.5, 1.03, "PRELIMINARY DATA", transform=ax.transAxes, '
                          'ha="center", fontsize=14)\n')
    [defect] = of_kind(result, "overlap", "title")
    assert set(blamed(code, defect)) == {
        'ax.set_title("Revenue over time")',
        'ax.text(0.5, 1.03, "PRELIMINARY DATA", transform=ax.transAxes, ha="center", fontsize=14)'}
    assert "%" in defect.message


def test_text_past_the_figure_edge_is_off_canvas():
    code, result = render('fig, ax = plt.subplots(figsize=(5, 4))\nax.plot([0, 1], [0, 1])\n'
                          'fig.text(0.8, 0.5, "a note that runs off the figure", fontsize=14)\n')
    [defect] = of_kind(result, "off_canvas")
    assert blamed(code, defect) == [
        'fig.text(0.8, 0.5, "a note that runs off the figure", fontsize=14)']
    assert defect.bbox[2] > result.width and "outside the 500x400 figure" in defect.message


def test_a_legend_over_a_line_is_reported_and_blamed_on_legend():
    code, result = render("x = np.linspace(0, 1, 50)\nfig, ax = plt.subplots()\n"
                          'ax.plot(x, 0.95 + 0 * x, label="high")\n'
                          'ax.plot(x, 0.05 + 0 * x, label="low")\n'
                          'ax.set_ylim(0, 1)\nax.legend(loc="upper left")\n')
    [defect] = of_kind(result, "overlap", "legend covers")
    assert blamed(code, defect) == ['ax.legend(loc="upper left")']


def test_a_legend_over_bars_reports_the_covered_area():
    code, result = render("fig, ax = plt.subplots()\n"
                          'ax.bar(range(5), [10, 10, 10, 10, 10], label="full")\n'
                          'ax.set_ylim(0, 10)\nax.legend(loc="upper right")\n')
    [defect] = of_kind(result, "overlap", "legend covers")
    assert defect.severity > 0.3 and blamed(code, defect) == ['ax.legend(loc="upper right")']


def test_a_legend_in_free_space_is_not_a_defect():
    code, result = render("x = np.linspace(0, 1, 50)\nfig, ax = plt.subplots()\n"
                          'ax.plot(x, 0.95 + 0 * x, label="high")\n'
                          'ax.plot(x, 0.05 + 0 * x, label="low")\n'
                          'ax.set_ylim(0, 1)\nax.legend(loc="center")\n')
    assert result.defects == []


def test_tight_layout_warning_is_blamed_on_the_tight_layout_call():
    code, result = render("fig, ax = plt.subplots(figsize=(2, 2))\nax.plot([1, 2])\n"
                          'ax.set_yticks([1, 2], ["a very long tick label " * 4] * 2)\n'
                          "plt.tight_layout()\n")
    [defect] = of_kind(result, "layout_warning")
    assert "Tight layout not applied" in defect.message
    assert blamed(code, defect) == ["plt.tight_layout()"]


def test_a_figure_without_data_is_blank():
    code, result = render('fig, ax = plt.subplots()\nax.set_title("nothing here")\n')
    [defect] = of_kind(result, "blank")
    assert defect.severity == 1.0 and blamed(code, defect) == ["fig, ax = plt.subplots()"]


CLEAN = {
    "line": 'x = np.linspace(0, 10, 100)\nfig, ax = plt.subplots()\n'
            'ax.plot(x, np.sin(x), label="sin")\nax.plot(x, np.cos(x), label="cos")\n'
            'ax.set_title("Waves")\nax.set_xlabel("t")\nax.set_ylabel("value")\n'
            'ax.set_ylim(-1.5, 3)\nax.legend(loc="upper right")\nplt.tight_layout()\n',
    "bar": 'fig, ax = plt.subplots()\nax.bar(["a", "b", "c"], [3, 5, 2])\n'
           'ax.set_title("Counts")\nplt.tight_layout()\nplt.show()\n',
    "pie": 'fig, ax = plt.subplots()\nax.pie([30, 50, 20], labels=["x", "y", "z"])\n'
           'ax.set_title("Shares")\n',
    "scatter": 'rng = np.random.default_rng(0)\nfig, ax = plt.subplots()\n'
               'ax.scatter(rng.normal(size=50), rng.normal(size=50))\n'
               'ax.set_xlabel("a")\nax.set_ylabel("b")\nplt.tight_layout()\n',
    "table": 'fig, ax = plt.subplots()\nax.axis("off")\n'
             'ax.table(cellText=[["a", "b"], ["c", "d"]], loc="center")\n',
    "small_figure": 'fig = plt.figure(figsize=(3, 2))\nplt.bar([1], [2])\n',
    "subplots": 'fig, axs = plt.subplots(1, 2, figsize=(8, 3))\n'
                'for ax in axs:\n    ax.plot([1, 2, 3])\n    ax.set_title("panel")\n'
                'fig.suptitle("Two panels")\nplt.tight_layout()\n',
}


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_clean_charts_report_nothing(name):
    _, result = render(CLEAN[name])
    assert result.defects == [], [d.message for d in result.defects]


def test_clean_chartmimic_bar_chart_reports_nothing(fixtures_dir):
    code = (fixtures_dir / "chartmimic" / "bar_23.py").read_text()
    assert render_ok(code).defects == []
