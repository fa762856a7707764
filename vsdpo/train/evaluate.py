"""Evaluate a model directory on held-out tasks: sample k programs per task, render them,
and report exec rate, defect rate (overall and by kind) and mean reward over all samples.

    vsdpo eval --model runs/tiny/final --config configs/tiny.toml [--samples 4]

Sampling runs on the training device (CUDA when available) through the trainer's rollout
engine (`rollout.backend`, `trainer.build_generator`), at the rollout temperature, so eval sees
what training sampled. Prompts and code extraction are the trainer's (`vsdpo.train.prompts`,
`vsdpo.feedback.extract`). A defect counts only on a program that ran (`ok`): a crash is an
exec failure, not a defect.
"""

import asyncio
import dataclasses

import torch

from vsdpo.config import Config
from vsdpo.feedback import reward
from vsdpo.feedback.extract import extract_code
from vsdpo.render import Artifact, RenderPool
from vsdpo.render.types import DEFECT_KINDS
from vsdpo.rollout import SamplingParams
from vsdpo.train.data import build_tasks
from vsdpo.train.model import load_tokenizer
from vsdpo.train.prompts import student_prompt
from vsdpo.train.trainer import build_generator

BATCH = 16  # completions per generate call (transformers keeps every step's logits)


def evaluate(cfg: Config, samples: int = 1) -> dict[str, float]:
    """Metrics of `cfg.model.path` on `cfg.tasks`' eval split, `samples` per task, sampled
    with the run's temperature and seed (the same numbers for the same model and config)."""
    tasks = build_tasks(cfg.tasks, split="eval")
    tasks_N = [t for t in tasks for _ in range(samples)]  # a task's samples are adjacent
    codes = [extract_code(text)[0] for text in _sample(cfg, tasks, samples)]
    results = asyncio.run(_render(cfg, [Artifact(t.domain, c) for t, c in zip(tasks_N, codes)]))
    n = len(results)
    metrics = {"exec_rate": sum(r.ok for r in results) / n,
               "defect_rate": sum(r.ok and bool(r.defects) for r in results) / n,
               "reward": sum(reward(t, r) for t, r in zip(tasks_N, results)) / n}
    for kind in DEFECT_KINDS:
        metrics[f"defect_rate/{kind}"] = sum(
            r.ok and any(d.kind == kind for d in r.defects) for r in results) / n
    return metrics


def _sample(cfg: Config, tasks, samples: int) -> list[str]:
    """`samples` completions per task, in task order. The engine is closed before returning:
    vLLM's teardown ends the process group it started."""
    # nothing to make room for between batches: a vLLM engine stays awake
    cfg = dataclasses.replace(cfg, rollout=dataclasses.replace(
        cfg.rollout, vllm=dataclasses.replace(cfg.rollout.vllm, sleep=False)))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer(cfg.model)
    generator = build_generator(cfg, tokenizer, device, group=0)
    torch.manual_seed(cfg.train.seed)
    per_call = max(1, BATCH // samples)
    texts = []
    try:
        for i in range(0, len(tasks), per_call):
            prompts = [student_prompt(tokenizer, t.prompt) for t in tasks[i:i + per_call]]
            # vLLM seeds a request by (engine, call, index in call): each call its own seed
            sampling = SamplingParams(cfg.rollout.temperature, cfg.rollout.max_new_tokens, seed=i)
            texts += [c.text for c in generator.generate(prompts, samples, sampling)]
    finally:
        generator.close()
    return texts


async def _render(cfg: Config, artifacts):
    async with RenderPool(cfg.render) as pool:
        return await pool.render(artifacts)


def format_table(columns: dict[str, dict[str, float]]) -> str:
    """Metric rows × named columns (e.g. before/after); kinds never seen are left out; counts
    (ints) print as integers."""
    names = list(columns)
    rows = [k for k in next(iter(columns.values()))
            if not k.startswith("defect_rate/") or any(c[k] for c in columns.values())]
    width = max(len(r) for r in rows) + 2
    cols = [max(10, len(n) + 2) for n in names]

    def cell(value, w):
        return f"{value:{w}d}" if isinstance(value, int) else f"{value:{w}.3f}"
    lines = ["metric".ljust(width) + "".join(n.rjust(w) for n, w in zip(names, cols))]
    lines += [r.ljust(width) + "".join(cell(columns[n][r], w) for n, w in zip(names, cols))
              for r in rows]
    return "\n".join(lines)
