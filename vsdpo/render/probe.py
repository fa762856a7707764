"""The DOM probe: one `Runtime.evaluate` that measures every rendered element.

It runs in an isolated JavaScript world of its own (`probe_world.py`): with JavaScript
enabled, a page script can neither fake a measurement to hide a defect nor leave globals
behind for the next artifact's probe.

`dom_probe.js` walks the DOM once (bounded by `max_nodes`) and returns parallel arrays: box,
source span, parent, direct text and its line boxes, scroll/client sizes, overflow, font,
colour, effective background. `Probe` holds them in Python; `to_elements` turns them into
the contract's `Element`s, with implicit elements inheriting their nearest tagged ancestor's
source span.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from vsdpo.render.probe_world import evaluate_isolated
from vsdpo.render.source_map import Rule, SourceMap, parse_span
from vsdpo.render.types import BBox, Element, Span

PROBE_JS = (Path(__file__).parent / "dom_probe.js").read_text()

# Rules are matched in the browser only when they declare something a detector may blame.
BLAMEABLE = ("width", "height", "min-", "max-", "overflow", "white-space", "font", "color",
             "background", "position", "left", "right", "top", "bottom", "margin", "padding",
             "text-indent", "line-height", "word-", "transform", "display", "float", "flex")


@dataclass
class Probe:
    """What the probe measured; index i is the i-th element in document order."""

    tag: list[str]
    box: list[BBox]
    span: list[Span | None]
    parent: list[int]
    text: list[str]  # whitespace collapsed, cut at 200 characters
    full_text: dict[int, str]  # the uncut text of the elements whose text was cut
    text_rects: list[list[BBox]]
    scroll: list[tuple[int, int, int, int]]  # scrollWidth, scrollHeight, clientWidth, clientHeight
    overflow: list[tuple[str, str, str]]  # overflow-x, overflow-y, white-space
    font: list[tuple[float, int]]  # size px, weight
    color: list[tuple[float, float, float, float] | None]  # RGBA, None when not rgb()
    background: list[tuple[int, int, int]]  # effective, blended over ancestors (white root)
    background_image: list[bool]  # own or inherited through transparency: colour unknown
    visible: list[bool]
    display: list[str]
    fixed: list[bool]  # position: fixed, itself or an ancestor (overlays: cookie banners, bars)
    rules: list[Rule]  # the rules passed in, parallel to `matches`
    matches: list[list[int]]  # element indices matched by each rule
    page: tuple[int, int, int, int]  # scrollWidth, scrollHeight, innerWidth, innerHeight
    truncated: bool

    def __len__(self) -> int:
        return len(self.tag)

    def is_ancestor(self, a: int, b: int) -> bool:
        """True when element a is a strict ancestor of element b (a < b in document order)."""
        p = self.parent[b]
        while p > a:
            p = self.parent[p]
        return p == a


async def run_probe(cdp, smap: SourceMap, max_nodes: int) -> Probe:
    """Measure the page in one round trip (in the probe's isolated world).

    A raw CDP `Runtime.evaluate` with the arguments inlined as JSON: Playwright's `evaluate`
    would serialise and validate every selector on the way (about 1 ms of Python per page).
    """
    rules = [r for r in smap.rules if any(d.prop.startswith(BLAMEABLE) for d in r.declarations)]
    args = json.dumps([max_nodes, [r.selector for r in rules]])
    reply = await evaluate_isolated(cdp, f"({PROBE_JS})({args})")
    if "exceptionDetails" in reply:  # e.g. the walk ran out of stack or memory
        details = reply["exceptionDetails"]
        why = details.get("exception", {}).get("description") or details.get("text")
        raise RuntimeError(f"the DOM probe failed: {why}")
    raw = json.loads(reply["result"]["value"])
    spans = [parse_span(s) for s in raw["src"]]
    for i, p in enumerate(raw["parent"]):
        if spans[i] is None and p >= 0:
            spans[i] = spans[p]  # implicit element: inherit the nearest tagged ancestor
    return Probe(
        tag=raw["tag"], box=[tuple(b) for b in raw["box"]], span=spans, parent=raw["parent"],
        text=raw["text"], full_text={int(i): t for i, t in raw["long"].items()},
        text_rects=[[tuple(r) for r in rs] for rs in raw["trects"]],
        scroll=[tuple(s) for s in raw["scroll"]], overflow=[tuple(o) for o in raw["overflow"]],
        font=[tuple(f) for f in raw["font"]],
        color=[tuple(c) if c else None for c in raw["color"]],
        background=[tuple(b) for b in raw["bg"]], background_image=raw["bgimg"],
        visible=raw["visible"], display=raw["display"], fixed=raw["fixed"], rules=rules,
        matches=raw["matches"],
        page=tuple(raw["page"]), truncated=raw["truncated"])


def to_elements(probe: Probe) -> list[Element]:
    """The contract's view of the probe: one `Element` per measured DOM node."""
    return [
        Element(kind=probe.tag[i], bbox=probe.box[i], span=probe.span[i], text=probe.text[i],
                full_text=probe.full_text.get(i, probe.text[i]), text_rects=probe.text_rects[i],
                parent=probe.parent[i] if probe.parent[i] >= 0 else None,
                color=tuple(round(c) for c in probe.color[i][:3]) if probe.color[i] else None,
                background=probe.background[i], font_size=probe.font[i][0])
        for i in range(len(probe))
    ]
