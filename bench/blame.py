"""Does blame reach the cause? Precision and recall of the credit's blamed statements on the
synthetic world, where the deciding statement of every block is known by construction.

Student-like programs (each block's style prone or robust at even odds) for held-out prompts
are rendered; a block is *defective* when it is risky and its style prone (the world's design,
checked in tests/tasks/test_program_renders.py). Then, from the statements the credit weighs
up (`statement_scores`):

- recall: the share of defective blocks whose style statement (`programs.style_spans`) is
  blamed; per sample, the share of defective samples in which every defective block's is;
- precision: the share of blamed statements that lie inside a defective block (the deciding
  declaration and the symptom's own tags); a statement of a clean block or of the page's frame
  counts against it.

    python bench/blame.py [--num-tasks 60] [--seed 0]

Writes bench/results/blame_<device>.json (the last stdout line is the same JSON).
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, device_slug, run_metadata  # noqa: E402

from vsdpo.feedback.credit import statement_scores  # noqa: E402
from vsdpo.render import Artifact, render  # noqa: E402
from vsdpo.tasks import DOMAINS  # noqa: E402
from vsdpo.tasks.programs import (PRONE_STYLES, ROBUST_STYLES, block_spans, solve,  # noqa: E402
                                  style_spans)
from vsdpo.tasks.synthetic import generate_tasks, risky_blocks  # noqa: E402


def _inside(span, outer) -> bool:
    return outer[0] <= span[0] and span[1] <= outer[1]


def _overlaps(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def blame_quality(num_tasks: int, seed: int) -> dict:
    """Recall and precision per domain and overall on `num_tasks` eval prompts."""
    rng = random.Random(f"blame:{seed}")
    tasks = generate_tasks(DOMAINS, num_tasks, seed=seed, split="eval")
    cases = []
    for t in tasks:
        styles = [rng.choice((PRONE_STYLES if rng.random() < 0.5 else ROBUST_STYLES)[t.domain])
                  for _ in risky_blocks(t.prompt)]
        cases.append((t, styles, solve(t, styles)))
    results = render([Artifact(t.domain, code) for t, _, code in cases])
    counts = {d: dict.fromkeys(("blocks", "blocks_hit", "samples", "samples_hit", "blamed",
                                "blamed_inside"), 0) for d in (*DOMAINS, "all")}
    for (task, styles, code), result in zip(cases, results):
        defective = [risky and s in PRONE_STYLES[task.domain]
                     for risky, s in zip(risky_blocks(task.prompt), styles)]
        if not any(defective):
            continue
        blamed = list(statement_scores(code, result.defects, result.elements, task.domain))
        blocks = [b for b, bad in zip(block_spans(code, task.domain), defective) if bad]
        deciding = [s for s, bad in zip(style_spans(code, task.domain), defective) if bad]
        hits = [any(_overlaps(s, b) for b in blamed) for s in deciding]
        inside = sum(any(_inside(b, blk) for blk in blocks) for b in blamed)
        for key in (task.domain, "all"):
            c = counts[key]
            c["blocks"] += len(deciding)
            c["blocks_hit"] += sum(hits)
            c["samples"] += 1
            c["samples_hit"] += all(hits)
            c["blamed"] += len(blamed)
            c["blamed_inside"] += inside
    return {key: {**c, "recall_blocks": c["blocks_hit"] / max(1, c["blocks"]),
                  "recall_samples": c["samples_hit"] / max(1, c["samples"]),
                  "precision": c["blamed_inside"] / max(1, c["blamed"])}
            for key, c in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-tasks", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    quality = blame_quality(args.num_tasks, args.seed)
    payload = run_metadata() | {"benchmark": "blame", "num_tasks": args.num_tasks,
                                "seed": args.seed, "wall_s": round(time.perf_counter() - t0, 1),
                                "quality": quality}
    for key, q in quality.items():
        print(f"{key:6s} defective samples {q['samples']:3d}: deciding statement blamed in "
              f"{q['recall_samples']:.0%} of samples, {q['recall_blocks']:.0%} of blocks; "
              f"precision {q['precision']:.0%}", file=sys.stderr)
    RESULTS_DIR.mkdir(exist_ok=True)
    text = json.dumps(payload)
    (RESULTS_DIR / f"blame_{device_slug()}.json").write_text(json.dumps(payload, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
