"""How many elements with a Tailwind text-size class get their class's size, rendered as the
pool renders them: `cdn.tailwindcss.com` served the v3 Play CDN script (ours) and, for the
AeSlides slides, the same slides pointed at the v4 browser build (the baseline: the pool
served v4 for that URL before; these slides set no `tailwind.config`, so v4 needs no
translation of it).

Under v4 the utilities live in a cascade layer, which any unlayered rule beats: an icon
font's `.material-icons {font-size: 24px}` keeps `<i class="material-icons text-4xl">` at
24 px. Under v3 the utility sheet comes last and wins, as the authors saw it.

    python bench/tailwind_text_sizes.py [--aeslides DIR]  # DIR: AeSlides' examples/deck

The hand-made slides (`tailwind_slides.py`) always run; `--aeslides` adds every
`*.html` under DIR (the 87 public AeSlides slides). The last stdout line is the JSON
also written to bench/results/tailwind_text_sizes.json.
"""

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tailwind_slides import tailwind_slides  # noqa: E402
from vsdpo.render import Artifact, RenderConfig, render  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "tailwind_text_sizes.json"
V4_URL = "https://cdn.jsdelivr.net/npm/@tailwindcss/browser@4"
SIZES = {"xs": 12, "sm": 14, "base": 16, "lg": 18, "xl": 20, "2xl": 24, "3xl": 30,
         "4xl": 36, "5xl": 48, "6xl": 60, "7xl": 72, "8xl": 96, "9xl": 128}
BREAKPOINTS = {"": 0, "sm": 640, "md": 768, "lg": 1024, "xl": 1280, "2xl": 1536}
SLIDE_WIDTH = 1280
TEXT_CLASS = re.compile(r"^(?:(sm|md|lg|xl|2xl):)?text-(\w+|\[([\d.]+)(px|rem)\])$")
CLASS_ATTR = re.compile(r"""\sclass\s*=\s*["']([^"']*)["']""", re.I)


def expected_size(start_tag: str) -> float | None:
    """The px size the tag's text-size classes ask for at the slide's width; None without
    one. The widest breakpoint that applies wins, as in Tailwind's ordering."""
    match = CLASS_ATTR.search(start_tag)
    best = None  # (breakpoint, size)
    for token in match.group(1).split() if match else []:
        m = TEXT_CLASS.match(token)
        if not m or BREAKPOINTS[m.group(1) or ""] > SLIDE_WIDTH:
            continue
        size = (float(m.group(3)) * (16 if m.group(4) == "rem" else 1) if m.group(3)
                else SIZES.get(m.group(2)))
        if size is not None and (best is None or BREAKPOINTS[m.group(1) or ""] >= best[0]):
            best = (BREAKPOINTS[m.group(1) or ""], size)
    return best and best[1]


def measure(slides: dict[str, str]) -> dict:
    """Elements with a text-size class and how many render at it, with the misses."""
    results = render([Artifact("slide", code) for code in slides.values()],
                     RenderConfig(num_browsers=1, pages_per_browser=2, screenshot=False))
    total, at_size, misses = 0, 0, []
    for (name, code), result in zip(slides.items(), results):
        if not result.ok:
            raise RuntimeError(f"{name}: {result.error}")
        for e in result.elements:
            parent = result.elements[e.parent] if e.parent is not None else None
            if e.span is None or (parent is not None and parent.span == e.span):
                continue  # an element the browser made: it has no class of its own
            want = expected_size(code[e.span[0]:e.span[1]])
            if want is None:
                continue
            total += 1
            if abs(e.font_size - want) < 0.5:
                at_size += 1
            elif len(misses) < 20:
                misses.append({"slide": name, "tag": code[e.span[0]:e.span[1]][:120],
                               "want_px": want, "got_px": e.font_size})
    return {"num_slides": len(slides), "num_elements": total, "num_at_size": at_size,
            "fraction_at_size": round(at_size / max(total, 1), 4), "misses": misses}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aeslides", type=Path, help="a folder of AeSlides *.html slides")
    args = parser.parse_args(argv)
    sets = {"hand_made": {f"hand-{k}": s for k, s in enumerate(tailwind_slides(24))}}
    if args.aeslides:
        sets["aeslides"] = {str(p.relative_to(args.aeslides)): p.read_text()
                            for p in sorted(args.aeslides.rglob("*.html"))}
    out = {}
    for name, slides in sets.items():
        out[name] = {"v3_play_cdn": measure(slides)}
        if name == "aeslides":  # the hand-made slides set a `tailwind.config`, which v4 lacks
            v4 = {k: s.replace("https://cdn.tailwindcss.com", V4_URL) for k, s in slides.items()}
            out[name]["v4_browser_build"] = measure(v4)
        for build, row in out[name].items():
            print(f"{name:10s} {build:17s} {row['num_at_size']:5d} / {row['num_elements']:5d} "
                  f"at their class's size ({row['fraction_at_size']:.2%})", file=sys.stderr)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
