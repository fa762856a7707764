"""Evaluate a model directory on held-out tasks: sample k programs per task, render them,
and report, over all samples, exec rate, defect rate (overall and by kind), reward against
the task's reference render, content fidelity and "clean and complete" (synthetic tasks),
and the benchmarks' own columns where they apply — for charts with a reference, ChartMimic's
low-level scores (text, layout, type, colour; `chartmimic_metrics.py`, not the reward's `sim_*`
terms; docs/eval.md (ChartMimic)) with their mean; for pages with a reference, Design2Code's
visual score (block match, text, position, colour; `design2code_metrics.py`, not the reward's
`sim_*` terms) with `design2code/mean` = 0.2 × (the four + CLIP), as Design2Code reports it:
CLIP is `design2code/clip` with a local CLIP model, else 0; for slides, our AeSlides-style
reward rules (`slide_rules/*`, with their mean) and AeSlides' own metrics as its code defines
them (`aeslides/*`, no mean: their scales differ; docs/eval.md (AeSlides)). Every value carries a
95% bootstrap interval over prompts (`name@lo`, `name@hi`).

    vsdpo eval --model runs/tiny/final --config configs/tiny.toml [--samples 4] [--clip DIR]

Sampling runs on the training device (CUDA when available) through the trainer's rollout
engine (`rollout.engine`, `vsdpo.rollout.build_generator`), at the rollout temperature, so eval
sees what training sampled; a vision-language model sees each task's reference image, as in
training. Prompts and code extraction are the trainer's (`vsdpo.train.prompts`,
`vsdpo.feedback.extract`). A defect counts only on a program that ran (`ok`): a crash is an
exec failure, not a defect; a program that failed scores 0 on every benchmark column.
"""

import asyncio
import dataclasses
import warnings

import numpy as np
import torch

from vsdpo.config import Config
from vsdpo.feedback import reward_components
from vsdpo.feedback.aeslides_metrics import aeslides_metrics
from vsdpo.feedback.chartmimic_metrics import chartmimic_scores
from vsdpo.feedback.clip_score import ClipScorer
from vsdpo.feedback.design2code_metrics import design2code_scores
from vsdpo.feedback.extract import extract_code
from vsdpo.feedback.fidelity import content_fidelity
from vsdpo.model.inputs import build_inputs
from vsdpo.model.pretrained import load_tokenizer
from vsdpo.render import Artifact, RenderPool
from vsdpo.render.types import DEFECT_KINDS
from vsdpo.rollout import SamplingParams, build_generator
from vsdpo.train.data import build_tasks
from vsdpo.train.prompts import student_prompt
from vsdpo.train.score import ReferenceRenders, task_images

BATCH = 16  # completions per generate call (transformers keeps every step's logits)
# benchmark column → (domain, the `reward_components` keys averaged under it); ChartMimic's
# and Design2Code's columns are not the reward's `sim_*` terms but their own metrics
# (`chartmimic_metrics`, `design2code_metrics`)
BENCHMARKS = {
    "slide_rules": ("slide", ("rule_aspect", "rule_whitespace", "rule_collisions",
                              "rule_balance")),
}


def evaluate(cfg: Config, samples: int = 1, clip: ClipScorer | None = None) -> dict[str, float]:
    """Metrics of `cfg.model.path` on `cfg.tasks`' eval split, `samples` per task, sampled
    with the run's temperature and seed (the same numbers for the same model and config)."""
    return summarize(evaluate_rows(cfg, samples, clip), samples)


def evaluate_rows(cfg: Config, samples: int = 1,
                  clip: ClipScorer | None = None) -> list[dict[str, float]]:
    """`evaluate`'s per-sample rows (`score_samples`), a task's samples adjacent."""
    tasks = build_tasks(cfg.tasks, split="eval")
    tasks_N = [t for t in tasks for _ in range(samples)]
    codes = [extract_code(text)[0] for text in _sample(cfg, tasks, samples)]
    return asyncio.run(score_samples(cfg, tasks_N, codes, clip))


async def score_samples(cfg: Config, tasks_N, codes, clip: ClipScorer | None = None,
                        pool: RenderPool | None = None) -> list[dict[str, float]]:
    """One row per sample: 0/1 rates, the reward against the task's reference, fidelity and
    benchmark columns (rows lack the keys that do not apply to their task). Rendered in
    `pool` (a running one, e.g. a trainer's), else in a pool of `cfg.render` started here."""
    if pool is None:
        async with RenderPool(cfg.render) as pool:
            return await score_samples(cfg, tasks_N, codes, clip, pool)
    results, references = await asyncio.gather(
        pool.render([Artifact(t.domain, c) for t, c in zip(tasks_N, codes)]),
        ReferenceRenders(pool).of(tasks_N))
    clip_N = clip.similarity(results, references) if clip else [None] * len(results)
    rows = []
    for task, code, result, reference, clip_score in zip(tasks_N, codes, results, references,
                                                          clip_N):
        parts = reward_components(task, result, reference, cfg.feedback.reward)
        row = {"exec_rate": float(result.ok),
               "defect_rate": float(result.ok and bool(result.defects)), "reward": parts["reward"]}
        row |= {f"defect_rate/{k}": float(result.ok and any(d.kind == k for d in result.defects))
                for k in DEFECT_KINDS}
        fidelity = content_fidelity(task, result, code)
        if fidelity is not None:
            row |= {"content_fidelity": fidelity,
                    "clean_complete": float(result.ok and not result.defects and fidelity == 1.0)}
        for name, (domain, keys) in BENCHMARKS.items():
            if task.domain == domain and (reference is not None or name == "slide_rules"):
                scores = {f"{name}/{k.partition('_')[2]}": parts.get(k, 0.0) for k in keys}
                row |= scores | {f"{name}/mean": float(np.mean(list(scores.values())))}
        if task.domain == "chart" and reference is not None:
            scores = chartmimic_scores(result, reference)
            row |= {f"chartmimic/{k}": v for k, v in scores.items()}
            row["chartmimic/mean"] = float(np.mean(list(scores.values())))
        if task.domain == "web" and reference is not None:
            scores = design2code_scores(result, reference, clip_score or 0.0)
            row |= {f"design2code/{k}": v for k, v in scores.items() if k != "final"}
            row["design2code/mean"] = scores["final"]
            if clip_score is not None:
                row["design2code/clip"] = clip_score
        if task.domain == "slide" and result.ok:
            row |= {f"aeslides/{k}": v for k, v in aeslides_metrics(result).items()}
        rows.append(row)
    return rows


def summarize(rows: list[dict[str, float]], samples: int, resamples: int = 1000,
              seed: int = 0) -> dict[str, float]:
    """The mean of every key over the rows that have it, with a 95% bootstrap interval that
    resamples prompts (a prompt's `samples` rows together: they are not independent)."""
    rng = np.random.default_rng(seed)
    num_prompts = len(rows) // samples
    picks_BP = rng.integers(0, num_prompts, size=(resamples, num_prompts))
    out = {}
    for key in dict.fromkeys(k for row in rows for k in row):
        values_PS = np.array([[row.get(key, np.nan) for row in rows[p * samples:(p + 1) * samples]]
                              for p in range(num_prompts)])
        out[key] = float(np.nanmean(values_PS))
        with warnings.catch_warnings():  # a resample of prompts that all lack the key: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            means_B = np.nanmean(values_PS[picks_BP].reshape(resamples, -1), axis=1)
        lo, hi = np.nanpercentile(means_B, [2.5, 97.5])
        out[f"{key}@lo"], out[f"{key}@hi"] = float(lo), float(hi)
    return out


def paired_change(before: list[dict[str, float]], after: list[dict[str, float]],
                  samples: int) -> dict[str, float]:
    """after − before of every key, taken per prompt (both rows of the same prompts, as
    `evaluate_rows` gives them), with `summarize`'s interval over prompts: two models
    sampled on the same prompts differ by less noise than two unpaired means."""
    diffs = []
    for p in range(len(before) // samples):
        rows_b, rows_a = (r[p * samples:(p + 1) * samples] for r in (before, after))
        keys = {k for row in rows_b for k in row} & {k for row in rows_a for k in row}
        diffs.append({k: _mean(rows_a, k) - _mean(rows_b, k) for k in keys})
    return summarize(diffs, 1)


def _mean(rows: list[dict[str, float]], key: str) -> float:
    return float(np.mean([row[key] for row in rows if key in row]))


def _sample(cfg: Config, tasks, samples: int) -> list[str]:
    """`samples` completions per task, in task order, from a fresh engine of `cfg.model.path`.
    The engine is closed before returning: vLLM's teardown ends the process group it started."""
    # nothing to make room for between batches: a vLLM engine stays awake
    cfg = dataclasses.replace(cfg, rollout=dataclasses.replace(
        cfg.rollout, vllm=dataclasses.replace(cfg.rollout.vllm, sleep=False)))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    inputs = build_inputs(cfg.model, load_tokenizer(cfg.model))
    generator = build_generator(cfg, inputs, device, group=0)
    torch.manual_seed(cfg.train.seed)
    try:  # image-to-code: a vision-language policy sees each task's reference image
        images = inputs.task_images(tasks,
                                    lambda found: asyncio.run(_reference_images(cfg, found)))
        return sample_texts(generator, inputs.tokenizer, tasks, samples, cfg.rollout, images)
    finally:
        generator.close()


async def _reference_images(cfg: Config, tasks) -> list:
    async with RenderPool(dataclasses.replace(cfg.render, screenshot=True)) as pool:
        return await task_images(ReferenceRenders(pool), tasks)


def sample_texts(generator, tokenizer, tasks, samples: int, rollout,
                 images: list[list]) -> list[str]:
    """`samples` completions per task, in task order, at the rollout temperature; `images[i]`
    are the policy's images of task i (`PolicyInputs.task_images`)."""
    per_call = max(1, BATCH // samples)
    texts = []
    for i in range(0, len(tasks), per_call):
        chunk = images[i:i + per_call]
        prompts = [student_prompt(tokenizer, t.prompt, len(imgs))
                   for t, imgs in zip(tasks[i:i + per_call], chunk)]
        # vLLM seeds a request by (engine, call, index in call): each call its own seed
        sampling = SamplingParams(rollout.temperature, rollout.max_new_tokens, seed=i)
        texts += [c.text for c in generator.generate(prompts, samples, sampling, images=chunk)]
    return texts


def format_table(columns: dict[str, dict[str, float]]) -> str:
    """Metric rows × named columns (e.g. before/after), each value with its interval when it
    has one; kinds never seen are left out; counts (ints) print as integers."""
    names = list(columns)
    rows = [k for k in dict.fromkeys(k for c in columns.values() for k in c) if "@" not in k
            and (not k.startswith("defect_rate/") or any(c.get(k) for c in columns.values()))]
    width = max(len(r) for r in rows) + 2

    def cell(column, row):
        value = column.get(row)
        if value is None:
            return "-"
        if isinstance(value, int):
            return f"{value:d}"
        if f"{row}@lo" not in column:
            return f"{value:.3f}"
        return f"{value:.3f} [{column[row + '@lo']:.3f}, {column[row + '@hi']:.3f}]"
    cells = {n: [cell(columns[n], r) for r in rows] for n in names}
    cols = [max(len(n), *(len(c) for c in cells[n])) + 2 for n in names]
    lines = ["metric".ljust(width) + "".join(n.rjust(w) for n, w in zip(names, cols))]
    lines += [r.ljust(width) + "".join(cells[n][i].rjust(w) for n, w in zip(names, cols))
              for i, r in enumerate(rows)]
    return "\n".join(lines)
