"""`vsdpo render FILE...`: render programs, print their defects with the code to blame.

    vsdpo render page.html chart.py          # .html → web page, .py → chart
    vsdpo render --slide deck1.html -o out/  # HTML as a 1280×720 slide

Each defect is printed with its kind, message and the blamed source lines (numbered);
`<out>/<name>.png` is the render with the defect boxes drawn.
"""

import argparse
from pathlib import Path

from vsdpo.render.draw import draw_defects
from vsdpo.render.pool import RenderConfig, render
from vsdpo.render.types import Artifact, RenderResult, Span

DOMAINS = {".html": "web", ".htm": "web", ".py": "chart"}


def add_parser(sub) -> None:
    """Register the `render` subcommand on the `vsdpo` parser."""
    p = sub.add_parser("render", help="render programs, print defects and the code to blame",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path, help=".html (web page) or .py (matplotlib chart)")
    p.add_argument("--slide", action="store_true", help="render .html files as 1280×720 slides")
    p.add_argument("-o", "--out", type=Path, default=Path("renders"),
                   help="folder for the annotated PNGs (default: ./renders)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per render (default 10)")
    p.add_argument("--no-javascript", action="store_true",
                   help="do not run page scripts (Tailwind's Play CDN and chart libraries need them)")


def blamed_lines(code: str, spans: list[Span], limit: int = 6, width: int = 110) -> list[str]:
    """`  12 | <div style="width:180px">` for each distinct line the spans touch.

    A long (minified) line is shown from just before the first blamed text on it.
    """
    starts = [0] + [i + 1 for i, c in enumerate(code) if c == "\n"]
    first_col: dict[int, int] = {}
    for a, b in sorted(spans):
        for n in range(code.count("\n", 0, a), code.count("\n", 0, max(a, b - 1)) + 1):
            first_col.setdefault(n, max(0, a - starts[n]))
    out = []
    for n in sorted(first_col)[:limit]:
        line = code[starts[n]:starts[n + 1] - 1] if n + 1 < len(starts) else code[starts[n]:]
        cut = max(0, first_col[n] - 20) if len(line) > width else 0
        text = ("…" if cut else "") + line[cut:cut + width].strip()
        out.append(f"  {n + 1:5d} | {text}")
    if len(first_col) > limit:
        out.append(f"        … {len(first_col) - limit} more lines")
    return out


def _print_result(path: Path, code: str, result: RenderResult, out: Path) -> None:
    if not result.ok:
        print(f"{path}: render failed\n{result.error}")
        return
    print(f"{path}: {result.width}×{result.height}, {len(result.defects)} defect(s)")
    if result.missed_urls:  # the pool has no network: the page rendered without these
        print(f"refused {len(result.missed_urls)} network request(s): "
              + ", ".join(result.missed_urls))
    if result.substituted_fonts:
        print("fonts drawn with another font: " + ", ".join(result.substituted_fonts))
    for n, d in enumerate(result.defects, 1):
        print(f"[{n}] {d.kind} (severity {d.severity:.2f}): {d.message}")
        print("\n".join(blamed_lines(code, d.spans)))
    image_path = out / f"{path.stem}.png"
    draw_defects(result.image, result.defects).save(image_path)
    print(f"  → {image_path}")


def run(args) -> int:
    """Render every file; exit status 1 when any render failed."""
    artifacts = []
    for path in args.files:
        domain = DOMAINS.get(path.suffix.lower())
        if domain is None:
            raise SystemExit(f"vsdpo render: {path}: unknown extension; use .html or .py")
        domain = "slide" if domain == "web" and args.slide else domain
        artifacts.append(Artifact(domain, path.read_text()))
    js = {"web": not args.no_javascript, "slide": not args.no_javascript}
    results = render(artifacts, RenderConfig(timeout_s=args.timeout, javascript=js))
    args.out.mkdir(parents=True, exist_ok=True)
    for path, artifact, result in zip(args.files, artifacts, results):
        _print_result(path, artifact.code, result, args.out)
    return 0 if all(r.ok for r in results) else 1
