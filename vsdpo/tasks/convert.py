"""Public datasets → our task JSONL (DESIGN.md §4.5), for the GPU recipes.

    python -m vsdpo.tasks.convert chartmimic  DIR_OF_PY   data/chart.jsonl [--limit N]
    python -m vsdpo.tasks.convert design2code DIR_OF_HTML data/web.jsonl
    python -m vsdpo.tasks.convert slides      SPECS.jsonl data/slide.jsonl

Prompts are text only (the policy is a text code model): `chartmimic.py`, `design2code.py`
and `aeslides.py` describe the target in words and values; the reference code stays in
the task for the similarity reward. A same-named `.png` next to a script or page becomes
`reference_image` (stored relative to the output file). Ids come from file names, so a
rerun gives the same ids. An input that fails (bad syntax, a reference that does not
render, a bad spec) is reported by name and skipped; the run fails only when nothing
converts.
"""

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from vsdpo.tasks.aeslides import check_spec, slide_prompt
from vsdpo.tasks.chartmimic import chart_prompt
from vsdpo.tasks.design2code import web_prompt
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
            progress: bool = True) -> Report:
    """Convert `src` and write the tasks to `out`; raises `ValueError` when nothing converts."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
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
        report = make(paths, out.parent.resolve(), progress)
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


def _charts(paths: list[Path], out_dir: Path, progress: bool) -> Report:
    """Render every reference once (texts, colours, and proof that it renders)."""
    report, codes = Report(), {}
    for path in paths:
        try:
            code = path.read_text(encoding="utf-8")
            compile(code, path.name, "exec")
            codes[path] = code
        except (SyntaxError, UnicodeDecodeError, ValueError) as err:
            report.skipped.append((path.name, f"cannot parse: {err}"))
    results = asyncio.run(_render_charts(list(codes.values()), progress)) if codes else []
    for (path, code), result in zip(codes.items(), results):
        if not result.ok or any(d.kind == "blank" for d in result.defects):
            why = (result.error or "").strip().splitlines()[-1:] or ["the figure is blank"]
            report.skipped.append((path.name, f"reference does not render: {why[0]}"))
            continue
        report.tasks.append(Task(f"chartmimic-{path.stem}", "chart", chart_prompt(code, result),
                                 code, _reference_image(path, out_dir)))
    return report


async def _render_charts(codes: list[str], progress: bool):
    from vsdpo.render.chart import ChartConfig, ChartRenderer  # workers only when needed

    renderer = ChartRenderer(ChartConfig())
    await renderer.start()
    bar = tqdm(total=len(codes), desc="render charts", unit="chart", disable=not progress)

    async def one(code):
        result = await renderer.render(code)
        bar.update()
        return result

    try:
        return await asyncio.gather(*(one(code) for code in codes))
    finally:
        bar.close()
        await renderer.close()


def _pages(paths: list[Path], out_dir: Path, progress: bool) -> Report:
    report = Report()
    for path in tqdm(paths, desc="outline pages", unit="page", disable=not progress):
        try:
            html = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            report.skipped.append((path.name, f"cannot parse: {err}"))
            continue
        prompt = web_prompt(html)
        if "\n" not in prompt.split("Page outline (indentation = nesting):")[-1]:
            report.skipped.append((path.name, "the page shows no text or image to outline"))
            continue
        report.tasks.append(Task(f"design2code-{path.stem}", "web", prompt, html,
                                 _reference_image(path, out_dir)))
    return report


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


def _reference_image(path: Path, out_dir: Path) -> str | None:
    png = path.with_suffix(".png")
    return os.path.relpath(png.resolve(), out_dir) if png.is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vsdpo.tasks.convert",
                                     description="Convert a dataset to task JSONL.")
    parser.add_argument("source", choices=SOURCES)
    parser.add_argument("src", help="directory of scripts/pages, or a slide-spec file")
    parser.add_argument("out", help="output JSONL")
    parser.add_argument("--limit", type=int, default=None, help="convert the first N inputs")
    args = parser.parse_args(argv)
    try:
        report = convert(args.source, args.src, args.out, args.limit)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, why in report.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)
    print(f"wrote {len(report.tasks)} tasks to {args.out} ({len(report.skipped)} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
