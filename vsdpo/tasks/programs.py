"""Programs for the synthetic tasks: a small family of solution styles per domain.

Each style is a fixed template filled from the prompt, so programs are short and regular
enough for a tiny model to write token by token (one `ax.bar` call per bar: a label and its
value sit on one line, so a miscounted list cannot break the program). *Prone* styles are fine on safe prompts and
show the intended defect on risky ones (`synthetic.is_risky`); *robust* styles are clean on
every prompt. The warm-start corpus mixes both so the student errs, and teaches the
feedback-conditioned teacher to answer a defect report with a robust style.

| domain | prone | robust |
|---|---|---|
| chart | `plain`: vertical bars, horizontal tick labels | `rotate`: labels at 90° + tight layout; `barh`: horizontal bars + tight layout |
| web | `nowrap`: title on one line in a 240 px-wide card; `fixed`: wrapping title in a 34 px-high heading | `wrap`: wrapping title, the card grows |
| slide | `fixed`: 44 px bullets in one column | `columns`: two columns; `small`: 24 px bullets |
"""

from vsdpo.tasks.task import Task

PRONE_STYLES = {"chart": ("plain",), "web": ("nowrap", "fixed"), "slide": ("fixed",)}
ROBUST_STYLES = {"chart": ("rotate", "barh"), "web": ("wrap",), "slide": ("columns", "small")}


def parse_prompt(prompt: str) -> dict[str, str]:
    """`'chart: bar | title: X | bars: a=1; b=2'` → `{'chart': 'bar', 'title': 'X', 'bars': ...}`."""
    fields = {}
    for part in prompt.split(" | "):
        key, sep, value = part.partition(": ")
        if not sep:
            raise ValueError(f"prompt field {part!r} is not 'key: value' in {prompt!r}")
        fields[key] = value
    return fields


def split_list(value: str) -> list[str]:
    """The items of a `a; b; c` prompt field."""
    return value.split("; ")


def styles(domain: str) -> tuple[str, ...]:
    """Every style of a domain, prone first."""
    return PRONE_STYLES[domain] + ROBUST_STYLES[domain]


def solve(task: Task, style: str) -> str:
    """The program of `style` for a synthetic task (its prompt must be generator-made)."""
    if style not in styles(task.domain):
        raise ValueError(f"style must be one of {styles(task.domain)} for domain "
                         f"{task.domain!r}, got {style!r}")
    fields = parse_prompt(task.prompt)
    return _WRITERS[task.domain](fields, style)


def _chart(fields: dict[str, str], style: str) -> str:
    draw = "barh" if style == "barh" else "bar"
    lines = ["import matplotlib.pyplot as plt", "fig, ax = plt.subplots(figsize=(6, 4))"]
    for bar in split_list(fields["bars"]):
        label, value = bar.split("=")
        lines.append(f"ax.{draw}('{label}', {value})")
    lines.append(f"ax.set_title('{fields['title']}')")
    if style == "rotate":
        lines.append("ax.tick_params(axis='x', labelrotation=90)")
    if style != "plain":
        lines.append("fig.tight_layout()")
    return "\n".join(lines) + "\n"


def _web(fields: dict[str, str], style: str) -> str:
    title_css = {"nowrap": ";white-space:nowrap", "fixed": ";height:34px", "wrap": ""}[style]
    return (
        '<body style="margin:0;font-family:sans-serif">\n'
        '<div style="width:240px;min-height:70px;margin:20px;padding:10px;'
        'border:1px solid #333">\n'
        f'<h2 style="font-size:28px;margin:0{title_css}">{fields["title"]}</h2>\n'
        f'<p style="font-size:14px;margin:8px 0 0">{fields["text"]}</p>\n'
        "</div>\n</body>\n"
    )


def _slide(fields: dict[str, str], style: str) -> str:
    size = "24px" if style == "small" else "44px"
    columns = ";columns:2" if style == "columns" else ""
    items = "".join(f"<li>{b}</li>\n" for b in split_list(fields["bullets"]))
    return (
        '<body style="margin:0;font-family:sans-serif">\n'
        '<div style="width:1280px;height:720px;padding:40px;box-sizing:border-box">\n'
        f'<h1 style="font-size:56px;margin:0 0 20px">{fields["title"]}</h1>\n'
        f'<ul style="font-size:{size};line-height:1.5;margin:0{columns}">\n'
        f"{items}</ul>\n</div>\n</body>\n"
    )


_WRITERS = {"chart": _chart, "web": _web, "slide": _slide}
