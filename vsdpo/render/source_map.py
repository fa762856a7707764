"""Tag HTML with source offsets so every DOM node maps back to the code that made it.

Before rendering, each start tag gets a `data-vsdpo-src="start-end"` attribute: the character
span of that start tag in the original code. Elements the browser invents (html, head, body,
tbody) carry no tag and inherit their nearest tagged ancestor's span in the probe.

CSS declarations are located too, so a defect can blame the `width: 180px` or the
`overflow: hidden` that caused it, not only the element: inline `style` attributes are
parsed per element, `<style>` blocks into rules (one complex selector, its specificity, its
declarations) that the DOM probe matches against elements in the browser, and each start
tag's `class` tokens are kept with their spans (utility classes: `text-4xl`, `fs-1`).
"""

import re
from dataclasses import dataclass, field
from functools import cached_property
from html.parser import HTMLParser

from vsdpo.render.types import Span

SRC_ATTR = "data-vsdpo-src"
_STYLE_ATTR = re.compile(r"""\sstyle\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_CLASS_ATTR = re.compile(r"""\sclass\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_TOKEN = re.compile(r"\S+")
_IMPORTANT = re.compile(r"\s*!\s*important\s*$", re.I)
_IDENT = re.compile(r"-?(?:[_a-zA-Z]|\\.)(?:[\w-]|\\.)*")  # `\:` escapes (`.md\:flex`)
_PSEUDO_ELEMENTS = {"before", "after", "first-line", "first-letter"}  # also valid with one colon


@dataclass
class Declaration:
    """One `property: value` and where it sits in the code."""

    prop: str
    value: str  # without `!important`
    span: Span
    important: bool = False


@dataclass
class Rule:
    """One `<style>` rule for one complex selector (a selector list gives one per selector,
    sharing the declarations), in source order."""

    selector: str
    declarations: list[Declaration]

    @cached_property
    def specificity(self) -> tuple[int, int, int]:
        """(ids, classes/attributes/pseudo-classes, types); computed when blame needs it."""
        return specificity(self.selector)


@dataclass
class SourceMap:
    """The tagged HTML and what the detectors need to blame code."""

    html: str
    inline: dict[Span, list[Declaration]] = field(default_factory=dict)  # start tag → style
    rules: list[Rule] = field(default_factory=list)
    classes: dict[Span, list[tuple[str, Span]]] = field(default_factory=dict)  # tag → tokens


def parse_declarations(text: str, offset: int) -> list[Declaration]:
    """Split a declaration block (`a: b; c: d`) into declarations with absolute spans."""
    text = _COMMENT.sub(lambda m: " " * len(m.group()), text)
    out, start = [], 0
    for part in text.split(";"):
        end = start + len(part)
        if ":" in part:
            prop, value = part.split(":", 1)
            lead = len(part) - len(part.lstrip())
            span = (offset + start + lead, offset + start + len(part.rstrip()))
            if prop.strip():
                important = "!" in value and _IMPORTANT.search(value)
                value = value[:important.start()] if important else value
                out.append(Declaration(prop.strip().lower(), value.strip(), span, bool(important)))
        start = end + 1
    return out


def parse_stylesheet(css: str, offset: int) -> list[Rule]:
    """Rules of a stylesheet, descending into `@media`/`@supports` blocks."""
    css = _COMMENT.sub(lambda m: " " * len(m.group()), css)
    rules, i = [], 0
    while True:
        open_ = css.find("{", i)
        if open_ < 0:
            return rules
        selector = css[i:open_].replace("}", " ").strip()
        if selector.startswith("@"):
            if re.match(r"@(media|supports|layer|container)\b", selector):
                i = open_ + 1  # nested rules follow; the closing brace is skipped as text
                continue
            close = _matching_brace(css, open_)
        else:
            close = css.find("}", open_)
            close = len(css) if close < 0 else close
            decls = parse_declarations(css[open_ + 1:close], offset + open_ + 1)
            if selector and decls:
                rules += [Rule(s, decls) for s in split_selectors(selector)]
        i = close + 1


def _matching_brace(css: str, open_: int, pair: str = "{}") -> int:
    depth = 0
    for j in range(open_, len(css)):
        depth += {pair[0]: 1, pair[1]: -1}.get(css[j], 0)
        if depth == 0:
            return j
    return len(css)


def split_selectors(selectors: str) -> list[str]:
    """A selector list's complex selectors (commas inside `:is(...)` or `[...]` stay)."""
    if "," not in selectors:
        return [selectors]
    if "(" not in selectors and "[" not in selectors:
        return [s.strip() for s in selectors.split(",") if s.strip()]
    out, depth, start = [], 0, 0
    for j, ch in enumerate(selectors):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(selectors[start:j])
            start = j + 1
    out.append(selectors[start:])
    return [s.strip() for s in out if s.strip()]


def specificity(selector: str) -> tuple[int, int, int]:
    """Selectors Level 4 specificity of one complex selector: `:where()` counts nothing,
    `:is()`/`:not()`/`:has()` their most specific argument, other pseudo-classes one class."""
    a = b = c = 0
    i = 0
    while i < len(selector):
        ch = selector[i]
        if ch == "[":
            b, i = b + 1, _matching_brace(selector, i, "[]") + 1
        elif ch in "#.:":
            double = selector.startswith("::", i)
            m = _IDENT.match(selector, i + 1 + double)
            name, end = (m.group().lower(), m.end()) if m else ("", i + 1 + double)
            if ch == "#":
                a += 1
            elif ch == ":" and (double or name in _PSEUDO_ELEMENTS):
                c += 1
            elif ch == "." or name not in ("is", "not", "has", "where"):
                b += 1
            if end < len(selector) and selector[end] == "(":  # a functional pseudo-class
                close = _matching_brace(selector, end, "()")
                if name in ("is", "not", "has"):
                    arg = max(map(specificity, split_selectors(selector[end + 1:close])),
                              default=(0, 0, 0))
                    a, b, c = a + arg[0], b + arg[1], c + arg[2]
                end = close + 1
            i = end
        elif m := _IDENT.match(selector, i):
            c, i = c + 1, m.end()
        else:
            i += 1  # `*`, combinators, white space
    return a, b, c


def _attribute(pattern: re.Pattern, raw: str) -> tuple[str, int] | None:
    """An attribute's value in a start tag's text and its offset there (quoted or not)."""
    m = pattern.search(raw)
    return (m.group(m.lastindex), m.start(m.lastindex)) if m else None


class _Enough(Exception):
    """Raised by the parser once `max_tags` start tags are tagged."""


class _Tagger(HTMLParser):
    """Collects each start tag's span and the insertion point for the source attribute."""

    def __init__(self, code: str, max_tags: int):
        super().__init__(convert_charrefs=False)
        self.max_tags = max_tags
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", code)]
        self.inserts: list[tuple[int, str]] = []
        self.inline: dict[Span, list[Declaration]] = {}
        self.classes: dict[Span, list[tuple[str, Span]]] = {}
        self.styles: list[tuple[str, int]] = []
        self._in_style = False

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def handle_starttag(self, tag, attrs):
        if len(self.inserts) >= self.max_tags:
            raise _Enough
        start = self._offset()
        raw = self.get_starttag_text() or ""
        span = (start, start + len(raw))
        self.inserts.append((start + 1 + len(tag), f' {SRC_ATTR}="{span[0]}-{span[1]}"'))
        if style := _attribute(_STYLE_ATTR, raw):
            self.inline[span] = parse_declarations(style[0], start + style[1])
        if classes := _attribute(_CLASS_ATTR, raw):
            at = start + classes[1]
            self.classes[span] = [(t.group(), (at + t.start(), at + t.end()))
                                  for t in _TOKEN.finditer(classes[0])]
        self._in_style = tag == "style"

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append((data, self._offset()))


def tag_source(code: str, max_tags: int = 1 << 30) -> SourceMap:
    """Insert `data-vsdpo-src` into the first `max_tags` start tags; collect their CSS.

    Tags past the cap stay untagged (the probe walks no further than its node cap anyway),
    which bounds the parse of a hostile 100k-node page.
    """
    tagger = _Tagger(code, max_tags)
    try:
        tagger.feed(code)
        tagger.close()
    except _Enough:
        pass
    pieces, last = [], 0
    for pos, attr in tagger.inserts:
        pieces += [code[last:pos], attr]
        last = pos
    pieces.append(code[last:])
    rules = [r for css, off in tagger.styles for r in parse_stylesheet(css, off)]
    return SourceMap("".join(pieces), tagger.inline, rules, tagger.classes)


def parse_span(value: str | None) -> Span | None:
    """`"12-40"` → `(12, 40)`; None for an untagged element."""
    if not value:
        return None
    a, _, b = value.partition("-")
    return int(a), int(b)
