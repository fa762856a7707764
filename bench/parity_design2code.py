"""Parity of our Design2Code columns (`vsdpo/feedback/design2code_metrics.py`) with Design2Code's
own `metrics/visual_score.py`, at CLIP 0.

Builds reference/perturbed pairs from Design2Code fixture pages (identical, reworded text,
moved blocks, recoloured text, dropped blocks), scores them with ours through the render pool
and, given `--official DIR` (a copy of NoviScl/Design2Code outside the project) and `--python`
(an interpreter with its requirements), with theirs (`parity_design2code_official.py`): as
the metric alone, and with `--cleanup` also after their clean-up of generated pages. Writes
bench/results/parity_design2code.json: per metric the mean absolute difference, Pearson r and
the pairs off by more than 0.2; the last stdout line is that summary.

    python -m bench.parity_design2code [--official DIR --python PY [--cleanup]]
"""

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import FIXTURES, RESULTS_DIR
from vsdpo.feedback.design2code_metrics import design2code_scores
from vsdpo.render import Artifact, RenderConfig, RenderPool

PAGES = ("1973", "3487", "954", "2727", "4406")
METRICS = ("block", "text", "position", "color")
STYLES = {  # variant → CSS injected into the reference page
    "moved": "h1,h2,h3,p,li{position:relative;left:60px;top:30px}",
    "shifted_down": "body{padding-top:240px !important}",
    "enlarged": "p,li,td{font-size:20px !important}",
    "recoloured": "p,li,a,span,td{color:#c0392b !important}",
    "headings_blue": "h1,h2,h3,h4,b{color:#2266aa !important}",
    "dropped": "p:nth-of-type(2n),li:nth-child(2n),td:nth-child(2n){display:none !important}",
}
# markup, and the insides of <style>/<script>, which are not text to reword
MARKUP = re.compile(r"(<style\b.*?</style>|<script\b.*?</script>|<!--.*?-->|<[^>]*>)", re.S | re.I)


def reworded(html: str, seed: int) -> str:
    """Every second text run with 40% of its words reversed ("price" → "ecirp")."""
    rng = random.Random(seed)
    parts = MARKUP.split(html)
    runs = [k for k in range(0, len(parts), 2) if re.search(r"[A-Za-z]{3}", parts[k])]
    for k in runs[::2]:
        parts[k] = re.sub(r"[A-Za-z]{3,}", lambda m: m[0][::-1] if rng.random() < 0.4 else m[0],
                          parts[k])
    return "".join(parts)


def styled(html: str, css: str) -> str:
    """The page with one more (one-line) style sheet at the end of its head."""
    tag = f"<style>{css}</style>"
    at = html.lower().find("</head>")
    return html[:at] + tag + html[at:] if at >= 0 else tag + html


def build_pairs() -> dict[str, dict[str, str]]:
    """{page: {variant: html}}, variant "ref" being the page itself."""
    pairs = {}
    for page in PAGES:
        html = (FIXTURES / "design2code" / f"{page}.html").read_text()
        pairs[page] = {"ref": html, "identical": html, "reworded": reworded(html, seed=0)}
        pairs[page] |= {name: styled(html, css) for name, css in STYLES.items()}
    return pairs


async def ours(pairs) -> dict[str, list[float]]:
    async with RenderPool(RenderConfig(num_browsers=1)) as pool:
        keys = [(p, v) for p, variants in pairs.items() for v in variants]
        results = await pool.render([Artifact("web", pairs[p][v]) for p, v in keys])
    found = dict(zip(keys, results))
    return {f"{p}/{v}": [design2code_scores(found[p, v], found[p, "ref"])[m] for m in METRICS]
            for p, v in keys if v != "ref"}


def official(pairs, directory: str, python: str, cleanup: bool) -> dict[str, list[float]]:
    """Their scores, from their code in a subprocess (their interpreter first on PATH)."""
    with tempfile.TemporaryDirectory() as tmp:
        for page, variants in pairs.items():
            (Path(tmp) / page).mkdir()
            for name, html in variants.items():
                (Path(tmp) / page / f"{name}.html").write_text(html)
        (Path(tmp) / "pairs.json").write_text(json.dumps(
            {p: [v for v in variants if v != "ref"] for p, variants in pairs.items()}))
        env = os.environ | {"PATH": f"{Path(python).parent}:{os.environ['PATH']}"}
        script = Path(__file__).with_name("parity_design2code_official.py")
        out = subprocess.run([python, str(script), directory, tmp] + ["--cleanup"] * cleanup,
                             env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def agreement(ours_scores, theirs) -> dict[str, dict]:
    """Per metric: mean absolute difference, Pearson r and the pairs off by more than 0.2."""
    keys = sorted(ours_scores)
    out = {}
    for k, metric in enumerate(METRICS):
        a = np.array([ours_scores[key][k] for key in keys])
        b = np.array([theirs[key][k] for key in keys])
        r = np.corrcoef(a, b)[0, 1] if a.std() > 0 and b.std() > 0 else float("nan")
        out[metric] = {"mean_abs_diff": round(float(np.abs(a - b).mean()), 4),
                       "pearson": round(float(r), 4),
                       "off_by_0.2": [key for key, x, y in zip(keys, a, b) if abs(x - y) > 0.2]}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", help="a copy of NoviScl/Design2Code (outside the project)")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter with Design2Code's requirements")
    parser.add_argument("--cleanup", action="store_true",
                        help="also run theirs with their clean-up of generated pages")
    args = parser.parse_args()
    pairs = build_pairs()
    report = {"pages": list(PAGES), "num_pairs": sum(len(v) - 1 for v in pairs.values()),
              "ours": asyncio.run(ours(pairs))}
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / "parity_design2code.json"
    path.write_text(json.dumps(report, indent=1) + "\n")  # theirs takes long: ours first
    runs = [("official", False)] + [("official_cleanup", True)] * args.cleanup
    for name, cleanup in runs if args.official else []:
        report[name] = official(pairs, args.official, args.python, cleanup)
        report[f"agreement_{name}"] = agreement(report["ours"], report[name])
        path.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k.startswith(("agreement", "num"))}))


if __name__ == "__main__":
    main()
