"""The program inside a completion: instruct models wrap code in Markdown fences and prose.

The code is the body of the first fenced block (```` ```python ````, ```` ```html ````, a bare
```` ``` ````; a fence is a line of three or more backticks, optionally indented, with an
info string), or the whole text when there is none. A block cut off by `max_new_tokens`
(no closing fence) runs to the end of the text. The code is always one contiguous slice
`text[start:end]`, so the tokens' character offsets into `text` map into it by a shift;
tokens outside the slice (fence lines, prose) get an empty span and thus no blame.
"""

import re

from vsdpo.render.types import Span

_OPEN = re.compile(r"^[ \t]*(`{3,})[^`\n]*(?:\n|\Z)", re.MULTILINE)


def code_span(text: str) -> Span:
    """`(start, end)` of the code in `text`: the first fenced block's body, else all of it."""
    opening = _OPEN.search(text)
    if opening is None:
        return 0, len(text)
    start = opening.end()
    fence = opening.group(1)  # closed by a line of at least as many backticks
    closing = re.compile(rf"^[ \t]*{fence}`*[ \t\r]*$", re.MULTILINE).search(text, start)
    return start, closing.start() if closing else len(text)


def extract_code(text: str) -> tuple[str, Span]:
    """The code of a completion and where it sits in `text`."""
    start, end = code_span(text)
    return text[start:end], (start, end)


def offsets_into_code(token_offsets: list[tuple[int, int]], span: Span) -> list[tuple[int, int]]:
    """Token offsets into `text` → offsets into `text[span[0]:span[1]]`: each token is clipped
    to the code, so one straddling the border keeps its inner part and one wholly outside
    gets an empty span at the nearer end of the code (empty spans are never blamed)."""
    start, end = span
    mapped = []
    for s, e in token_offsets:
        s = min(max(s, start), end)
        mapped.append((s - start, max(min(e, end), s) - start))
    return mapped
