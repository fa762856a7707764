"""`vsdpo report RUN_DIR`: one self-contained HTML page about a run, to read it by eye.

    vsdpo report runs/tiny                   # writes runs/tiny/report.html
    vsdpo report runs/tiny -o /tmp/run.html

The page holds the training curves of `metrics.jsonl` (matplotlib PNGs); for each step the
rollout log kept (`train.log_rollouts_every`, `rollout_log.py`), each sample's render with its
defect boxes, its code with every token shaded by its credit weight — background alpha
(w/w_min − 1)/(α − 1), i.e. the r of its statement (dividing by w_min, the unblamed level,
undoes the per-sequence normalisation), the weight in `data-weight` — and the blamed
statements underlined, the defects with the lines they blame, the teacher's context and the
reward's terms; and the before/after table of `RUN_DIR/eval.json` when the file exists
(`vsdpo demo` writes it). Images are inlined as data: URIs, so the file stands alone.
"""

import argparse
import base64
import html
import io
import json
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vsdpo.render.draw import draw_defects
from vsdpo.render.command import blamed_lines
from vsdpo.render.types import DEFECT_KINDS, Defect
from vsdpo.train.rollout_log import RECORDS, step_of

PANELS = (("reward", ("reward", "content_fidelity", "clean_complete")),
          ("exec and defect rates", ("exec_rate", "defect_rate",
                                     *(f"defect_rate/{k}" for k in DEFECT_KINDS))),
          ("divergence (per token)", ("divergence",)),
          ("clip fraction", ("clip_fraction",)),
          ("stage times (s)", "time/"))

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 4px; }
.curves img { margin: 4px; border: 1px solid #eee; }
.sample { border: 1px solid #ddd; border-radius: 6px; padding: 12px; margin: 12px 0; }
.sample .head { font-weight: 600; margin-bottom: 8px; }
.cols { display: flex; gap: 16px; align-items: flex-start; flex-wrap: wrap; }
.render { max-width: 560px; border: 1px solid #ccc; }
pre { white-space: pre-wrap; word-break: break-all; background: #f7f7f7; padding: 8px;
      margin: 4px 0; max-width: 760px; }
pre.code { font: 12px/1.45 ui-monospace, monospace; }
.tok.blamed { text-decoration: underline wavy #b00; text-underline-offset: 3px; }
.error { color: #a00; }
table { border-collapse: collapse; margin: 4px 0; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
"""


def add_parser(sub) -> None:
    """Register the `report` subcommand on the `vsdpo` parser."""
    p = sub.add_parser("report", help="write one HTML page about a run: curves, rollouts, eval",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="a run directory (holds metrics.jsonl)")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="the HTML file to write (default: RUN_DIR/report.html)")


def run(args) -> int:
    if not args.run_dir.is_dir():
        raise SystemExit(f"vsdpo report: {args.run_dir} is not a directory")
    print(write_report(args.run_dir, args.out))
    return 0


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of `run_dir` (to `run_dir/report.html` by default); returns its path."""
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "report.html"
    body = [f"<h1>Run {html.escape(str(run_dir))}</h1>", "<h2>Training curves</h2>",
            curves_html(run_dir / "metrics.jsonl"), eval_html(run_dir / "eval.json"),
            "<h2>Rollouts</h2>", gallery_html(run_dir / "rollouts")]
    out.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>vsdpo report: "
                   f"{html.escape(run_dir.name)}</title><style>{STYLE}</style></head>"
                   f"<body>{''.join(body)}</body></html>")
    return out


def curves_html(path: Path) -> str:
    """One plot per panel of the series present (a defect kind only once it occurred)."""
    if not path.is_file():
        return "<p>No metrics.jsonl.</p>"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    images = []
    for title, keys in PANELS:
        if isinstance(keys, str):  # a prefix: every key under it, in the file's order
            keys = [k for k in rows[0] if k.startswith(keys)] if rows else []
        series = {k: [(r["step"], r[k]) for r in rows if k in r] for k in keys}
        series = {k: v for k, v in series.items() if v and not (
            k.startswith("defect_rate/") and not any(y for _, y in v))}
        if series:
            images.append(f'<img class="curve" alt="{html.escape(title)}" '
                          f'src="{_data_uri(_plot(title, series))}">')
    return f"<div class='curves'>{''.join(images)}</div>"


def _plot(title: str, series: dict[str, list[tuple[int, float]]]) -> bytes:
    fig = Figure(figsize=(4.4, 3.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for key, points in series.items():
        steps, values = zip(*points)
        ax.plot(steps, values, marker="o" if len(points) < 30 else None, ms=3, label=key)
    ax.set(title=title, xlabel="step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def eval_html(path: Path) -> str:
    """The `{"column": {"metric": value}}` table of eval.json (`name@lo`/`name@hi`: the
    value's interval); nothing without the file."""
    if not path.is_file():
        return ""
    columns = json.loads(path.read_text())
    metrics = [k for k in dict.fromkeys(k for c in columns.values() for k in c) if "@" not in k]

    def cell(c: dict, m: str) -> str:
        if m not in c:
            return "<td>-</td>"
        interval = f" [{c[m + '@lo']:.3f}, {c[m + '@hi']:.3f}]" if f"{m}@lo" in c else ""
        return f"<td>{c[m]:.3f}{interval}</td>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = "".join(f"<tr><td>{html.escape(m)}</td>" + "".join(cell(c, m) for c in columns.values())
                   + "</tr>" for m in metrics)
    return (f"<h2>Evaluation (held-out prompts)</h2><table class='eval'><tr><th>metric</th>"
            f"{head}</tr>{rows}</table>")


def gallery_html(rollouts: Path) -> str:
    steps = sorted((d for d in rollouts.glob("step_*") if step_of(d) is not None), key=step_of)
    if not steps:
        return "<p>No rollouts logged (set train.log_rollouts_every &gt; 0).</p>"
    out = []
    for step_dir in steps:
        log = json.loads((step_dir / RECORDS).read_text())
        out.append(f"<section class='step' data-step='{log['step']}'><h3>Step {log['step']}</h3>")
        out += [sample_html(step_dir, i, s, log["alpha"]) for i, s in enumerate(log["samples"])]
        out.append("</section>")
    return "".join(out)


def sample_html(step_dir: Path, index: int, s: dict, alpha: float) -> str:
    e = html.escape
    fidelity = "" if s["fidelity"] is None else f" · fidelity {s['fidelity']:.2f}"
    head = (f"sample {index} · {e(s['domain'])} · task {e(str(s['task_id']))} · reward "
            f"{s['reward']:.3f} · advantage {s['advantage']:+.3f}{fidelity}")
    defects = [Defect(d["kind"], tuple(d["bbox"]), d["severity"], d["message"],
                      [tuple(span) for span in d["spans"]]) for d in s["defects"]]
    blamed = [tuple(b["span"]) for b in s["blamed"]]
    code = shaded_code(s["code"], s["offsets"], s["weights"], blamed, alpha)
    return (f"<div class='sample'><div class='head'>{head}</div>"
            f"<details><summary>prompt</summary><pre>{e(s['prompt'])}</pre></details>"
            f"<div class='cols'><div>{_render_html(step_dir, s, defects)}"
            f"{_defects_html(s['code'], defects)}{_reward_table(s['reward_parts'])}</div>"
            f"<div><pre class='code'>{code}</pre></div></div>"
            f"<details open><summary>teacher context</summary><pre class='context'>"
            f"{e(s['context'])}</pre></details></div>")


def _render_html(step_dir: Path, s: dict, defects: list[Defect]) -> str:
    """The render with the defect boxes drawn; the error when it did not render."""
    if s["image"]:
        buf = io.BytesIO()
        draw_defects((step_dir / s["image"]).read_bytes(), defects).save(buf, format="PNG")
        return f'<img class="render" alt="render" src="{_data_uri(buf.getvalue())}">'
    return "" if s["ok"] else f"<pre class='error'>{html.escape(s['error'] or 'no render')}</pre>"


def _defects_html(code: str, defects: list[Defect]) -> str:
    """Numbered as on the render; each with the source lines it blames."""
    items = []
    for d in defects:
        lines = html.escape("\n".join(blamed_lines(code, d.spans)))
        items.append(f"<li><b>{html.escape(d.kind)}</b> (severity {d.severity:.2f}): "
                     f"{html.escape(d.message)}{f'<pre>{lines}</pre>' if lines else ''}</li>")
    return f"<ol class='defects'>{''.join(items)}</ol>" if items else ""


# Control characters other than tab and newline, which HTML drops (NUL) or rewrites (CR), shown
# as their Unicode control pictures (␀, ␍, ...) so the page holds one character per code one.
_VISIBLE = {c: chr(0x2400 + c) for c in (*range(0x09), 0x0B, 0x0C, *range(0x0D, 0x20))}
_VISIBLE[0x7F] = "\u2421"


def visible(text: str) -> str:
    """`text` HTML-escaped, its control characters as control pictures."""
    return html.escape(text.translate(_VISIBLE))


def shaded_code(code: str, offsets: list, weights: list[float], blamed: list[tuple[int, int]],
                alpha: float) -> str:
    """`code` with one `<span class="tok">` per token, shaded by its weight relative to the
    sequence's unblamed level; a token that overlaps the one before it keeps only its new
    characters, an empty one is left out."""
    out, cursor = [], 0
    level = min(weights, default=1.0)
    for t, ((start, end), w) in enumerate(zip(offsets, weights)):
        start = max(start, cursor)
        if end <= start:
            continue
        shade = min(max((w / level - 1.0) / (alpha - 1.0), 0.0), 1.0) if alpha > 1.0 else 0.0
        cls = "tok blamed" if any(a < end and start < b for a, b in blamed) else "tok"
        out.append(f'{visible(code[cursor:start])}<span class="{cls}" data-token="{t}" '
                   f'data-weight="{w!r}" title="credit {w:.3f}" style="background-color: '
                   f'rgba(230, 25, 75, {shade:.4f})">{visible(code[start:end])}</span>')
        cursor = end
    return "".join(out) + visible(code[cursor:])


def _reward_table(parts: dict | None) -> str:
    """The reward's terms; the defect penalties only where some defect was found."""
    if not parts:
        return ""
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.3f}</td></tr>"
                   for k, v in parts.items() if not (k.startswith("penalty_") and v == 0))
    return f"<table class='reward'>{rows}</table>"


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()
