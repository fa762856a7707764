"""AeSlides-style slide specs → slide tasks (one 1280×720 HTML slide each).

Input: a `.jsonl` file (one spec per line) or a `.json` file (a list of specs, or an object
with a `"slides"` list). One spec:

    {"id": "q3-review-2",                  # optional; default <file stem>-<position>
     "title": "Q3 review",                  # required, non-empty
     "subtitle": "Operations",              # optional
     "bullets": ["Revenue up 12%",          # optional list; a nested list holds the
                 ["EMEA +20%", "APAC +4%"]],  #   sub-bullets of the bullet before it
     "notes": "Stress the EMEA growth",     # optional speaker notes: context, not shown
     "images": ["bar chart of revenue by region"],  # optional image descriptions
     "reference_html": "<html>...</html>",  # optional reference slide (similarity reward)
     "reference_image": "png/q3-2.png"}     # optional PNG, relative to the spec file

A spec needs a title and at least one bullet or image. Unknown keys are an error (a typo
such as "bulets" would otherwise drop the content silently).
"""

SLIDE_SIZE = (1280, 720)
KEYS = {"id", "title", "subtitle", "bullets", "notes", "images", "reference_html",
        "reference_image"}

INSTRUCTION = (
    "Write one complete, self-contained HTML file (inline CSS, no JavaScript, no external "
    f"resources) for a presentation slide of exactly {SLIDE_SIZE[0]}x{SLIDE_SIZE[1]} pixels: "
    "give the slide's root element that fixed size. Show the title and every bullet below, "
    "in order; draw each image as a box of a plausible size with its description as a "
    "caption. Everything must fit on the slide without overlapping, with balanced margins "
    "and readable font sizes. Reply with the HTML only: no Markdown fence, no explanation."
)


def check_spec(spec) -> None:
    """Raise `ValueError` naming the bad key when `spec` does not follow the schema."""
    if not isinstance(spec, dict):
        raise ValueError(f"a slide spec must be a JSON object, got {type(spec).__name__}")
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown}; valid keys: {sorted(KEYS)}")
    if not isinstance(spec.get("title"), str) or not spec["title"].strip():
        raise ValueError("'title' must be a non-empty string")
    bullets, images = spec.get("bullets", []), spec.get("images", [])
    if not isinstance(bullets, list) or not all(
            isinstance(b, str) or isinstance(b, list) and all(isinstance(s, str) for s in b)
            for b in bullets):
        raise ValueError("'bullets' must be a list of strings (a nested list of strings "
                         "holds sub-bullets)")
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise ValueError("'images' must be a list of description strings")
    if not bullets and not images:
        raise ValueError("a slide needs at least one bullet or one image")
    for key in ("id", "subtitle", "notes", "reference_html", "reference_image"):
        if key in spec and not isinstance(spec[key], str):
            raise ValueError(f"'{key}' must be a string")


def slide_prompt(spec: dict) -> str:
    """The instruction plus the slide's content, from a spec that passed `check_spec`."""
    lines = [INSTRUCTION, "", "Slide content:", f"Title: {spec['title'].strip()}"]
    if spec.get("subtitle"):
        lines.append(f"Subtitle: {spec['subtitle'].strip()}")
    if spec.get("bullets"):
        lines.append("Bullets:")
    for bullet in spec.get("bullets", []):
        if isinstance(bullet, str):
            lines.append(f"- {bullet.strip()}")
        else:
            lines += [f"  - {sub.strip()}" for sub in bullet]
    lines += [f"[image: {image.strip()}]" for image in spec.get("images", [])]
    if spec.get("notes"):
        lines += ["", f"Speaker notes (context only, do not show them): {spec['notes'].strip()}"]
    return "\n".join(lines)
