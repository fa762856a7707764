"""Programs for the synthetic tasks: three independent blocks, each with its own style choice.

Every artifact holds three blocks (a chart's panels, a page's cards, a slide's columns). Each
block carries one style statement that decides whether *that* block shows a defect: a *prone*
style is fine on a safe block and breaks on a risky one, a *robust* style is clean on both.
A program is a fixed template filled from the prompt, so a tiny model can write it token by
token (one `bar` call per bar: a label and its value sit on one line).

| domain | block | the style statement | prone | robust |
|---|---|---|---|---|
| chart | a panel of bars | `axes[k].tick_params(axis='x', labelrotation=R)` | `flat`: R = 0 | `rotate`: R = 90 |
| web | a 240 px card (stacked) | a declaration on the card's `<div>` | `nowrap`: `white-space:nowrap`; `fixed`: `height:40px;overflow:hidden` | `wrap`: none |
| slide | a bullet column | `font-size` on the column's `<ul>` | `large`: 48px | `small`: 24px |

Because the blocks' choices are independent, a program's sequence-level reward cannot say
which block failed; the render's trace can (`block_spans`, `style_spans` find them).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vsdpo.tasks.task import Task

NUM_BLOCKS = 3
Span = tuple[int, int]  # as vsdpo.render.types.Span; tasks stay free of render imports
BLOCK_KEYS = {"chart": "panel", "web": "card", "slide": "column"}
PRONE_STYLES = {"chart": ("flat",), "web": ("nowrap", "fixed"), "slide": ("large",)}
ROBUST_STYLES = {"chart": ("rotate",), "web": ("wrap",), "slide": ("small",)}
# One regular expression per domain whose k-th match is block k, and its style statement.
_BLOCK = {"chart": r"(?m)^axes\[(\d)\]\..*(?:\naxes\[\1\]\..*)*",
          "web": r'<div style="width:240px[^"]*">[^<]*<h2[^>]*>[^<]*</h2>\s*</div>',
          "slide": r"<ul style=[^>]*>(?:\s*<li>[^<]*</li>)*\s*</ul>"}
_STYLE = {"chart": r"axes\[\d\]\.tick_params\([^\n]*\)",
          "web": r"white-space:nowrap|height:\d+px;overflow:hidden",
          "slide": r"font-size:\d+px"}


@dataclass(frozen=True)
class Prompt:
    """A synthetic prompt: `chart: panels | title: T | panel: a=1; b=2 | panel: ... | ...`."""

    domain: str
    title: str
    blocks: tuple[str, ...]  # each block's own text: bars, a card title, or bullets


def parse_prompt(prompt: str) -> Prompt:
    """The domain, title and blocks of a generator-made prompt; ValueError otherwise."""
    fields = []
    for part in prompt.split(" | "):
        key, sep, value = part.partition(": ")
        if not sep:
            raise ValueError(f"prompt field {part!r} is not 'key: value' in {prompt!r}")
        fields.append((key, value))
    domain = fields[0][0]
    if domain not in BLOCK_KEYS or len(fields) < 2 or fields[1][0] != "title":
        raise ValueError(f"not a synthetic prompt (domain, then title): {prompt!r}")
    blocks = tuple(v for k, v in fields[2:] if k == BLOCK_KEYS[domain])
    return Prompt(domain, fields[1][1], blocks)


def prompt_text(p: Prompt) -> str:
    kind = BLOCK_KEYS[p.domain] + "s"
    key = BLOCK_KEYS[p.domain]
    return " | ".join([f"{p.domain}: {kind}", f"title: {p.title}",
                       *(f"{key}: {b}" for b in p.blocks)])


def split_list(value: str) -> list[str]:
    """The items of a `a; b; c` block."""
    return value.split("; ")


def styles(domain: str) -> tuple[str, ...]:
    """Every style of a domain, prone first."""
    return PRONE_STYLES[domain] + ROBUST_STYLES[domain]


def solve(task: Task, style: str | Sequence[str]) -> str:
    """The program for a synthetic task with one style per block (a single style: all
    blocks alike)."""
    p = parse_prompt(task.prompt)
    per_block = [style] * len(p.blocks) if isinstance(style, str) else list(style)
    if len(per_block) != len(p.blocks) or any(s not in styles(p.domain) for s in per_block):
        raise ValueError(f"style must be one of {styles(p.domain)} for domain {p.domain!r}, "
                         f"or one per block ({len(p.blocks)}), got {style!r}")
    return _WRITERS[p.domain](p, per_block)


def block_spans(code: str, domain: str) -> list[Span]:
    """The character span of each block of a program in this family's layout, in order."""
    return [m.span() for m in re.finditer(_BLOCK[domain], code)]


def style_spans(code: str, domain: str) -> list[Span | None]:
    """Per block, the span of its style statement (None: a robust web card declares none)."""
    out = []
    for start, end in block_spans(code, domain):
        m = re.compile(_STYLE[domain]).search(code, start, end)
        out.append(m.span() if m else None)
    return out


def _chart(p: Prompt, per_block: list[str]) -> str:
    lines = ["import matplotlib.pyplot as plt",
             f"fig, axes = plt.subplots(1, {len(p.blocks)}, figsize=(12, 5))"]
    for k, (block, style) in enumerate(zip(p.blocks, per_block)):
        for bar in split_list(block):
            label, value = bar.split("=")
            lines.append(f"axes[{k}].bar('{label}', {value})")
        lines.append(f"axes[{k}].tick_params(axis='x', labelrotation={90 if style == 'rotate' else 0})")
    lines += [f"fig.suptitle('{p.title}')", "fig.tight_layout()"]
    return "\n".join(lines) + "\n"


def _web(p: Prompt, per_block: list[str]) -> str:
    extra = {"nowrap": ";white-space:nowrap", "fixed": ";height:40px;overflow:hidden", "wrap": ""}
    cards = "".join(
        f'<div style="width:240px;margin:0 0 72px;padding:10px;border:1px solid #333{extra[style]}">\n'
        f'<h2 style="font-size:28px;margin:0">{title}</h2>\n</div>\n'
        for title, style in zip(p.blocks, per_block))
    return (
        '<body style="margin:20px;font-family:sans-serif">\n'
        f'<h1 style="font-size:36px;margin:0 0 20px">{p.title}</h1>\n'
        f"{cards}</body>\n"
    )


def _slide(p: Prompt, per_block: list[str]) -> str:
    columns = ""
    for block, style in zip(p.blocks, per_block):
        size = "24px" if style == "small" else "48px"
        items = "".join(f"<li>{b}</li>\n" for b in split_list(block))
        columns += (f'<ul style="width:400px;margin:0;line-height:2;font-size:{size}">\n'
                    f"{items}</ul>\n")
    return (
        '<body style="margin:0;font-family:sans-serif">\n'
        '<div style="width:1280px;height:720px;padding:40px;box-sizing:border-box">\n'
        f'<h1 style="font-size:48px;margin:0 0 120px">{p.title}</h1>\n'
        f'<div style="display:flex">\n{columns}</div>\n</div>\n</body>\n'
    )


_WRITERS = {"chart": _chart, "web": _web, "slide": _slide}
