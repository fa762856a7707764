"""Which CSS declarations to blame for a defect: the one that decides it, not only the symptom.

A defect blames the element that shows it (its start tag) plus, per property behind it, the
declaration that decides it: the element's own cascade winner (inline `style`, matched
`<style>` rules and utility class tokens: `!important`, inline, specificity, source order),
else the nearest ancestor's for an inherited property, the constraining ancestor's for a
size, the positioned ancestor's for a place. Only that one is blamed, never every ancestor,
so the credit weight is not spread thin. The rules: docs/render.md, "How blame reaches the
cause".
"""

from vsdpo.render.probe import Probe
from vsdpo.render.source_map import SourceMap
from vsdpo.render.types import Span
from vsdpo.render.utility_classes import utility_longhands

_SIDES = ("top", "right", "bottom", "left")
SHORTHANDS = {  # a declared property → the longhands it sets
    "font": ("font-size", "line-height", "font-family"),
    "overflow": ("overflow-x", "overflow-y"),
    "background": ("background-color",),
    "margin": tuple(f"margin-{s}" for s in _SIDES),
    "padding": tuple(f"padding-{s}" for s in _SIDES),
    "inset": _SIDES,
    "text-wrap": ("white-space",),  # `text-wrap: nowrap` is `white-space: nowrap`'s wrap half
    "text-wrap-mode": ("white-space",),
}
INHERITED = {"font-size", "line-height", "font-family", "white-space", "color"}
OFFSETS = ("left", "right", "top", "bottom", "transform", "translate", "text-indent")
# A property family names the longhands a detector asks about.
FAMILIES = {
    "width": ("width", "max-width"),
    "height": ("height", "max-height"),
    "overflow-x": ("overflow-x",),
    "overflow-y": ("overflow-y",),
    "white-space": ("white-space",),
    "font-size": ("font-size",),
    "line-height": ("line-height",),
    "color": ("color",),
    "background": ("background-color",),
    "position": ("position",) + OFFSETS,
    "margin": tuple(f"margin-{s}" for s in _SIDES) + ("padding-left", "padding-top", "float"),
}
NO_WRAP = {"nowrap", "pre"}  # computed white-space values that keep text on one line
FLUID = {"auto", "none", "100%", "fit-content", "min-content", "max-content", "inherit",
         "unset", "initial"}  # sizes taken from the parent or the content: not a constraint
FLEX_GRID = {"flex", "inline-flex", "grid", "inline-grid"}
PAGE = {"html", "body"}
MAX_WALK = 16  # ancestors searched for a size or a place


class Blamer:
    """Maps (element, property families) to code spans; each element's winners are resolved
    once, lazily, and inherited look-ups are memoised along the path they walk."""

    def __init__(self, probe: Probe, smap: SourceMap):
        self.probe, self.smap = probe, smap
        self.rules_of: dict[int, list[int]] = {}
        for r, elems in enumerate(probe.matches):
            for i in elems:
                self.rules_of.setdefault(i, []).append(r)
        self._own: dict[int, dict[str, tuple[tuple, Span, str]]] = {}
        self._source: dict[tuple[int, str], Span | None] = {}

    def declared(self, i: int) -> dict[str, tuple[tuple, Span, str]]:
        """Element i's own winning declaration per longhand: `(cascade rank, span, value)`."""
        own = self._own.get(i)
        if own is not None:
            return own
        own = {}

        def offer(longhands, rank, span, value):
            for lh in longhands:
                if lh not in own or rank > own[lh][0]:
                    own[lh] = (rank, span, value)

        tag, p = self.probe.span[i], self.probe.parent[i]
        if p >= 0 and tag == self.probe.span[p]:
            tag = None  # an implicit element (body, tbody): the span is its ancestor's tag
        for k, (token, span) in enumerate(self.smap.classes.get(tag, ())):
            longhands, value, important = utility_longhands(token)
            offer(longhands, (important, 0, (0, 1, 0), -1, k), span, value)
        for r in self.rules_of.get(i, ()):
            rule = self.probe.rules[r]
            for k, d in enumerate(rule.declarations):
                offer(SHORTHANDS.get(d.prop, (d.prop,)), (d.important, 0, rule.specificity, r, k),
                      d.span, d.value)
        for k, d in enumerate(self.smap.inline.get(tag, ())):
            offer(SHORTHANDS.get(d.prop, (d.prop,)), (d.important, 1, (0, 0, 0), 0, k),
                  d.span, d.value)
        self._own[i] = own
        return own

    def _inherited(self, i: int, longhand: str) -> Span | None:
        """The declaration element i's computed value of an inherited longhand comes from."""
        path, k, found = [], i, None
        while k >= 0:
            if (k, longhand) in self._source:
                found = self._source[k, longhand]
                break
            path.append(k)
            hit = self.declared(k).get(longhand)
            if hit and hit[2].lower() not in ("inherit", "unset"):
                found = hit[1]
                break
            k = self.probe.parent[k]
        for k in path:
            self._source[k, longhand] = found
        return found

    def spans(self, i: int, families: tuple[str, ...] = (), with_tag: bool = True) -> list[Span]:
        """Element i's start tag plus the deciding declaration of each longhand of the
        families: its own winner, or for an inherited longhand the nearest ancestor's. Text
        that wraps blames no `white-space`."""
        tag = self.probe.span[i]
        out = {tag} if tag and with_tag else set()
        for lh in {lh for f in families for lh in FAMILIES[f]}:
            if lh == "white-space" and self.probe.overflow[i][2] not in NO_WRAP:
                continue
            if lh in INHERITED:
                span = self._inherited(i, lh)
            else:
                hit = self.declared(i).get(lh)
                span = hit and hit[1]
            if span:
                out.add(span)
        return sorted(out)

    def constraint(self, i: int, axis: str) -> list[Span]:
        """The declarations that fix element i's size on `axis` ("x" or "y"): its own fixed
        width/max-width (height/max-height), else its nearest ancestor's that it takes the
        size from. An auto height grows with the content, so a height comes only through a
        flex or grid container or a percentage (`h-full`)."""
        longhands = FAMILIES["width" if axis == "x" else "height"]
        k = i
        for _ in range(MAX_WALK):
            own = self.declared(k)
            fixed = [own[lh][1] for lh in longhands
                     if lh in own and own[lh][2].lower() not in FLUID]
            if fixed:
                return sorted(fixed)
            p = self.probe.parent[k]
            if p < 0 or self.probe.tag[p] in PAGE:
                return []
            if axis == "y" and self.probe.display[p] not in FLEX_GRID and not any(
                    lh in own for lh in longhands):
                return []
            k = p
        return []

    def placement(self, i: int) -> list[Span]:
        """The offsets that place element i: its own, else its nearest ancestor's that
        declares any (`left`, `top`, `transform`, ...); a box in flow moves with it."""
        k = i
        for _ in range(MAX_WALK):
            if k < 0 or self.probe.tag[k] in PAGE:
                return []
            own = self.declared(k)
            found = sorted(own[lh][1] for lh in OFFSETS
                           if lh in own and own[lh][2].lower() not in ("auto", "none"))
            if found:
                return found
            k = self.probe.parent[k]
        return []

    def union(self, *parts: list[Span]) -> list[Span]:
        """Distinct spans of several blames, in code order."""
        return sorted({s for part in parts for s in part})
