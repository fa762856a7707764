"""Design2Code pages → web tasks whose prompt outlines the page in text.

A text-only policy sees no screenshot, so the prompt carries an outline of the reference
page (an image-input policy gets `IMAGE_INSTRUCTION` and the screenshot instead), read with
the standard library's HTML parser (tolerant of the unclosed tags real pages have): headings,
paragraphs (shortened), list items, links and buttons, form fields, tables, images as
`[image: alt]`, table rows as `cell | cell`, and layout as indented sections:
landmarks (header, navigation, sidebar, footer) and, from the page's CSS and inline styles,
flex/grid containers ("side by side") and floated or column-named boxes ("Column").
Scripts are skipped; the reference HTML stays in the task for the similarity reward.
"""

import re
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
SKIP = {"script", "style", "noscript", "template", "svg", "head", "select", "iframe", "canvas"}
# Blocks whose text is prose: links and buttons inside them stay inline.
PROSE = {"p": "Paragraph", "li": "-", "dt": "Term", "dd": "-", "blockquote": "Quote",
         "pre": "Code block", "td": "Cell", "th": "Header cell", "figcaption": "Caption",
         "caption": "Caption", "label": "Label",
         **{f"h{k}": f"Heading {k}" for k in range(1, 7)}}
CONTAINERS = {"div", "section", "article", "main", "header", "footer", "nav", "aside", "form",
              "ul", "ol", "dl", "table", "tr", "tbody", "thead", "body", "html", "figure",
              "center", "fieldset", "details", "summary"}
CONTROLS = {"a": "Link", "button": "Button"}
LANDMARKS = {"header": "Header", "nav": "Navigation bar", "main": "Main content",
             "aside": "Sidebar", "footer": "Footer", "form": "Form", "section": "Section",
             "ul": "List", "ol": "Numbered list", "table": "Table", "article": "Article"}
COLUMN_CLASS = re.compile(r"(^|[-_ ])(col|column|columns|sidebar|grid)([-_ ]|$)", re.I)
CSS_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
CSS_CLASS = re.compile(r"\.([\w-]+)\s*$")
SIDE_BY_SIDE = re.compile(r"display\s*:\s*(inline-)?(flex|grid)\b")
STACKED_FLEX = re.compile(r"flex-direction\s*:\s*column")
FLOATS = re.compile(r"float\s*:\s*(left|right)|display\s*:\s*table-cell")
FULL_WIDTH = re.compile(r"(^|[;\s])width\s*:\s*100%")  # a full-width float stacks, not a column
MAX_WORDS = 30
MAX_OUTLINE_CHARS = 4000  # ~1000 tokens: the prompt must leave room for the page
MAX_LINE_CHARS = 240

INSTRUCTION = (
    "Write one complete, self-contained HTML file (inline CSS, no JavaScript, no external "
    "resources) for a web page 1280 pixels wide that reproduces the page outlined below: "
    "the same texts in the same order and a similar layout. Draw each image as a grey box "
    "of a plausible size. Keep every text readable: nothing overlapping, cut off or "
    "overflowing its box. Reply with the HTML only: no Markdown fence, no explanation."
)
# Design2Code's task, in our words; the screenshot comes as the task's reference image.
IMAGE_INSTRUCTION = (
    "Write one complete, self-contained HTML file (inline CSS, no JavaScript, no external "
    "resources) that reproduces the web page in the screenshot, 1280 pixels wide: the same "
    "texts in the same order, the same layout and colours. Draw each image as a grey box of "
    "the same size. Keep every text readable: nothing overlapping, cut off or overflowing "
    "its box. Reply with the HTML only: no Markdown fence, no explanation."
)


def web_prompt(html: str) -> str:
    """The instruction plus a text outline of the page `html`."""
    outliner = _Outliner()
    outliner.feed(html)
    outliner.close()
    lines, used = outliner.finish(), 0
    for k, line in enumerate(lines):
        used += len(line) + 1
        if used > MAX_OUTLINE_CHARS:
            lines = lines[:k] + [f"... ({len(lines) - k} more blocks omitted)"]
            break
    head = [INSTRUCTION, ""]
    if outliner.title:
        head.append(f"Page title: {shorten(outliner.title)}")
    return "\n".join(head + ["Page outline (indentation = nesting):"] + lines)


def shorten(text: str, max_words: int = MAX_WORDS) -> str:
    words = text.split()
    short = " ".join(words[:max_words]) + (" ..." if len(words) > max_words else "")
    return short[:MAX_LINE_CHARS]


class _Outliner(HTMLParser):
    """Builds indented outline lines. Text collects until the enclosing block (a prose
    block, a container, or a standalone link/button) closes or a nested block opens, so
    it is never attributed to the wrong block; inline tags do not split it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # open blocks: (tag, has a section label)
        self.text: list[str] = []
        self.skip: tuple[str, int] | None = None       # (skipped tag, nesting depth)
        self.title = ""
        self.in_title = self.in_style = False
        self.css = ""                                  # <style> text, read before <body>
        self.layout: dict[str, set[str]] = {}          # class → {"row", "column"}
        self.row = 0                                   # <tr> counter: cells of one row join
        self.row_line = (-1, -1)                       # (row, index of its outline line)

    def handle_starttag(self, tag, attrs):
        self.in_title |= tag == "title"
        self.in_style |= tag == "style"
        if self.skip:
            if tag == self.skip[0]:
                self.skip = (tag, self.skip[1] + 1)
            return
        if tag == "tr":
            self.row += 1
        if tag in SKIP:
            self.skip = (tag, 1)
        elif tag in VOID:
            self._void(tag, {k: v or "" for k, v in attrs})
        elif self._is_block(tag):
            if tag in PROSE and tag in (t for t, _ in self.stack[-1:]):
                self._close_top()  # an implied end: <li>a<li>b, <p>a<p>b
            self._flush()
            label = self._section_label(tag, {k: v or "" for k, v in attrs})
            if label:
                self.lines.append(self._indent(label + ":"))
            self.stack.append((tag, bool(label)))

    def handle_endtag(self, tag):
        self.in_title &= tag != "title"
        if tag == "style" and self.in_style:
            self.in_style, self.layout = False, _css_layout(self.css)
        if self.skip:
            if tag == self.skip[0]:
                depth = self.skip[1] - 1
                self.skip = (tag, depth) if depth else None
            return
        if tag in (t for t, _ in self.stack):
            while self._close_top() != tag:
                pass

    def handle_data(self, data):
        if self.in_title:
            self.title += data
        elif self.in_style:
            self.css += data
        elif not self.skip and data.strip():
            self.text.append(data)

    def finish(self) -> list[str]:
        while self.stack:
            self._close_top()
        self._flush()
        return self.lines

    def _is_block(self, tag: str) -> bool:
        if tag in CONTROLS:  # a link or button is its own block outside prose
            return not any(t in PROSE or t in CONTROLS for t, _ in self.stack)
        return tag in PROSE or tag in CONTAINERS

    def _close_top(self) -> str:
        self._flush()
        tag, labelled = self.stack.pop()
        if labelled and self.lines[-1].endswith(":") and self.lines[-1] == self._indent(
                self.lines[-1].strip()):
            self.lines.pop()  # an empty section (a spacer table, an empty list)
        return tag

    def _flush(self):
        text = " ".join(" ".join(self.text).split())
        self.text = []
        if not text:
            return
        tag = self.stack[-1][0] if self.stack else "div"
        if tag in ("td", "th"):
            if self.row_line == (self.row, len(self.lines) - 1):
                self.lines[-1] += f" | {shorten(text)}"
            else:
                self.lines.append(self._indent(f"Row: {shorten(text)}"))
                self.row_line = (self.row, len(self.lines) - 1)
            return
        kind = PROSE.get(tag) or CONTROLS.get(tag) or "Text"
        self.lines.append(self._indent(f"{kind} {shorten(text)}" if kind == "-" else
                                       f"{kind}: {shorten(text)}"))

    def _void(self, tag: str, attrs: dict[str, str]):
        if tag == "img":
            self._flush()
            alt = shorten(attrs.get("alt", "").strip()) or "no description"
            self.lines.append(self._indent(f"[image: {alt}]"))
        elif tag == "input" and attrs.get("type", "text") not in ("hidden", "checkbox", "radio"):
            self._flush()
            kind = attrs.get("type", "text")
            hint = attrs.get("value") or attrs.get("placeholder") or attrs.get("name", "")
            field = "Button" if kind in ("submit", "button", "reset") else f"Input field ({kind})"
            self.lines.append(self._indent(f"{field}: {shorten(hint)}" if hint else field))
        elif tag == "hr":
            self._flush()
            self.lines.append(self._indent("Horizontal rule"))

    def _section_label(self, tag: str, attrs: dict[str, str]) -> str | None:
        """A landmark or a layout hint: columns side by side (flex/grid), a column (float,
        table cell, or a column-like class name)."""
        layout = self._layout(attrs)
        if tag in LANDMARKS:
            return LANDMARKS[tag] + (" (items side by side)" if "row" in layout else "")
        if tag == "table" or tag not in CONTAINERS:
            return None
        names = attrs.get("class", "") + " " + attrs.get("id", "")
        if "row" in layout:
            return "Columns side by side"
        if "column" in layout or tag == "div" and COLUMN_CLASS.search(names):
            return "Sidebar" if "sidebar" in names.lower() else "Column"
        return None

    def _layout(self, attrs: dict[str, str]) -> set[str]:
        found = set()
        for name in attrs.get("class", "").split():
            found |= self.layout.get(name, set())
        style = attrs.get("style", "")
        return found | _box_layout(style)

    def _indent(self, line: str) -> str:
        depth = sum(1 for _, label in self.stack if label)
        return "  " * depth + line


def _css_layout(css: str) -> dict[str, set[str]]:
    """Classes whose rules lay children side by side (`row`) or float a box (`column`);
    rules inside media queries count too (the page is rendered at desktop width)."""
    layout: dict[str, set[str]] = {}
    for selectors, body in CSS_RULE.findall(css):
        kinds = _box_layout(body)
        for selector in selectors.split(",") if kinds else ():
            match = CSS_CLASS.search(selector.strip())
            if match:
                layout.setdefault(match[1], set()).update(kinds)
    return layout


def _box_layout(declarations: str) -> set[str]:
    row = SIDE_BY_SIDE.search(declarations) and not STACKED_FLEX.search(declarations)
    kinds = {"row"} if row else set()
    if FLOATS.search(declarations) and not FULL_WIDTH.search(declarations):
        kinds.add("column")
    return kinds
