"""Evaluate a model directory on held-out tasks: sample one program per task, render it,
and report exec rate, defect rate (overall and by kind) and mean reward.

    vsdpo eval --model runs/tiny/final --config configs/tiny.toml

Prompts and code extraction are the trainer's (`vsdpo.train.prompts`, `vsdpo.feedback.extract`).
A defect counts only on a program that ran (`ok`): a crash is an exec failure, not a defect.
"""

import asyncio

import torch

from vsdpo.config import Config
from vsdpo.feedback import reward
from vsdpo.feedback.extract import extract_code
from vsdpo.render import Artifact, RenderPool
from vsdpo.render.types import DEFECT_KINDS
from vsdpo.rollout import HFGenerator, SamplingParams
from vsdpo.train.data import build_tasks
from vsdpo.train.model import load_lm, load_tokenizer
from vsdpo.train.prompts import student_prompt

BATCH = 16


def evaluate(cfg: Config) -> dict[str, float]:
    """Metrics of `cfg.model.path` on `cfg.tasks`' eval split, sampled with the run's
    temperature and seed (the same numbers for the same model and config)."""
    tasks = build_tasks(cfg.tasks, split="eval")
    tokenizer = load_tokenizer(cfg.model)
    generator = HFGenerator(load_lm(cfg.model, torch.device("cpu")), tokenizer)
    sampling = SamplingParams(cfg.rollout.temperature, cfg.rollout.max_new_tokens)
    torch.manual_seed(cfg.train.seed)
    codes = []
    for i in range(0, len(tasks), BATCH):
        prompts = [student_prompt(tokenizer, t.prompt) for t in tasks[i:i + BATCH]]
        codes += [extract_code(c.text)[0] for c in generator.generate(prompts, 1, sampling)]
    results = asyncio.run(_render(cfg, [Artifact(t.domain, c) for t, c in zip(tasks, codes)]))
    n = len(tasks)
    metrics = {"exec_rate": sum(r.ok for r in results) / n,
               "defect_rate": sum(r.ok and bool(r.defects) for r in results) / n,
               "reward": sum(reward(t, r) for t, r in zip(tasks, results)) / n}
    for kind in DEFECT_KINDS:
        metrics[f"defect_rate/{kind}"] = sum(
            r.ok and any(d.kind == kind for d in r.defects) for r in results) / n
    return metrics


async def _render(cfg: Config, artifacts):
    async with RenderPool(cfg.render) as pool:
        return await pool.render(artifacts)


def format_table(columns: dict[str, dict[str, float]]) -> str:
    """Metric rows × named columns (e.g. before/after); kinds never seen are left out."""
    names = list(columns)
    rows = [k for k in next(iter(columns.values()))
            if not k.startswith("defect_rate/") or any(c[k] for c in columns.values())]
    width = max(len(r) for r in rows) + 2
    cols = [max(10, len(n) + 2) for n in names]
    lines = ["metric".ljust(width) + "".join(n.rjust(w) for n, w in zip(names, cols))]
    lines += [r.ljust(width) + "".join(f"{columns[n][r]:{w}.3f}" for n, w in zip(names, cols))
              for r in rows]
    return "\n".join(lines)
