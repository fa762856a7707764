"""Detector precision on real pages: defect counts per kind, and a random sample to audit.

Renders the Design2Code fixtures (web pages) and the Tailwind slides of `tailwind_slides.py`
with the default config (offline assets served, page scripts on; full-page captures up to
12,000 px, so every box is in its screenshot), counts the defects per
kind, and draws a seeded random sample of them: for each, the render with that one box drawn,
cropped around it, goes to `bench/results/<name>/<n>.png`. A person then looks at every crop
and writes the verdict (true or false positive, and why) into
`bench/results/detector_audit.md`; this script prints the table to fill in.

Usage:  python bench/detector_audit.py [--sample 40] [--seed 0] [--slides 24] [--name NAME]
Output: bench/results/<name>.json (counts and the sample), the crops, the table;
the name defaults to detector_audit.
"""

import argparse
import random
from collections import Counter

from common import RESULTS_DIR, fixtures_dir, run_metadata, write_result
from tailwind_slides import tailwind_slides
from vsdpo.render import Artifact, RenderConfig, render
from vsdpo.render.draw import draw_defects

MARGIN = 120  # pixels of context around a defect's box in its crop
CAPTURE_HEIGHT = 12_000  # every fixture page whole, so each defect is in its screenshot


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=40, help="defects to audit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slides", type=int, default=24, help="Tailwind slides to render")
    parser.add_argument("--name", default="detector_audit", help="name of the JSON and crop folder")
    args = parser.parse_args(argv)
    pages = sorted((fixtures_dir() / "design2code").glob("*.html"))
    inputs = ([("design2code", f"design2code/{p.name}", Artifact("web", p.read_text())) for p in pages]
              + [("tailwind_slides", f"tailwind_slide_{k}", Artifact("slide", s))
                 for k, s in enumerate(tailwind_slides(args.slides))])
    results = render([a for _, _, a in inputs], RenderConfig(max_page_height=CAPTURE_HEIGHT))
    counts: dict[str, Counter] = {"design2code": Counter(), "tailwind_slides": Counter()}
    flagged = []
    for (corpus, name, _), result in zip(inputs, results):
        if not result.ok:
            raise RuntimeError(f"{name} did not render: {result.error}")
        counts[corpus].update(d.kind for d in result.defects)
        flagged += [(name, result, d) for d in result.defects]
    sample = random.Random(args.seed).sample(flagged, min(args.sample, len(flagged)))
    out_dir = RESULTS_DIR / args.name
    for old in out_dir.glob("*.png"):
        old.unlink()
    if sample:
        out_dir.mkdir(exist_ok=True)
    audited = []
    print("| # | page | kind | message | image | verdict |\n|---|---|---|---|---|---|")
    for n, (name, result, d) in enumerate(sample, 1):
        image = draw_defects(result.image, [d])
        x0, x1 = (min(max(int(v), 0), image.width - 1) for v in d.bbox[::2])  # off-canvas
        y0, y1 = (min(max(int(v), 0), image.height - 1) for v in d.bbox[1::2])  # boxes too
        crop = image.crop((max(0, x0 - MARGIN), max(0, y0 - MARGIN),
                           min(image.width, x1 + MARGIN), min(image.height, y1 + MARGIN)))
        crop.thumbnail((800, 800))
        path = out_dir / f"{n:02d}.png"
        crop.save(path, optimize=True)
        audited.append({"n": n, "page": name, "kind": d.kind, "message": d.message,
                        "bbox": d.bbox, "image": str(path.relative_to(RESULTS_DIR.parent.parent))})
        print(f"| {n} | {name} | {d.kind} | {d.message} | `{audited[-1]['image']}` | |")
    payload = {"benchmark": "detector_audit", **run_metadata(),
               "pages": {"design2code": len(pages), "tailwind_slides": args.slides},
               "defects_per_kind": {k: dict(sorted(c.items())) for k, c in counts.items()},
               "flagged": len(flagged), "seed": args.seed, "sample": audited}
    write_result(payload, RESULTS_DIR / f"{args.name}.json")
    return payload


if __name__ == "__main__":
    main()
