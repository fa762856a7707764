"""How good the warm-started policy is, as student and as feedback-conditioned teacher.

On held-out eval prompts: sample `samples` programs per prompt from the student prompt,
render them, build the teacher context from each render exactly as the trainer does, sample
the teacher's program from it, render that too. Reports, per role, the share of programs
that execute, that execute yet show a defect — the teacher must beat the student — and the
content fidelity (`vsdpo.feedback.fidelity`): its mean, and the share of complete programs
(every prompt item drawn). `risky` repeats the rates on the risky prompts only
(`synthetic.is_risky`), where prone styles show their defects.

    python -m vsdpo.warmstart.measure [MODEL_DIR] [--num-tasks 48] [--samples 2] [--temperature 0.7]

Without MODEL_DIR the default config is warm-started (or taken from the cache) first.
"""

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from vsdpo.feedback.fidelity import content_fidelity
from vsdpo.render.types import Artifact, RenderResult
from vsdpo.tasks.synthetic import generate_tasks, is_risky
from vsdpo.tasks.task import DOMAINS, Task
from vsdpo.warmstart.build import warmstart
from vsdpo.warmstart.corpus import ContextFn, RenderFn, real_context_fn, real_render_fn
from vsdpo.warmstart.tokenizer import format_prompt, format_teacher_prompt


@torch.no_grad()
def sample(model, tokenizer, prompts: list[str], *, max_new_tokens: int = 400,
           temperature: float = 1.0, batch_size: int = 32, seed: int = 0) -> list[str]:
    """One completion per formatted prompt (left-padded batches, plain sampling)."""
    torch.manual_seed(seed)
    tokenizer.padding_side = "left"
    out = []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[i:i + batch_size], return_tensors="pt", padding=True)
        ids_BT = model.generate(**enc, do_sample=True, temperature=temperature, top_k=0,
                                top_p=1.0, max_new_tokens=max_new_tokens,
                                eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=tokenizer.pad_token_id)
        out += tokenizer.batch_decode(ids_BT[:, enc.input_ids.shape[1]:], skip_special_tokens=True)
    return out


def rates(results: list[RenderResult], tasks: list[Task] | None = None,
          codes: list[str] | None = None) -> dict[str, float]:
    """Shares of programs that execute, execute with a defect, execute clean; per kind; with
    `tasks` and `codes`, the mean content fidelity and the share of complete programs."""
    n = max(1, len(results))
    kinds = sorted({d.kind for r in results for d in r.defects})
    fidelity = {}
    if tasks is not None and codes is not None:
        scores = [content_fidelity(t, r, c) or 0.0 for t, r, c in zip(tasks, results, codes)]
        fidelity = {"fidelity": sum(scores) / n, "complete_rate": sum(s == 1.0 for s in scores) / n}
    return {"exec_rate": sum(r.ok for r in results) / n, **fidelity,
            "defect_rate": sum(r.ok and bool(r.defects) for r in results) / n,
            "clean_rate": sum(r.ok and not r.defects for r in results) / n,
            **{f"defect_rate/{k}": sum(any(d.kind == k for d in r.defects) for r in results) / n
               for k in kinds}}


def measure(model_dir: str | Path, num_tasks: int = 48, seed: int = 0, *, samples: int = 2,
            max_new_tokens: int = 400, temperature: float = 0.7,
            render_fn: RenderFn | None = None,
            context_fn: ContextFn | None = None) -> dict:
    """Student vs teacher-with-feedback rates on `num_tasks` eval prompts (all domains),
    `samples` programs per prompt."""
    render_fn = render_fn or real_render_fn()
    context_fn = context_fn or real_context_fn()
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tasks = [t for t in generate_tasks(DOMAINS, num_tasks, seed=seed, split="eval")
             for _ in range(samples)]
    start = time.perf_counter()
    codes = sample(model, tokenizer, [format_prompt(t.prompt) for t in tasks],
                   max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    results = render_fn([Artifact(t.domain, c) for t, c in zip(tasks, codes)])
    contexts = [context_fn(t, r, c, None) for t, r, c in zip(tasks, results, codes)]
    fixes = sample(model, tokenizer, [format_teacher_prompt(c) for c in contexts],
                   max_new_tokens=max_new_tokens, temperature=temperature, seed=seed + 1)
    fixed = render_fn([Artifact(t.domain, c) for t, c in zip(tasks, fixes)])
    report = {"num_tasks": num_tasks, "samples": samples, "temperature": temperature}
    groups = {"all": lambda t: True, "risky": lambda t: is_risky(t.prompt),
              **{d: (lambda t, d=d: t.domain == d) for d in DOMAINS}}
    for name, keep in groups.items():
        mine = [i for i, t in enumerate(tasks) if keep(t)]
        part = {role: rates([rs[i] for i in mine], [tasks[i] for i in mine], [cs[i] for i in mine])
                for role, rs, cs in (("student", results, codes), ("teacher", fixed, fixes))}
        report.update(part if name == "all" else {name: part})
    return {**report, "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", nargs="?", help="a warm-started model directory")
    parser.add_argument("--num-tasks", type=int, default=48)
    parser.add_argument("--samples", type=int, default=2, help="programs per prompt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=0.7)
    args = parser.parse_args(argv)
    model_dir = args.model_dir or warmstart()
    report = measure(model_dir, args.num_tasks, args.seed, samples=args.samples,
                     temperature=args.temperature)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
