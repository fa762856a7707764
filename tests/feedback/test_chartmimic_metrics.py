"""ChartMimic's low-level scores on hand-worked pairs, rendered through the chart renderer.

Each expected value is what ChartMimic's evaluators (`chart2code/utils/evaluator/`) give for
the pair, worked out in the comment. Every score is 2·matched / (|generated| + |reference|).
"""

import pytest

from vsdpo.feedback import reward_components
from vsdpo.feedback.chartmimic_metrics import chartmimic_scores, color_score, thin_colors
from vsdpo.feedback.color import rgb_delta_e
from vsdpo.render import Artifact, RenderConfig, render
from vsdpo.render.chart import ChartConfig
from vsdpo.render.types import RenderResult
from vsdpo.tasks.task import Task

HEAD = "import matplotlib.pyplot as plt\nimport numpy as np\n"
BARS = HEAD + """fig, ax = plt.subplots()
ax.bar([0, 1], [3, 4], color="#FF0000")
ax.bar([0, 1], [1, 2], color="#0000FF")
ax.bar([0, 1], [2, 1], color="#00FF00")
ax.set_title("Sales")
ax.set_xlabel("Region")
"""
BOXES = HEAD + """parts = plt.boxplot([[1, 2, 3], [2, 3, 4]], patch_artist=True)
for box, color in zip(parts["boxes"], ["#FF0000", "#0000FF"]):
    box.set_facecolor(color)
"""
CHARTS = {
    "bars": BARS,
    # tick labels differ; ChartMimic removes the ticks before it logs texts
    "bars_ticks": BARS + 'ax.set_xticks([0, 1], ["North", "South"])\n',
    "bars_dropped": BARS.replace('ax.bar([0, 1], [2, 1], color="#00FF00")\n', ""),
    "bars_swapped": BARS.replace("#FF0000", "#TMP").replace("#0000FF", "#FF0000")
                        .replace("#TMP", "#0000FF"),
    "lines": BARS.replace("ax.bar", "ax.plot"),
    "title_two_lines": HEAD + 'plt.title("Revenue\\n2023")\nplt.xlabel("Year")\n',
    "title_one_line": HEAD + 'plt.title("Revenue 2023")\nplt.xlabel("Year")\n',
    "no_text": HEAD + "plt.plot([0, 1], [0, 1])\n",
    "bar_with_errors": HEAD + "plt.bar([0, 1], [3, 4], yerr=[0.5, 0.5])\n",
    "errorbar": HEAD + "plt.errorbar([0, 1], [3, 4], yerr=[0.5, 0.5])\n",
    "viridis": HEAD + 'plt.imshow(np.arange(9).reshape(3, 3), cmap="viridis")\n',
    "plasma": HEAD + 'plt.imshow(np.arange(9).reshape(3, 3), cmap="plasma")\n',
    "boxes": BOXES,
    "boxes_green_whiskers": BOXES + 'plt.setp(parts["whiskers"], color="#00FF00")\n',
    "grid_1x2": HEAD + "fig, axes = plt.subplots(1, 2)\n",
    "grid_2x1": HEAD + "fig, axes = plt.subplots(2, 1)\n",
    "grid_1x2_inset": HEAD + "fig, axes = plt.subplots(1, 2)\nfig.add_axes([0.1, 0.1, 0.2, 0.2])\n",
    "grid_left_only": HEAD + "fig = plt.figure()\nfig.add_subplot(1, 2, 1)\n",
}


@pytest.fixture(scope="module")
def renders() -> dict[str, RenderResult]:
    config = RenderConfig(chart=ChartConfig(workers=2, timeout_s=60, cpu_s=60))
    results = render([Artifact("chart", code) for code in CHARTS.values()], config)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return dict(zip(CHARTS, results))


def scores(renders, generated: str, reference: str) -> dict[str, float]:
    return chartmimic_scores(renders[generated], renders[reference])


def test_a_chart_against_itself_scores_one_and_a_failed_render_zero(renders):
    assert scores(renders, "bars", "bars") == {"text": 1.0, "layout": 1.0, "type": 1.0,
                                               "color": 1.0}
    failed = RenderResult(ok=False, error="SyntaxError")
    assert set(chartmimic_scores(failed, renders["bars"]).values()) == {0.0}


def test_tick_labels_never_count_as_text(renders):
    # both log ["Sales", "Region"]: the category names are tick labels, removed first → 1
    assert sorted(renders["bars_ticks"].chart_log.texts) == ["Region", "Sales"]
    assert scores(renders, "bars_ticks", "bars")["text"] == 1.0


def test_a_multi_line_text_counts_one_text_per_line(renders):
    # reference ["Year", "Revenue", "2023"], generated ["Year", "Revenue 2023"]: 1 in common,
    # 2·1 / (2 + 3) = 0.4
    assert sorted(renders["title_two_lines"].chart_log.texts) == ["2023", "Revenue", "Year"]
    assert scores(renders, "title_one_line", "title_two_lines")["text"] == pytest.approx(0.4)


def test_two_charts_without_text_score_zero(renders):
    # ChartMimic: an empty log on either side gives precision = recall = 0
    assert renders["no_text"].chart_log.texts == []
    assert scores(renders, "no_text", "no_text")["text"] == 0.0


def test_chart_type_counts_plotting_calls(renders):
    # a dropped series: 2 `bar` calls against 3 → 2·2 / (2 + 3) = 0.8
    assert scores(renders, "bars_dropped", "bars")["type"] == pytest.approx(0.8)
    # `bar(yerr=...)` logs one `bar` (its inner `errorbar` call is nested): no common call → 0
    assert renders["bar_with_errors"].chart_log.calls == ["bar"]
    assert scores(renders, "errorbar", "bar_with_errors")["type"] == 0.0


def test_colors_match_within_their_drawing_function_over_the_best_pairing(renders):
    # the same colours in another order: the best pairing matches each exactly → 1
    assert scores(renders, "bars_swapped", "bars")["color"] == pytest.approx(1.0)
    # one colour dropped: 2 matched exactly, 2·2 / (2 + 3) = 0.8
    assert scores(renders, "bars_dropped", "bars")["color"] == pytest.approx(0.8)
    # the same palette drawn by `plot` instead of `bar`: other function, nothing matches → 0
    assert scores(renders, "lines", "bars")["color"] == 0.0


def test_colors_of_one_function_pair_up_by_similarity():
    # generated red, reference blue and green: red pairs with the closer of the two.
    # ΔE00(red, blue) ≈ 52.9 and ΔE00(red, green) ≈ 86.6 → red–blue, 1 − 0.529 = 0.471;
    # 2·0.471 / (1 + 2) = 0.314
    similarity = 1 - rgb_delta_e((255, 0, 0), (0, 0, 255)) / 100
    assert similarity == pytest.approx(0.471, abs=0.002)
    pred, ref = [("bar", "#FF0000")], [("bar", "#0000FF"), ("bar", "#00FF00")]
    assert color_score(pred, ref) == pytest.approx(2 * similarity / 3)


def test_colors_are_read_from_what_a_call_returned_once_per_creation_color(renders):
    # both boxes were created with the same default colour: ChartMimic keeps the last one
    # and reads it after the recolouring → blue only
    assert renders["boxes"].chart_log.colors == [("boxplot", "#0000FF")]
    # whiskers are drawn inside `boxplot` but not returned as boxes: they never count → 1
    assert scores(renders, "boxes_green_whiskers", "boxes")["color"] == 1.0


def test_images_compare_colormap_names(renders):
    # `imshow` logs its colormap's name: equal names 1, different names 0
    assert renders["viridis"].chart_log.colors == [("imshow", "viridis")]
    assert scores(renders, "viridis", "viridis")["color"] == 1.0
    assert scores(renders, "plasma", "viridis")["color"] == 0.0


def test_more_than_ten_colors_are_thinned_before_matching():
    # 11 colours; the 11th repeats a colormap name (similarity 1 > 0.7) and is dropped
    colors = [("imshow", f"cmap{i}") for i in range(10)] + [("contour", "cmap0")]
    assert thin_colors(colors) == colors[:10]
    assert thin_colors(colors[:10]) == colors[:10]


def test_layout_requires_the_same_grid_positions(renders):
    # (nrows, ncols, row span, col span) per axes: 1×2 and 2×1 share none → 0
    assert scores(renders, "grid_2x1", "grid_1x2")["layout"] == 0.0
    # axes placed without a grid spec (`add_axes`) are not logged → 1
    assert scores(renders, "grid_1x2_inset", "grid_1x2")["layout"] == 1.0
    # the left panel only: 1 of 2 positions, 2·1 / (1 + 2) = 0.667
    assert scores(renders, "grid_left_only", "grid_1x2")["layout"] == pytest.approx(2 / 3)


def test_the_reward_does_not_read_the_chartmimic_scores(renders):
    task = Task("t", "chart", "Draw bars.")
    parts = reward_components(task, renders["bars_dropped"], renders["bars"])
    assert not any(k.startswith("chartmimic") for k in parts)
    sims = [parts[f"sim_{k}"] for k in ("text", "type", "color", "layout")]
    assert parts["quality"] == pytest.approx(sum(sims) / 4)
