"""ChartMimic parity: our `chartmimic/*` eval columns against ChartMimic's own evaluators.

Builds reference/perturbed pairs from the ChartMimic fixture scripts — identical, a new
two-line title, new tick labels, a dropped series, other colours, another chart type, the
first axes moved on its grid — and scores each pair (perturbed against reference) three ways:
- `ours`: `vsdpo.feedback.chartmimic_metrics`, through the sandboxed chart renderer;
- `reward`: the training reward's look-alike (`similarity_chart.py`), for comparison;
- `official`, given `--official DIR`: ChartMimic's evaluators (`chart2code/utils/evaluator/`
  of a ChartMimic checkout outside this project), run unchanged through their own logging
  methods; the log scripts they write run in forked children of this process, which needs
  matplotlib, colormath, matplotlib-venn, squarify, networkx and python-dotenv importable.
  matplotlib 3.10 renamed `_makeline` to `_make_line`, which their colour logger wraps, so
  that checkout needs a shim (docs/eval.md (ChartMimic)).
Per metric and scorer: the mean absolute difference from `official`, the Pearson correlation
and the pairs more than 0.2 apart. A perturbation that does not apply to a script, or makes
it fail, is left out.

Usage:  python bench/parity_chartmimic.py [--scripts 20] [--official DIR]
Output: bench/results/parity_chartmimic.json, also as the last stdout line.
"""

import argparse
import ast
import asyncio
import os
import re
import runpy
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

from common import RESULTS_DIR, fixtures_dir, run_metadata, write_result
from vsdpo.feedback.chartmimic_metrics import chartmimic_scores
from vsdpo.feedback.similarity_chart import chart_similarity
from vsdpo.render.chart import ChartConfig, ChartRenderer

METRICS = ("text", "layout", "type", "color")
FAR = 0.2  # a pair this far from the official score is listed
PLOT_CALLS = {"bar", "barh", "plot", "scatter", "pie", "hist", "boxplot", "violinplot",
              "errorbar", "fill_between", "fill_betweenx", "fill", "imshow", "contour",
              "contourf", "quiver", "axhline", "axvline", "hlines", "vlines", "stackplot",
              "step", "pcolormesh", "plot_surface", "bar3d"}
# chart-type swaps tried in order; the first one that the script has and survives is used
TYPE_SWAPS = [(".bar(", ".barh("), (".barh(", ".bar("), (".fill_between(", ".fill_betweenx("),
              (".contourf(", ".contour("), (".hlines(", ".vlines("), (".scatter(", ".plot("),
              (".plot(", ".scatter("), (".errorbar(", ".plot("), (".pie(", ".bar("),
              (".fill(", ".plot("), (".quiver(", ".barbs("), (".violinplot(", ".boxplot(")]
SAVEFIG = re.compile(r"^plt\.savefig\(", re.M)
HEX = re.compile(r"#([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})\b")
CMAP = re.compile(r"""cmap\s*=\s*["'](\w+)["']""")


def before_savefig(code: str, snippet: str) -> str:
    """`snippet` (top-level lines) inserted before the script's `plt.savefig`."""
    match = SAVEFIG.search(code)
    at = match.start() if match else len(code)
    return code[:at] + snippet.strip() + "\n" + code[at:]


def drop_series(code: str) -> str | None:
    """The last bare plotting call statement replaced by `pass`."""
    calls = [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Expr)
             and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute)
             and node.value.func.attr in PLOT_CALLS]
    if not calls:
        return None
    last = max(calls, key=lambda node: node.lineno)
    lines = code.splitlines(keepends=True)
    lines[last.lineno - 1:last.end_lineno] = [" " * last.col_offset + "pass\n"]
    return "".join(lines)


def recolor(code: str) -> str:
    """Red and blue of every hex colour swapped, another colormap, another colour cycle."""
    code = HEX.sub(lambda m: f"#{m[3]}{m[2]}{m[1]}", code)
    code = CMAP.sub(lambda m: f'cmap="{"viridis" if m[1] == "cividis" else "cividis"}"', code)
    cycle = ('import matplotlib as _mpl\n_mpl.rcParams["axes.prop_cycle"] = _mpl.cycler('
             'color=["#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"])\n')
    return cycle + code


def perturbations(code: str) -> dict[str, list[str]]:
    """Candidate perturbed scripts per kind (a kind's first candidate that renders is used)."""
    first_axes = "_ax = plt.gcf().axes[0]\n"
    swaps = [code.replace(a, b) for a, b in TYPE_SWAPS if a in code]
    dropped = drop_series(code)
    return {
        "identical": [code],
        "title": [before_savefig(code, first_axes + '_ax.set_title("A new title\\nin two lines")')],
        "tick_labels": [before_savefig(code, first_axes + "_ax.set_xticks(_ax.get_xticks())\n"
                                       '_ax.set_xticklabels([f"tick {i}" for i in '
                                       "range(len(_ax.get_xticks()))])")],
        "dropped_series": [dropped] if dropped else [],
        "colors": [recolor(code)],
        "chart_type": swaps,
        "layout": [before_savefig(code, "_fig = plt.gcf()\n"
                                  "_fig.axes[0].set_subplotspec(_fig.add_gridspec(2, 2)[1, 1])")],
    }


async def render_all(codes: list[str]):
    renderer = ChartRenderer(ChartConfig(workers=2, timeout_s=60, cpu_s=60))
    await renderer.start()
    try:
        return await asyncio.gather(*(renderer.render(c) for c in codes))
    finally:
        await renderer.close()


def run_forked(command: str) -> int:
    """`os.system("python3 SCRIPT")` for their log scripts, in a forked child of this process:
    the same script with matplotlib already imported, instead of a fresh interpreter per log
    (four per script: minutes each on a loaded machine)."""
    script = command.split(maxsplit=1)[1]
    pid = os.fork()
    if pid == 0:
        try:
            runpy.run_path(script, run_name="__main__")
        except BaseException:  # noqa: BLE001 - as a failing `python3 SCRIPT`: no log file
            traceback.print_exc()
        finally:
            os._exit(0)
    return os.waitpid(pid, 0)[1]


class Official:
    """ChartMimic's evaluators from a checkout: their logging runs, their F1s."""

    def __init__(self, root: Path, workdir: Path):
        os.environ["PROJECT_PATH"] = str(root)
        sys.path.insert(0, str(root))
        os.system = run_forked  # their evaluators start each log script with os.system
        from chart2code.utils.evaluator.chart_type_evaluator import ChartTypeEvaluator
        from chart2code.utils.evaluator.color_evaluator import ColorEvaluator
        from chart2code.utils.evaluator.layout_evaluator import LayoutEvaluator
        from chart2code.utils.evaluator.text_evaluator import TextEvaluator
        self.evaluators = {  # metric → (a fresh evaluator, its logging method's name)
            "text": (lambda: TextEvaluator(use_position=False, use_axs=False), "_log_texts"),
            "layout": (LayoutEvaluator, "_log_layouts"),
            "type": (ChartTypeEvaluator, "_get_chart_types"),
            "color": (ColorEvaluator, "_log_colors"),
        }
        self.workdir = workdir

    def logs(self, name: str, code: str) -> dict:
        """Each evaluator's log of `code` (ChartMimic runs the script once per evaluator)."""
        path = self.workdir / f"{name}.py"
        path.write_text(code)
        return {m: getattr(make(), method)(str(path))
                for m, (make, method) in self.evaluators.items()}

    def scores(self, pred: dict, ref: dict, ref_name: str) -> dict[str, float]:
        """Their F1s of `pred`'s logs against `ref`'s, a fresh evaluator per metric (one
        keeps the last pair's values when the generated log is empty)."""
        out = {}
        for metric, (make, _) in self.evaluators.items():
            evaluator = make()
            # their colour recall reads the reference's file name ("box" charts)
            evaluator.golden_code_file = str(self.workdir / f"{ref_name}.py")
            copy = dict if metric == "type" else list  # they edit the logs they are given
            try:
                evaluator._calculate_metrics(copy(pred[metric]), copy(ref[metric]))
            except ZeroDivisionError:  # an empty reference log: their run stops; 0 here
                evaluator.metrics["f1"] = 0.0
            out[metric] = float(evaluator.metrics["f1"])
        return out


def build_pairs(scripts: list[Path]) -> list[dict]:
    """One pair per script and kind: its first candidate that renders, with both renders."""
    refs = [p.read_text() for p in scripts]
    candidates = [(s, kind, code) for s, ref in zip(scripts, refs)
                  for kind, codes in perturbations(ref).items() for code in codes]
    results = asyncio.run(render_all(refs + [code for _, _, code in candidates]))
    ref_results = dict(zip((s.stem for s in scripts), results[:len(refs)]))
    pairs, seen = [], set()
    for (script, kind, code), result in zip(candidates, results[len(refs):]):
        if (script.stem, kind) in seen or not result.ok or not ref_results[script.stem].ok:
            continue
        seen.add((script.stem, kind))
        pairs.append({"script": script.stem, "kind": kind, "code": code, "result": result,
                      "reference": ref_results[script.stem]})
    return pairs


def summary(pairs: list[dict], scorer: str) -> dict:
    out = {}
    for metric in METRICS:
        ours = np.array([p[scorer][metric] for p in pairs])
        official = np.array([p["official"][metric] for p in pairs])
        far = [f"{p['script']}/{p['kind']}: {p[scorer][metric]:.3f} vs {p['official'][metric]:.3f}"
               for p, a, b in zip(pairs, ours, official) if abs(a - b) > FAR]
        pearson = (float(np.corrcoef(ours, official)[0, 1])
                   if ours.std() > 0 and official.std() > 0 else None)
        out[metric] = {"mean_abs_diff": float(np.abs(ours - official).mean()),
                       "pearson": pearson, "num_far": len(far), "far": far}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scripts", type=int, default=20, help="fixture scripts to perturb")
    parser.add_argument("--official", type=Path, help="a ChartMimic checkout (outside the project)")
    args = parser.parse_args(argv)
    all_scripts = sorted((fixtures_dir() / "chartmimic").glob("*.py"))
    spread = np.linspace(0, len(all_scripts) - 1, min(args.scripts, len(all_scripts)))
    scripts = [all_scripts[i] for i in sorted(set(spread.round().astype(int)))]
    pairs = build_pairs(scripts)
    for p in pairs:
        p["ours"] = chartmimic_scores(p["result"], p["reference"])
        p["reward"] = chart_similarity(p["result"], p["reference"])
    payload = {"num_scripts": len(scripts), "num_pairs": len(pairs),
               "kinds": sorted({p["kind"] for p in pairs}), "metadata": run_metadata()}
    if args.official:
        with tempfile.TemporaryDirectory(prefix="cm_parity_") as workdir:
            official = Official(args.official.resolve(), Path(workdir))
            os.chdir(workdir)  # their scripts save PDFs into the working directory
            # one log run per distinct script; the reference's is named as in ChartMimic
            jobs = {s.read_text(): s.stem for s in scripts}
            for p in pairs:
                jobs.setdefault(p["code"], f"{p['script']}__{p['kind']}")
            logs = {code: official.logs(name, code) for code, name in jobs.items()}
            for p in pairs:
                ref_log = logs[(fixtures_dir() / "chartmimic" / f"{p['script']}.py").read_text()]
                p["official"] = official.scores(logs[p["code"]], ref_log, p["script"])
        payload |= {"ours": summary(pairs, "ours"), "reward": summary(pairs, "reward")}
    payload["pairs"] = [{k: p[k] for k in ("script", "kind", "ours", "reward", "official")
                         if k in p} for p in pairs]
    write_result(payload, RESULTS_DIR / "parity_chartmimic.json")
    return payload


if __name__ == "__main__":
    main()
