"""The unit of blame: which statement(s) of the code a defect's source span points at.

Python (charts): the innermost *simple* AST statement containing the span, all its lines
(`ax.bar(x,\\n  y)` is one statement); for a compound statement (`for`, `with`, `def`, ...)
only its header, never its whole body. HTML (web, slides): the spans the detectors give are
already start tags or CSS declarations, so each span is its own statement. `all_statements`
lists every statement of a program: what the random-credit control draws from.

Offsets are character offsets into the code, end exclusive (as in `vsdpo.render.types`).
"""

import ast
import bisect
import re

from vsdpo.render.source_map import SRC_ATTR, tag_source
from vsdpo.render.types import Span

DOMAINS = ("chart", "web", "slide")


def check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")


class _Offsets:
    """(line, column) as `ast` reports them (1-based line, UTF-8 byte column) → char offset."""

    def __init__(self, code: str):
        self.lines = code.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def __call__(self, lineno: int, col_byte: int) -> int:
        line = self.lines[lineno - 1] if lineno - 1 < len(self.lines) else ""
        col = len(line.encode()[:col_byte].decode(errors="ignore"))
        return self.starts[lineno - 1] + col


def _header_end(code: str, node: ast.stmt, offset: _Offsets) -> int:
    """End of a compound statement's header: just before its first body statement."""
    first = node.body[0]
    lineno = min([first.lineno] + [d.lineno for d in getattr(first, "decorator_list", [])])
    end = offset(lineno, 0) if lineno > node.lineno else offset(first.lineno, first.col_offset)
    return len(code[:end].rstrip())


def python_statements(code: str) -> list[Span]:
    """Spans of every simple statement and every compound header, sorted, disjoint.

    Code that does not parse falls back to one statement per non-empty line.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return _line_statements(code)
    offset = _Offsets(code)
    spans = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.stmt, ast.ExceptHandler, ast.match_case)):
            continue
        if isinstance(node, ast.match_case):  # a case has no position of its own
            start = offset(node.pattern.lineno, node.pattern.col_offset)
        else:
            start = offset(node.lineno, node.col_offset)
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
            end = _header_end(code, node, offset)
        else:
            end = offset(node.end_lineno, node.end_col_offset)
        spans.append((start, end))
    return sorted(spans)


def html_statements(code: str) -> list[Span]:
    """Spans of every start tag and every CSS declaration (inline `style` or `<style>`), sorted;
    an inline declaration lies inside its start tag."""
    source = tag_source(code)
    tags = [(int(a), int(b)) for a, b in re.findall(rf'{SRC_ATTR}="(\d+)-(\d+)"', source.html)]
    declarations = [d.span for decls in source.inline.values() for d in decls]
    declarations += [d.span for rule in source.rules for d in rule.declarations]
    return sorted(set(tags + declarations))


def all_statements(code: str, domain: str) -> list[Span]:
    """Every statement of `code`, the units `blamed_statements` returns."""
    check_domain(domain)
    return python_statements(code) if domain == "chart" else html_statements(code)


def _line_statements(code: str) -> list[Span]:
    spans, start = [], 0
    for line in code.splitlines(keepends=True):
        text = line.rstrip("\r\n")
        if text.strip():
            spans.append((start, start + len(text)))
        start += len(line)
    return spans


def _overlaps(a: Span, b: Span) -> bool:
    """Half-open overlap; an empty span counts as the point at its start."""
    return a[0] < max(b[1], b[0] + 1) and b[0] < max(a[1], a[0] + 1)


def blamed_statements(code: str, spans: list[Span], domain: str,
                      statements: list[Span] | None = None) -> list[Span]:
    """The statements a defect's spans blame, in order, without duplicates.

    `statements` (from `python_statements`) may be passed to parse the code only once.
    A Python span that overlaps no statement (a comment, say) blames itself.
    """
    check_domain(domain)
    if domain != "chart":
        return list(dict.fromkeys(tuple(s) for s in spans))
    statements = python_statements(code) if statements is None else statements
    starts = [s[0] for s in statements]
    out = []
    for span in spans:
        hit = [s for s in statements[:bisect.bisect_right(starts, max(span[1], span[0] + 1))]
               if _overlaps(s, span)]
        out.extend(hit or [tuple(span)])
    return list(dict.fromkeys(out))
