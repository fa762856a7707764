"""Tag HTML with source offsets so every DOM node maps back to the code that made it.

Before rendering, each start tag gets a `data-vsdpo-src="start-end"` attribute: the character
span of that start tag in the original code. Elements the browser invents (html, head, body,
tbody) carry no tag and inherit their nearest tagged ancestor's span in the probe.

CSS declarations are located too, so a defect can blame the `width: 180px` or the
`overflow: hidden` that caused it, not only the element: inline `style` attributes are
parsed per element, `<style>` blocks into rules (selector + declarations) that the DOM probe
matches against elements in the browser.
"""

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from vsdpo.render.types import Span

SRC_ATTR = "data-vsdpo-src"
_STYLE_ATTR = re.compile(r"""\sstyle\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_COMMENT = re.compile(r"/\*.*?\*/", re.S)


@dataclass
class Declaration:
    """One `property: value` and where it sits in the code."""

    prop: str
    value: str
    span: Span


@dataclass
class Rule:
    """One `<style>` rule: a selector list and its declarations, in source order."""

    selector: str
    declarations: list[Declaration]


@dataclass
class SourceMap:
    """The tagged HTML and what the detectors need to blame code."""

    html: str
    inline: dict[Span, list[Declaration]] = field(default_factory=dict)  # start tag → style
    rules: list[Rule] = field(default_factory=list)


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
                out.append(Declaration(prop.strip().lower(), value.strip(), span))
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
                rules.append(Rule(selector, decls))
        i = close + 1


def _matching_brace(css: str, open_: int) -> int:
    depth = 0
    for j in range(open_, len(css)):
        depth += {"{": 1, "}": -1}.get(css[j], 0)
        if depth == 0:
            return j
    return len(css)


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
        m = _STYLE_ATTR.search(raw)
        if m:
            group = next(g for g in (1, 2, 3) if m.group(g) is not None)
            self.inline[span] = parse_declarations(m.group(group), start + m.start(group))
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
    return SourceMap("".join(pieces), tagger.inline, rules)


def parse_span(value: str | None) -> Span | None:
    """`"12-40"` → `(12, 40)`; None for an untagged element."""
    if not value:
        return None
    a, _, b = value.partition("-")
    return int(a), int(b)
