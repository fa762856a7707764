"""`--image-input` conversion: the prompt is the instruction alone and every task points at a
PNG of its target, the one shipped beside the input or the reference's own render."""

import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from vsdpo.render import Artifact, render
from vsdpo.tasks import load_tasks
from vsdpo.tasks.chartmimic import IMAGE_INSTRUCTION as CHART_INSTRUCTION
from vsdpo.tasks.convert import convert, main
from vsdpo.tasks.design2code import IMAGE_INSTRUCTION as WEB_INSTRUCTION

# outline lines that name the target's own texts, in the text-only prompts
CHART_TEXTS = re.compile(r"^\s*- (?:Title|X-axis label|Y-axis label|Legend entries|"
                         r"Figure title): (.*)$", re.MULTILINE)
WEB_TEXTS = re.compile(r"^\s*(?:Page title|Heading \d|Paragraph): (.*)$", re.MULTILINE)


def _stored_images(out: Path) -> dict[str, str]:
    """`reference_image` as written (load_tasks may resolve it)."""
    records = map(json.loads, out.read_text().splitlines())
    return {r["id"]: r["reference_image"] for r in records}


def _image_size(out: Path, task) -> tuple[int, int]:
    with Image.open(out.parent / task.reference_image) as image:
        image.load()
        return image.size


@pytest.mark.parametrize(("source", "folder", "domain", "instruction", "texts"), [
    ("chartmimic", "chartmimic", "chart", CHART_INSTRUCTION, CHART_TEXTS),
    ("design2code", "design2code", "web", WEB_INSTRUCTION, WEB_TEXTS),
])
def test_fixtures_convert_to_an_instruction_and_the_reference_render(
        fixtures_dir, tmp_path, source, folder, domain, instruction, texts):
    src = fixtures_dir / folder
    image_out, text_out = tmp_path / "vl" / "tasks.jsonl", tmp_path / "text" / "tasks.jsonl"
    convert(source, src, image_out, limit=3, progress=False, image_input=True)
    convert(source, src, text_out, limit=3, progress=False)
    image_tasks, text_tasks = load_tasks(image_out), load_tasks(text_out)
    assert [t.id for t in image_tasks] == [t.id for t in text_tasks] and len(image_tasks) == 3
    renders = render([Artifact(domain, t.reference_code) for t in image_tasks])
    stored = _stored_images(image_out)
    for task, text_task, result in zip(image_tasks, text_tasks, renders):
        assert task.prompt == instruction and task.reference_code == text_task.reference_code
        outlined = [s for line in texts.findall(text_task.prompt)
                    for s in re.findall(r'"([^"]+)"', line) or [line]]
        assert outlined, f"{task.id}: the text prompt names no title or label"
        assert not [s for s in outlined if s in task.prompt], task.id
        assert stored[task.id] == f"tasks_images/{task.id}.png"
        assert _image_size(image_out, task) == (result.width, result.height), task.id


def test_a_shipped_png_is_used_and_a_missing_one_is_rendered(tmp_path, capsys):
    charts, pages = tmp_path / "charts", tmp_path / "pages"
    charts.mkdir()
    pages.mkdir()
    (charts / "drawn.py").write_text("import matplotlib.pyplot as plt\n"
                                     "plt.figure(figsize=(3, 2))\nplt.bar(['ab', 'cd'], [1, 2])\n"
                                     "plt.title('Sales by region')\n")
    shutil.copy(charts / "drawn.py", charts / "shipped.py")
    Image.new("RGB", (40, 30), "white").save(charts / "shipped.png")
    (pages / "drawn.html").write_text("<html><body><h1>Opening hours</h1>"
                                      "<p>Monday to Friday</p></body></html>")
    shutil.copy(pages / "drawn.html", pages / "shipped.html")
    Image.new("RGB", (64, 48), "white").save(pages / "shipped.png")

    out = tmp_path / "out" / "chart.jsonl"
    assert main(["chartmimic", str(charts), str(out), "--image-input"]) == 0
    assert "wrote 2 tasks" in capsys.readouterr().out
    drawn, shipped = load_tasks(out)
    assert drawn.prompt == shipped.prompt == CHART_INSTRUCTION
    assert "Sales by region" not in drawn.prompt
    assert _image_size(out, drawn) == (300, 200)  # figsize x 100 dpi
    assert (out.parent / shipped.reference_image).resolve() == (charts / "shipped.png").resolve()

    out = tmp_path / "out" / "web.jsonl"
    convert("design2code", pages, out, progress=False, image_input=True)
    drawn, shipped = load_tasks(out)
    assert drawn.prompt == WEB_INSTRUCTION and "Opening hours" not in drawn.prompt
    assert _image_size(out, drawn) == (1280, 800)  # the viewport: the page is shorter
    assert _image_size(out, shipped) == (64, 48)
    assert sorted(p.name for p in (out.parent / "web_images").iterdir()) == \
        ["design2code-drawn.png"]


def test_without_the_flag_prompts_stay_outlines_and_no_image_is_written(tmp_path):
    (tmp_path / "page.html").write_text("<html><body><h1>Opening hours</h1></body></html>")
    out = tmp_path / "out" / "web.jsonl"
    convert("design2code", tmp_path, out, progress=False)
    (task,) = load_tasks(out)
    assert "Heading 1: Opening hours" in task.prompt and task.reference_image is None
    assert list(out.parent.iterdir()) == [out]


def test_slide_specs_refuse_image_input(tmp_path, capsys):
    src = tmp_path / "deck.jsonl"
    src.write_text('{"title": "Q3", "bullets": ["up"]}\n')
    out = tmp_path / "slides.jsonl"
    assert main(["slides", str(src), str(out), "--image-input"]) == 2
    assert "slide specs have no reference image" in capsys.readouterr().err
    assert not out.exists()
