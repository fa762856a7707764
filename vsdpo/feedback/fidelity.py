"""Content fidelity of a render of a synthetic task: the share of what the prompt asked for
that the result holds — the title, each bar's label and value, each card's title, each bullet.

A clean render can still be the wrong picture; this is the measure that catches a policy
which learns a safe style by leaving content out. Text items count when they appear in the
render's text (every element's text, whitespace-normalised), so the check is of what was
drawn, not of what was written. A chart's values are drawn as bar lengths, not text: a value
counts when the program passes it for its label (`axes[0].bar('North', 12)`), read from the code.
Tasks the generator did not make (JSONL corpora) have no items: `None`.
"""

import re

from vsdpo.render.types import RenderResult
from vsdpo.tasks.programs import parse_prompt, split_list
from vsdpo.tasks.task import Task


def prompt_items(task: Task) -> list[tuple[str, str]] | None:
    """`(kind, text)` pairs the prompt asks for: kind is `text`, or `value` for `label=value`."""
    try:
        p = parse_prompt(task.prompt)
    except ValueError:
        return None
    if p.domain != task.domain:
        return None
    items = [("text", p.title)]
    for block in p.blocks:
        if task.domain == "chart":
            for bar in split_list(block):
                items += [("text", bar.split("=")[0]), ("value", bar)]
        elif task.domain == "web":
            items.append(("text", block))
        else:
            items += [("text", b) for b in split_list(block)]
    return [(kind, text) for kind, text in items if text]


def content_fidelity(task: Task, result: RenderResult, code: str | None) -> float | None:
    """The share of `prompt_items` present (0 for a render that failed), or None. Without
    `code` a chart's values, which are read from it, are left out."""
    items = prompt_items(task)
    if items is None:
        return None
    if code is None:
        items = [(kind, text) for kind, text in items if kind == "text"]
    if not result.ok or not items:
        return 0.0 if not result.ok else 1.0
    drawn = "\n".join(_norm(e.text) for e in result.elements if e.text)
    return sum(_present(kind, text, drawn, code) for kind, text in items) / len(items)


def _present(kind: str, text: str, drawn: str, code: str) -> bool:
    if kind == "text":
        return _norm(text) in drawn
    label, value = text.split("=")
    return re.search(rf"""['"]{re.escape(label)}['"]\s*,\s*{re.escape(value)}\b""", code) is not None


def _norm(text: str) -> str:
    return " ".join(text.split())
