"""Chart rendering with real matplotlib: every ChartMimic fixture, tracing to user lines,
tracebacks in the user's line numbers, and capture despite `show`/`savefig`/`close`."""

import io

import pytest
from PIL import Image

from chart_session import shared_renderer
from vsdpo.render.chart import ChartConfig


def line(code: str, span) -> str:
    return code[span[0]:span[1]]


def test_every_chartmimic_fixture_renders_with_traced_elements(fixtures_dir):
    files = sorted((fixtures_dir / "chartmimic").glob("*.py"))
    assert len(files) >= 40
    codes = [f.read_text() for f in files]
    for f, code, result in zip(files, codes, shared_renderer().render_many(codes)):
        assert result.ok, f"{f.name}: {result.error}"
        image = Image.open(io.BytesIO(result.image))
        assert (image.width, image.height) == (result.width, result.height), f.name
        assert any(e.role == "data" for e in result.elements), f.name
        traced = [e for e in result.elements if e.span is not None]
        assert len(traced) == len(result.elements), f"{f.name}: untraced elements"
        assert all(line(code, e.span).strip() for e in traced), f.name


BAR = """import matplotlib.pyplot as plt
import numpy as np
fig, ax = plt.subplots(figsize=(6, 4))
ax.bar(np.arange(3), [3, 1, 2], color="#336699", label="sales")
ax.set_title("Quarterly sales")
ax.set_xlabel("Quarter")
ax.set_xticks(np.arange(3))
ax.set_xticklabels(["Q1", "Q2", "Q3"])
ax.legend(loc="upper right")
plt.tight_layout()
plt.savefig("sales.png")
plt.show()
plt.close()
"""


def test_each_element_points_at_the_line_that_made_it():
    result = shared_renderer().render(BAR)
    assert result.ok, result.error
    by_role = {}
    for e in result.elements:
        by_role.setdefault(e.role, []).append(e)
    assert line(BAR, by_role["title"][0].span) == 'ax.set_title("Quarterly sales")'
    assert by_role["title"][0].text == "Quarterly sales"
    assert line(BAR, by_role["xlabel"][0].span) == 'ax.set_xlabel("Quarter")'
    assert [e.text for e in by_role["xtick_label"]] == ["Q1", "Q2", "Q3"]
    assert {line(BAR, e.span) for e in by_role["xtick_label"]} == {
        'ax.set_xticklabels(["Q1", "Q2", "Q3"])'}
    # y tick labels were never set: they belong to the call that made the axes
    assert {line(BAR, e.span) for e in by_role["ytick_label"]} == {
        "fig, ax = plt.subplots(figsize=(6, 4))"}
    assert len(by_role["data"]) == 3
    assert all(line(BAR, e.span).startswith("ax.bar(") for e in by_role["data"])
    assert all(e.color == (0x33, 0x66, 0x99) for e in by_role["data"])
    assert line(BAR, by_role["legend"][0].span) == 'ax.legend(loc="upper right")'
    assert by_role["legend_text"][0].text == "sales"
    assert by_role["legend_text"][0].parent == result.elements.index(by_role["legend"][0])
    assert by_role["title"][0].font_size == pytest.approx(12.0)


def test_boxes_are_top_left_pixels_inside_the_image():
    result = shared_renderer().render(BAR)
    assert (result.width, result.height) == (600, 400)
    title = next(e for e in result.elements if e.role == "title")
    xlabel = next(e for e in result.elements if e.role == "xlabel")
    assert title.bbox[1] < 40 and xlabel.bbox[3] > 360  # title on top, x label at the bottom
    for e in result.elements:
        x0, y0, x1, y1 = e.bbox
        assert -1 <= x0 < x1 <= 601 and -1 <= y0 < y1 <= 401, e


def test_categorical_tick_labels_belong_to_the_plotting_call_not_tight_layout():
    code = ('import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n'
            'ax.bar(["apples", "pears"], [1, 2])\nplt.tight_layout()\n')
    result = shared_renderer().render(code)
    ticks = [e for e in result.elements if e.role == "xtick_label"]
    assert [e.text for e in ticks] == ["apples", "pears"]
    assert {line(code, e.span) for e in ticks} == {'ax.bar(["apples", "pears"], [1, 2])'}


def test_a_figure_closed_after_savefig_is_still_captured():
    result = shared_renderer().render(BAR)
    assert result.ok and result.image.startswith(b"\x89PNG")


def test_savefig_bbox_tight_crops_the_capture_like_the_saved_file():
    code = ("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(4, 3))\n"
            "ax.plot([0, 1], [0, 1])\nplt.savefig('x.pdf', bbox_inches='tight')\n")
    result = shared_renderer().render(code)
    assert result.ok and result.width < 400 and result.height < 300


def test_user_errors_come_back_with_user_line_numbers_only():
    code = "import matplotlib.pyplot as plt\n\nfig, ax = plt.subplots()\nax.plot([1, 2], [1])\n"
    result = shared_renderer().render(code)
    assert not result.ok and result.image is None
    assert 'File "<chart>", line 4' in result.error
    assert "ax.plot([1, 2], [1])" in result.error and "ValueError" in result.error
    assert "chart_worker" not in result.error and "matplotlib" not in result.error.split("\n")[1]


def test_syntax_errors_name_the_user_line():
    result = shared_renderer().render("import matplotlib.pyplot as plt\nplt.plot([1, 2)\n")
    assert not result.ok and 'File "<chart>", line 2' in result.error
    assert "SyntaxError" in result.error


def test_sys_exit_still_captures_the_figure():
    result = shared_renderer().render(
        "import sys\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\nsys.exit(0)\n")
    assert result.ok and any(e.role == "data" for e in result.elements)


@pytest.mark.parametrize("field, value", [("workers", 0), ("timeout_s", -1.0), ("memory_mb", 0),
                                          ("use_bwrap", "yes")])
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"ChartConfig.{field}"):
        ChartConfig(**{field: value})
