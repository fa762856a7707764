"""How good the warm-started policy is, as student and as feedback-conditioned teacher, and
whether the teacher passes the gate that distillation needs.

On held-out eval prompts: sample `samples` programs per prompt from the student prompt (a
group, as in training), render them, and build each sample's teacher context exactly as each
distilling arm of the ablation builds it during training:

| context | arms | the teacher reads |
|---|---|---|
| `traced` | visual_sdpo, random_credit | the traced report (kinds, blamed lines, quoted code) + the best clean sibling |
| `plain` | sdpo | the plain feedback (kinds and messages, or the traceback) + the best clean sibling |
| `reference` | opsd | the task's reference program |

Then sample the teacher's program from each context and render it. Reports, per role, the
share of programs that execute, that execute yet show a defect, and the content fidelity
(`vsdpo.feedback.fidelity`: its mean, and the share of complete programs); `risky` repeats
them on the risky prompts (`synthetic.is_risky`). The **gate** holds for a context when its
teacher's defect rate is at most half the student's and its fidelity at least the
student's − 0.01: a teacher that fails it would pull the student toward worse programs.

    python -m vsdpo.warmstart.measure [MODEL_DIR] [--num-tasks 24] [--samples 4] [--temperature 0.7]

Without MODEL_DIR the default config is warm-started (or taken from the cache) first.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from vsdpo.feedback import best_sibling, reference_context, reward
from vsdpo.feedback.fidelity import content_fidelity
from vsdpo.render.types import Artifact, RenderResult
from vsdpo.tasks.synthetic import generate_tasks, is_risky
from vsdpo.tasks.task import DOMAINS, Task
from vsdpo.warmstart.corpus import RenderFn, real_context_fn, real_render_fn
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


CONTEXTS = ("traced", "plain", "reference")
GATE_DEFECT_RATIO, GATE_FIDELITY_MARGIN = 0.5, 0.01


def measure(model_dir: str | Path, num_tasks: int = 24, seed: int = 0, *, samples: int = 4,
            max_new_tokens: int = 400, temperature: float = 0.7,
            render_fn: RenderFn | None = None) -> dict:
    """Student and teacher rates on `num_tasks` eval prompts (all domains), `samples` programs
    per prompt, a teacher program per sample under each of `CONTEXTS`; and the gate."""
    render_fn = render_fn or real_render_fn()
    context_fn = real_context_fn()
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = generate_tasks(DOMAINS, num_tasks, seed=seed, split="eval")
    tasks = [t for t in prompts for _ in range(samples)]
    start = time.perf_counter()
    codes = sample(model, tokenizer, [format_prompt(t.prompt) for t in tasks],
                   max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    rendered = render_fn([Artifact(t.domain, c) for t, c in zip(tasks, codes)]
                         + [Artifact(t.domain, t.reference_code) for t in prompts])
    results, references = rendered[:len(tasks)], rendered[len(tasks):]
    rewards = [reward(t, r, references[i // samples])
               for i, (t, r) in enumerate(zip(tasks, results))]
    siblings = []
    for i in range(len(tasks)):
        g = i // samples * samples
        siblings.append(best_sibling(i - g, codes[g:g + samples], results[g:g + samples],
                                     rewards[g:g + samples]))
    contexts = {
        "traced": [context_fn(t, r, c, s, True)
                   for t, r, c, s in zip(tasks, results, codes, siblings)],
        "plain": [context_fn(t, r, c, s, False)
                  for t, r, c, s in zip(tasks, results, codes, siblings)],
        "reference": [reference_context(t) for t in tasks]}
    fixes = {name: sample(model, tokenizer, [format_teacher_prompt(c) for c in texts],
                          max_new_tokens=max_new_tokens, temperature=temperature,
                          seed=seed + 1 + n)
             for n, (name, texts) in enumerate(contexts.items())}
    # the three teachers' programs in one render call (each call starts a render pool)
    rendered = render_fn([Artifact(t.domain, c) for fix in fixes.values()
                          for t, c in zip(tasks, fix)])
    roles = {"student": (results, codes)}
    for n, (name, fix) in enumerate(fixes.items()):
        roles[name] = (rendered[n * len(tasks):(n + 1) * len(tasks)], fix)
    report = {"num_tasks": num_tasks, "samples": samples, "temperature": temperature}
    groups = {"all": lambda t: True, "risky": lambda t: is_risky(t.prompt),
              **{d: (lambda t, d=d: t.domain == d) for d in DOMAINS}}
    for name, keep in groups.items():
        mine = [i for i, t in enumerate(tasks) if keep(t)]
        part = {role: rates([rs[i] for i in mine], [tasks[i] for i in mine], [cs[i] for i in mine])
                for role, (rs, cs) in roles.items()}
        report.update(part if name == "all" else {name: part})
    report["gate"] = gate(report)
    return {**report, "seconds": round(time.perf_counter() - start, 1)}


def gate(report: dict) -> dict[str, bool]:
    """Per teacher context: defect rate ≤ half the student's and fidelity ≥ the student's −
    0.01, on all the measured prompts."""
    student = report["student"]
    return {name: (report[name]["defect_rate"] <= GATE_DEFECT_RATIO * student["defect_rate"]
                   and report[name]["fidelity"] >= student["fidelity"] - GATE_FIDELITY_MARGIN)
            for name in CONTEXTS}


def gate_table(report: dict) -> str:
    """The gate as a few lines of text, for the build log."""
    s = report["student"]
    lines = [f"teacher gate on {report['num_tasks']} held-out prompts × {report['samples']}: "
             f"student defect rate {s['defect_rate']:.3f}, fidelity {s['fidelity']:.3f}"]
    for name in CONTEXTS:
        t = report[name]
        lines.append(f"  {name:9s} teacher defect rate {t['defect_rate']:.3f}, fidelity "
                     f"{t['fidelity']:.3f}: {'pass' if report['gate'][name] else 'FAIL'}")
    return "\n".join(lines)


def teacher_gate(model_dir: str | Path, measure_now: bool = False) -> dict | None:
    """Print the gate recorded beside the model (`gate.json`) to stderr; with `measure_now`,
    measure it first (default sizes) and record it."""
    path = Path(model_dir) / "gate.json"
    if measure_now:
        path.write_text(json.dumps(measure(model_dir), indent=1))
    if not path.exists():
        print("warmstart: no teacher gate recorded; `vsdpo warmstart --gate` measures it",
              file=sys.stderr)
        return None
    report = json.loads(path.read_text())
    print(gate_table(report), file=sys.stderr)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", nargs="?", help="a warm-started model directory")
    parser.add_argument("--num-tasks", type=int, default=24)
    parser.add_argument("--samples", type=int, default=4, help="programs per prompt (a group)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=0.7)
    args = parser.parse_args(argv)
    if args.model_dir is None:
        from vsdpo.warmstart.build import warmstart  # build.py imports this module
        args.model_dir = warmstart()
    report = measure(args.model_dir, args.num_tasks, args.seed, samples=args.samples,
                     temperature=args.temperature)
    print(gate_table(report), file=sys.stderr)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
