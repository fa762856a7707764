"""Dataset converters on the real fixtures: every input converts, the JSONL round-trips,
and the prompts carry what a person needs to redraw the target (checked against strings
read from the fixture files here, independently of the converters' own extraction)."""

import ast
import html
import json
import re
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from vsdpo.tasks import load_tasks
from vsdpo.tasks.convert import convert, main
from vsdpo.tasks.design2code import web_prompt


@pytest.fixture(scope="module")
def chart_tasks(fixtures_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("charts") / "chart.jsonl"
    convert("chartmimic", fixtures_dir / "chartmimic", out, progress=False)
    return {t.id: t for t in load_tasks(out)}


@pytest.fixture(scope="module")
def web_tasks(fixtures_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("web") / "web.jsonl"
    convert("design2code", fixtures_dir / "design2code", out, progress=False)
    return {t.id: t for t in load_tasks(out)}


def _module_strings(tree: ast.Module) -> dict[str, object]:
    """Module-level `name = <literal>` bindings (the last one wins, as when the script runs)."""
    bound = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and \
                isinstance(stmt.targets[0], ast.Name):
            try:
                bound[stmt.targets[0].id] = ast.literal_eval(stmt.value)
            except ValueError:
                bound.pop(stmt.targets[0].id, None)
    return bound


def _label_calls(code: str) -> list[str]:
    """Literal (or literal-bound) first arguments of set_title / set_xlabel / set_ylabel."""
    tree = ast.parse(code)
    bound, texts = _module_strings(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("set_title", "set_xlabel", "set_ylabel") and node.args:
            arg = node.args[0]
            value = arg.value if isinstance(arg, ast.Constant) else \
                bound.get(arg.id) if isinstance(arg, ast.Name) else None
            if isinstance(value, str) and value.strip() and "$" not in value:
                texts.append(" ".join(value.split()))
    return texts


def test_every_chartmimic_fixture_converts_with_an_id_from_its_file_name(chart_tasks,
                                                                          fixtures_dir):
    scripts = sorted((fixtures_dir / "chartmimic").glob("*.py"))
    assert sorted(chart_tasks) == sorted(f"chartmimic-{p.stem}" for p in scripts)
    for path in scripts:
        task = chart_tasks[f"chartmimic-{path.stem}"]
        assert task.domain == "chart" and task.reference_code == path.read_text()
        assert task.reference_image is None  # the fixtures ship no PNGs


def test_chart_prompts_name_every_title_and_axis_label_the_script_sets(chart_tasks,
                                                                       fixtures_dir):
    checked = 0
    for path in sorted((fixtures_dir / "chartmimic").glob("*.py")):
        prompt = chart_tasks[f"chartmimic-{path.stem}"].prompt
        for text in _label_calls(path.read_text()):
            assert f'"{text}"' in prompt, f"{path.name}: {text!r} missing from the prompt"
            checked += 1
    assert checked >= 40


def test_chart_prompts_quote_the_numeric_data_lists_and_figure_size(chart_tasks, fixtures_dir):
    for path in sorted((fixtures_dir / "chartmimic").glob("*.py")):
        code, prompt = path.read_text(), chart_tasks[f"chartmimic-{path.stem}"].prompt
        for name, value in _module_strings(ast.parse(code)).items():
            if isinstance(value, list) and value and all(
                    isinstance(v, (int, float)) for v in value):
                assert re.search(rf"^{name}\s*=", prompt, re.M), (path.name, name)
                assert str(value[-1]) in prompt, (path.name, name)
        size = re.search(r"figsize\s*=\s*\((\d+(?:\.\d+)?),\s*(\d+(?:\.\d+)?)\)", code)
        if size:
            assert f"Figure size: {size[1]} x {size[2]} inches" in prompt, path.name


def test_chart_prompts_list_the_tick_labels_and_legend_of_a_grouped_bar_chart(chart_tasks,
                                                                              fixtures_dir):
    bound = _module_strings(ast.parse((fixtures_dir / "chartmimic/bar_23.py").read_text()))
    prompt = chart_tasks["chartmimic-bar_23"].prompt
    assert "X tick labels: " + ", ".join(f'"{m}"' for m in bound["models"]) in prompt
    assert "Legend entries: " + ", ".join(f'"{m}"' for m in bound["labels"]) in prompt
    assert "bar (4 call sites)" in prompt


def test_chart_legends_go_to_the_panel_they_sit_in_or_to_the_figure(chart_tasks, fixtures_dir):
    panels = chart_tasks["chartmimic-line_78"].prompt.split("- Panel ")[1:]
    assert len(panels) == 6
    assert all(panel.count("\n  - Legend entries: ") == 1 for panel in panels)
    bound = _module_strings(ast.parse((fixtures_dir / "chartmimic/errorbar_12.py").read_text()))
    entries = ", ".join(f'"{m}"' for m in bound["labels"])
    assert f"\n- Figure legend entries: {entries}" in chart_tasks["chartmimic-errorbar_12"].prompt


def test_every_design2code_page_converts_with_its_html_as_reference(web_tasks, fixtures_dir):
    pages = sorted((fixtures_dir / "design2code").glob("*.html"))
    assert sorted(web_tasks) == sorted(f"design2code-{p.stem}" for p in pages)
    for path in pages:
        task = web_tasks[f"design2code-{path.stem}"]
        assert task.domain == "web" and task.reference_code == path.read_text()
        assert "1280 pixels wide" in task.prompt


def _first(pattern: str, page: str, skip: str = "script|style|noscript|svg|head") -> str | None:
    body = re.sub(rf"<({skip})\b.*?</\1>", "", page, flags=re.S | re.I)
    match = re.search(pattern, body, flags=re.S | re.I)
    if not match:
        return None
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match[1])).split())


def test_web_prompts_carry_the_page_title_first_heading_and_image_alts(web_tasks, fixtures_dir):
    headings = alts = 0
    for path in sorted((fixtures_dir / "design2code").glob("*.html")):
        page, prompt = path.read_text(), web_tasks[f"design2code-{path.stem}"].prompt
        title = _first(r"<title[^>]*>(.*?)</title>", page, skip="script|style")
        if title:
            assert f"Page title: {' '.join(title.split()[:30])}" in prompt, path.name
        heading = _first(r"<h[1-3][^>]*>(.*?)</h[1-3]>", page)
        if heading:
            assert " ".join(heading.split()[:8]) in prompt, (path.name, heading)
            headings += 1
        alt = _first(r"<img[^>]*\balt=\"([^\"]+)\"", page)
        if alt and len(prompt) < 4500:
            assert f"[image: {' '.join(alt.split()[:8])}" in prompt, (path.name, alt)
            alts += 1
    assert headings >= 20 and alts >= 3


def test_web_outline_shows_layout_table_rows_and_nesting_but_no_script():
    page = """<html><head><title>Shop</title><style>@media (min-width:600px){
      .cols{display:flex} .side{float:left;width:30%}}</style></head><body>
      <nav><ul><li>Home<li>About</ul></nav>
      <div class="cols"><div class="side"><p>Left <a href="#">more</a> text</div>
      <div><table><tr><td>Price<td>$12</tr><tr><td>Tax</td><td>$1</td></tr></table></div></div>
      <script>document.write("hidden")</script>
      <footer><button>Buy</button></footer></body></html>"""
    outline = web_prompt(page).split("Page outline (indentation = nesting):\n")[1].splitlines()
    assert outline == ["Navigation bar:", "  List:", "    - Home", "    - About",
                       "Columns side by side:", "  Column:", "    Paragraph: Left more text",
                       "  Table:", "    Row: Price | $12", "    Row: Tax | $1",
                       "Footer:", "  Button: Buy"]


def test_reference_images_resolve_relative_to_the_output_file(fixtures_dir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("bar_23", "pie_1"):
        shutil.copy(fixtures_dir / "chartmimic" / f"{name}.py", src)
    Image.new("RGB", (8, 8)).save(src / "bar_23.png")
    out = tmp_path / "deep" / "out" / "tasks.jsonl"
    convert("chartmimic", src, out, progress=False)
    tasks = {t.id: t for t in load_tasks(out)}
    image = tasks["chartmimic-bar_23"].reference_image
    assert (out.parent / image).resolve() == (src / "bar_23.png").resolve()
    assert tasks["chartmimic-pie_1"].reference_image is None


def test_a_broken_script_is_skipped_by_name_and_the_rest_converts(fixtures_dir, tmp_path,
                                                                  capsys):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(fixtures_dir / "chartmimic" / "line_7.py", src)
    (src / "syntax_bad.py").write_text("import matplotlib.pyplot as plt\nplt.plot([1, 2\n")
    (src / "raises.py").write_text("import matplotlib.pyplot as plt\nplt.plot(undefined)\n")
    out = tmp_path / "tasks.jsonl"
    assert main(["chartmimic", str(src), str(out)]) == 0
    captured = capsys.readouterr()
    err = captured.err
    assert "wrote 1 tasks" in captured.out and "(2 skipped)" in captured.out
    assert "skipped syntax_bad.py: cannot parse" in err
    assert "skipped raises.py: reference does not render" in err and "NameError" in err
    assert [t.id for t in load_tasks(out)] == ["chartmimic-line_7"]


def test_a_source_where_nothing_converts_fails_and_names_the_reasons(tmp_path, capsys):
    (tmp_path / "bad.py").write_text("def broken(:\n")
    assert main(["chartmimic", str(tmp_path), str(tmp_path / "o.jsonl")]) == 2
    assert "no task converted" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_missing_or_empty_sources_fail_with_a_clear_error(tmp_path, capsys):
    assert main(["design2code", str(tmp_path / "nowhere"), str(tmp_path / "o.jsonl")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"no \*\.html files found"):
        convert("design2code", tmp_path, tmp_path / "o.jsonl", progress=False)
    with pytest.raises(ValueError, match="--limit must be >= 1"):
        convert("design2code", tmp_path, tmp_path / "o.jsonl", limit=0, progress=False)
    assert not (tmp_path / "o.jsonl").exists()


def test_the_module_runs_as_a_command_with_a_progress_bar(fixtures_dir, tmp_path):
    out = tmp_path / "web.jsonl"
    done = subprocess.run([sys.executable, "-m", "vsdpo.tasks.convert", "design2code",
                           str(fixtures_dir / "design2code"), str(out), "--limit", "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"wrote 2 tasks to {out} (0 skipped)" in done.stdout
    assert "outline pages" in done.stderr and "2/2" in done.stderr  # tqdm writes to stderr
    assert len(load_tasks(out)) == 2


def test_limit_keeps_the_first_inputs_in_name_order(fixtures_dir, tmp_path):
    out = tmp_path / "web.jsonl"
    convert("design2code", fixtures_dir / "design2code", out, limit=3, progress=False)
    first = sorted((fixtures_dir / "design2code").glob("*.html"))[:3]
    assert [t.id for t in load_tasks(out)] == [f"design2code-{p.stem}" for p in first]


def test_slide_specs_convert_and_bad_specs_are_skipped_by_name(tmp_path, capsys):
    (tmp_path / "ref.png").write_bytes(b"png")
    good = {"title": "Q3 review", "subtitle": "Operations",
            "bullets": ["Revenue up 12%", ["EMEA +20%", "APAC +4%"], "Churn flat"],
            "images": ["bar chart of revenue by region"], "notes": "Stress EMEA",
            "reference_html": "<html><body><h1>Q3 review</h1></body></html>",
            "reference_image": "ref.png"}
    lines = [json.dumps(good), json.dumps({"title": "Typo", "bulets": ["a"]}), "{not json",
             json.dumps({"id": "closing", "title": "Thanks", "images": ["team photo"]})]
    src = tmp_path / "deck.jsonl"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out" / "slides.jsonl"
    assert main(["slides", str(src), str(out)]) == 0
    err = capsys.readouterr().err
    assert "skipped deck-2: unknown keys ['bulets']" in err and "skipped deck-3: not JSON" in err
    tasks = load_tasks(out)
    assert [t.id for t in tasks] == ["deck-1", "closing"]
    first = tasks[0]
    assert first.domain == "slide" and first.reference_code == good["reference_html"]
    assert (out.parent / first.reference_image).resolve() == (tmp_path / "ref.png").resolve()
    for text in ("1280x720", "Title: Q3 review", "- Revenue up 12%", "  - APAC +4%",
                 "- Churn flat", "[image: bar chart of revenue by region]",
                 "do not show them): Stress EMEA"):
        assert text in first.prompt
    assert tasks[1].reference_code is None and tasks[1].reference_image is None


def test_a_json_slide_file_must_hold_a_list_of_specs(tmp_path):
    src = tmp_path / "deck.json"
    src.write_text(json.dumps({"slides": [{"title": "Only", "bullets": ["one"]}]}))
    convert("slides", src, tmp_path / "a.jsonl", progress=False)
    assert [t.id for t in load_tasks(tmp_path / "a.jsonl")] == ["deck-1"]
    src.write_text(json.dumps({"title": "not a list"}))
    with pytest.raises(ValueError, match="must hold a list of slide specs"):
        convert("slides", src, tmp_path / "b.jsonl", progress=False)
    src.write_text(json.dumps([{"title": "No content"}]))
    with pytest.raises(ValueError, match="needs at least one bullet or one image"):
        convert("slides", src, tmp_path / "c.jsonl", progress=False)
