"""Public datasets → our task JSONL (docs/architecture.md, "Tasks"), for the GPU recipes.

    python -m vsdpo.tasks.convert chartmimic  DIR_OF_PY   data/chart.jsonl [--limit N]
    python -m vsdpo.tasks.convert design2code DIR_OF_HTML data/web.jsonl
    python -m vsdpo.tasks.convert slides      SPECS.jsonl data/slide.jsonl
    python -m vsdpo.tasks.convert chartmimic  DIR_OF_PY   data/chart-vl.jsonl --image-input

By default prompts are text only, for a text code model: `chartmimic.py`, `design2code.py`
and `aeslides.py` describe the target in words and values. With `--image-input` (charts and
pages; slide specs have no reference image) the prompt is the benchmark's instruction alone
and the target is the task's `reference_image`, for a vision-language policy: the
same-named `.png` next to the input, else the reference's own render, written to
`<out stem>_images/<task id>.png` beside the output. Either way the reference code stays in
the task for the similarity reward, and a same-named `.png` becomes `reference_image`
(stored relative to the output file). Ids come from file names, so a rerun gives the same
ids. An input that fails (bad syntax, a reference that does not render, a bad spec) is
reported by name and skipped; the run fails only when nothing converts.
"""

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from vsdpo.render.types import Artifact, RenderResult
from vsdpo.tasks import chartmimic, design2code
from vsdpo.tasks.aeslides import check_spec, slide_prompt
from vsdpo.tasks.task import Task, save_tasks

SOURCES = ("chartmimic", "design2code", "slides")


@dataclass
class _Unparsed:
    reason: str


@dataclass
class Report:
    tasks: list[Task] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input name, reason)


def convert(source: str, src: str | Path, out: str | Path, limit: int | None = None,
            progress: bool = True, image_input: bool = False) -> Report:
    """Convert `src` and write the tasks to `out`; raises `ValueError` when nothing converts."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    if image_input and source == "slides":
        raise ValueError("--image-input needs chartmimic or design2code: slide specs have no "
                         "reference image to show the policy")
    src, out = Path(src), Path(out)
    if not src.exists():
        raise ValueError(f"SRC {src} does not exist")
    out.parent.mkdir(parents=True, exist_ok=True)
    if source == "slides":
        report = _slides(src, out.parent.resolve(), limit, progress)
    else:
        pattern = "*.py" if source == "chartmimic" else "*.html"
        paths = _inputs(src, pattern)[:limit]
        make = _charts if source == "chartmimic" else _pages
        report = make(paths, out.resolve(), progress, image_input)
    if not report.tasks:
        reasons = "; ".join(f"{name}: {why}" for name, why in report.skipped[:5])
        raise ValueError(f"no task converted from {src} ({reasons})")
    save_tasks(report.tasks, out)
    return report


def _inputs(src: Path, pattern: str) -> list[Path]:
    if not src.is_dir():
        raise ValueError(f"SRC {src} must be a directory of {pattern} files")
    paths = sorted(src.glob(pattern))
    if not paths:
        raise ValueError(f"no {pattern} files found in {src}")
    return paths


def _charts(paths: list[Path], out: Path, progress: bool, image_input: bool) -> Report:
    """Render every reference once (texts, colours, the image, and proof that it renders)."""
    report, codes = Report(), {}
    for path in paths:
        try:
            code = path.read_text(encoding="utf-8")
            compile(code, path.name, "exec")
            codes[path] = code
        except (SyntaxError, UnicodeDecodeError, ValueError) as err:
            report.skipped.append((path.name, f"cannot parse: {err}"))
    results = _render([Artifact("chart", code) for code in codes.values()], "render charts",
                      progress)
    for (path, code), result in zip(codes.items(), results):
        if why := _unrendered(result):
            report.skipped.append((path.name, why))
            continue
        task_id = f"chartmimic-{path.stem}"
        prompt = chartmimic.IMAGE_INSTRUCTION if image_input else \
            chartmimic.chart_prompt(code, result)
        report.tasks.append(Task(task_id, "chart", prompt, code,
                                 _reference_image(path, out, task_id,
                                                  result if image_input else None)))
    return report


def _pages(paths: list[Path], out: Path, progress: bool, image_input: bool) -> Report:
    """Outline every page (a page with nothing to outline is no task); with `image_input`,
    render the pages that come without a screenshot."""
    report, pages = Report(), {}
    for path in tqdm(paths, desc="outline pages", unit="page", disable=not progress):
        try:
            html = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            report.skipped.append((path.name, f"cannot parse: {err}"))
            continue
        prompt = design2code.web_prompt(html)
        if "\n" not in prompt.split("Page outline (indentation = nesting):")[-1]:
            report.skipped.append((path.name, "the page shows no text or image to outline"))
            continue
        pages[path] = (html, design2code.IMAGE_INSTRUCTION if image_input else prompt)
    unshot = [p for p in pages if image_input and not p.with_suffix(".png").is_file()]
    renders = dict(zip(unshot, _render([Artifact("web", pages[p][0]) for p in unshot],
                                       "render pages", progress)))
    for path, (html, prompt) in pages.items():
        result = renders.get(path)
        if result is not None and (why := _unrendered(result)):
            report.skipped.append((path.name, why))
            continue
        task_id = f"design2code-{path.stem}"
        report.tasks.append(Task(task_id, "web", prompt, html,
                                 _reference_image(path, out, task_id, result)))
    return report


def _render(artifacts: list[Artifact], desc: str, progress: bool) -> list[RenderResult]:
    """Render references with the trainer's render pool (screenshots on), in order; the
    pool starts chart workers or browsers only for what `artifacts` holds."""
    from vsdpo.render.pool import RenderConfig, RenderPool

    async def go():
        bar = tqdm(total=len(artifacts), desc=desc, unit="input",
                   disable=not (progress and artifacts))

        async def one(pool, artifact):
            result = await pool.render_one(artifact)
            bar.update()
            return result

        try:
            async with RenderPool(RenderConfig(screenshot=True)) as pool:
                return await asyncio.gather(*(one(pool, a) for a in artifacts))
        finally:
            bar.close()

    return asyncio.run(go())


def _unrendered(result: RenderResult) -> str | None:
    """Why a reference is no target (the reward needs its render), or None."""
    if result.ok and not any(d.kind == "blank" for d in result.defects):
        return None
    why = (result.error or "").strip().splitlines()[-1:] or ["it is blank"]
    return f"reference does not render: {why[0]}"


def _slides(src: Path, out_dir: Path, limit: int | None, progress: bool) -> Report:
    report, seen = Report(), set()
    for name, spec in tqdm(_read_specs(src)[:limit], desc="slides", unit="slide",
                           disable=not progress):
        try:
            if isinstance(spec, _Unparsed):
                raise ValueError(spec.reason)
            check_spec(spec)
            image = spec.get("reference_image")
            if image and not (src.parent / image).is_file():
                raise ValueError(f"reference_image {image!r} not found next to {src.name}")
        except ValueError as err:
            report.skipped.append((name, str(err)))
            continue
        task_id = spec.get("id") or name
        if task_id in seen:
            report.skipped.append((name, f"duplicate id {task_id!r}"))
            continue
        seen.add(task_id)
        image = os.path.relpath(src.parent.resolve() / image, out_dir) if image else None
        report.tasks.append(Task(task_id, "slide", slide_prompt(spec),
                                 spec.get("reference_html"), image))
    return report


def _read_specs(src: Path) -> list[tuple[str, object]]:
    """(name for messages and default ids, the parsed spec or why it did not parse)."""
    if not src.is_file() or src.suffix not in (".json", ".jsonl"):
        raise ValueError(f"SRC {src} must be a .jsonl or .json file of slide specs")
    text = src.read_text(encoding="utf-8")
    if src.suffix == ".jsonl":
        specs = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    specs.append((f"{src.stem}-{lineno}", json.loads(line)))
                except json.JSONDecodeError as err:
                    specs.append((f"{src.stem}-{lineno}", _Unparsed(f"not JSON: {err}")))
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{src} is not valid JSON: {err}") from None
        data = data.get("slides") if isinstance(data, dict) else data
        if not isinstance(data, list):
            raise ValueError(f"{src} must hold a list of slide specs or {{\"slides\": [...]}}")
        specs = [(f"{src.stem}-{k}", spec) for k, spec in enumerate(data, start=1)]
    if not specs:
        raise ValueError(f"no slide specs found in {src}")
    return specs


def _reference_image(path: Path, out: Path, task_id: str,
                     render: RenderResult | None = None) -> str | None:
    """The same-named PNG beside the input, else `render`'s image saved beside `out`;
    relative to `out`'s folder."""
    png = path.with_suffix(".png")
    if not png.is_file():
        if render is None:
            return None
        png = out.parent / f"{out.stem}_images" / f"{task_id}.png"
        png.parent.mkdir(exist_ok=True)
        png.write_bytes(render.image)
    return os.path.relpath(png.resolve(), out.parent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vsdpo.tasks.convert",
                                     description="Convert a dataset to task JSONL.")
    parser.add_argument("source", choices=SOURCES)
    parser.add_argument("src", help="directory of scripts/pages, or a slide-spec file")
    parser.add_argument("out", help="output JSONL")
    parser.add_argument("--limit", type=int, default=None, help="convert the first N inputs")
    parser.add_argument("--image-input", action="store_true",
                        help="prompt with the instruction alone and the reference image "
                             "(rendered when no same-named .png exists), for a vision policy")
    args = parser.parse_args(argv)
    try:
        report = convert(args.source, args.src, args.out, args.limit,
                         image_input=args.image_input)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, why in report.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)
    print(f"wrote {len(report.tasks)} tasks to {args.out} ({len(report.skipped)} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
