"""Which CSS declarations to blame for a defect on a DOM element.

A defect always blames the element's start tag; for the properties that cause it (`width`
for overflow, `overflow` for clipping, `color` for contrast) it also blames the declaration
that wins for that element: an inline `style` declaration first, else the last matching
`<style>` rule declaring it (source order; specificity is not modelled).
"""

from vsdpo.render.probe import Probe
from vsdpo.render.source_map import SourceMap
from vsdpo.render.types import Span

# A property family names every property that sets it (longhands and shorthands).
FAMILIES = {
    "width": ("width", "min-width", "max-width"),
    "height": ("height", "min-height", "max-height"),
    "overflow": ("overflow", "overflow-x", "overflow-y", "text-overflow"),
    "white-space": ("white-space", "word-break", "overflow-wrap", "word-wrap"),
    "font-size": ("font-size", "font", "line-height"),
    "color": ("color",),
    "background": ("background", "background-color"),
    "position": ("position", "left", "right", "top", "bottom", "transform", "text-indent"),
    "margin": ("margin", "margin-left", "margin-right", "margin-top", "margin-bottom",
               "padding", "padding-left", "padding-top", "float"),
}


class Blamer:
    """Maps (element, property families) to code spans."""

    def __init__(self, probe: Probe, smap: SourceMap):
        self.probe, self.smap = probe, smap
        self.rules_of: dict[int, list[int]] = {}
        for r, elems in enumerate(probe.matches):
            for i in elems:
                self.rules_of.setdefault(i, []).append(r)

    def spans(self, i: int, families: tuple[str, ...] = (), with_tag: bool = True) -> list[Span]:
        """Element i's start tag plus its winning declarations of the given families."""
        tag = self.probe.span[i]
        out = [tag] if tag and with_tag else []
        props = {p for f in families for p in FAMILIES[f]}
        inline = self.smap.inline.get(tag, []) if tag else []
        winners = {d.prop: d.span for d in inline if d.prop in props}
        for r in reversed(self.rules_of.get(i, [])):
            for d in self.probe.rules[r].declarations:
                if d.prop in props and d.prop not in winners:
                    winners[d.prop] = d.span
        return out + sorted(winners.values())

    def union(self, *parts: list[Span]) -> list[Span]:
        """Distinct spans of several blames, in code order."""
        return sorted({s for part in parts for s in part})
