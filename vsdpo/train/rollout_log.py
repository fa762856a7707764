"""The rollout log: every `train.log_rollouts_every` steps, rank 0 keeps its first group of
samples (at most 8) — the code, its render, the defects and the statements they blame, the
credit on each token, the teacher's context, the reward's terms — so that a run can be read
sample by sample (`vsdpo report RUN_DIR`; the record's fields: docs/report.md).

    <run_dir>/rollouts/step_000005/rollouts.json   {"step", "alpha", "samples": [...]}
    <run_dir>/rollouts/step_000005/sample_0.png    the render of sample 0, when there is one

A step's directory is written under a temporary name and renamed into place, so a killed run
leaves all of a step or none of it. On resume the steps after the checkpoint are dropped —
they run again — as the lines of metrics.jsonl are: a resumed run's log reads like an
uninterrupted one's. With a TensorBoard writer (`tb`), each render, defect boxes drawn, also
goes beside the scalars.
"""

import json
import shutil
from pathlib import Path

import numpy as np

from vsdpo.feedback.credit import statement_scores
from vsdpo.feedback.extract import extract_code, offsets_into_code
from vsdpo.render.draw import draw_defects

MAX_SAMPLES = 8
RECORDS = "rollouts.json"


class RolloutLog:
    def __init__(self, run_dir: str | Path, every: int, alpha: float, group_size: int,
                 start_step: int, rank: int):
        self.dir = Path(run_dir) / "rollouts"
        self.every, self.alpha = every, alpha
        self.num_samples = min(group_size, MAX_SAMPLES)
        self.on = every > 0 and rank == 0
        self.tb = None
        if rank == 0 and self.dir.is_dir():
            for path in self.dir.iterdir():
                if step_of(path) is None or step_of(path) > start_step:
                    shutil.rmtree(path)

    def write(self, step: int, tasks_N, completions, offsets, scored, adv_N) -> None:
        """Log the first group of this step's samples, if `step` is one to log."""
        if not self.on or step % self.every:
            return
        records, files = [], {}
        for i in range(min(self.num_samples, len(scored))):
            records.append(sample_record(tasks_N[i], completions[i].text, offsets[i], scored[i],
                                         float(adv_N[i]), self.alpha))
            result = scored[i].result
            if result is not None and result.image:
                records[-1]["image"] = f"sample_{i}.png"
                files[records[-1]["image"]] = result.image
                if self.tb is not None:
                    drawn_HW3 = np.asarray(draw_defects(result.image, result.defects))
                    self.tb.add_image(f"rollouts/sample_{i}", drawn_HW3, step, dataformats="HWC")
        document = {"step": step, "alpha": self.alpha, "samples": records}
        files[RECORDS] = json.dumps(document, indent=1).encode()
        _write_dir(self.dir / f"step_{step:06d}", files)


def sample_record(task, text: str, offsets: list[tuple[int, int]], scored, advantage: float,
                  alpha: float) -> dict:
    """One sample as JSON: `offsets[t]` is token t's `(start, end)` in `code`, `weights[t]`
    its credit weight (mean 1 over the sequence); `blamed` lists the statements the defects
    blame (`span` into `code`), each with r and its weight before that normalisation (under
    `feedback.credit = "random"` the weights land on other statements)."""
    code, span = extract_code(text)
    result = scored.result
    defects = result.defects if result is not None else []
    blamed = statement_scores(code, defects, result.elements, task.domain) if defects else {}
    return {
        "task_id": task.id, "domain": task.domain, "prompt": task.prompt, "code": code,
        "ok": scored.ok, "error": result.error if result is not None else None, "image": None,
        "defects": [{"kind": d.kind, "bbox": list(d.bbox), "severity": d.severity,
                     "message": d.message, "spans": [list(s) for s in d.spans]} for d in defects],
        "blamed": [{"span": list(s), "r": r, "weight": 1.0 + (alpha - 1.0) * r}
                   for s, r in blamed.items()],
        "offsets": [list(o) for o in offsets_into_code(offsets, span)],
        "weights": scored.credit_weight_T.tolist(),
        "context": scored.context, "reward": scored.reward, "reward_parts": scored.reward_parts,
        "advantage": advantage, "fidelity": scored.fidelity,
    }


def step_of(path: Path) -> int | None:
    """The step of a `step_000005` directory; None for anything else (an interrupted write)."""
    number = path.name.removeprefix("step_")
    return int(number) if path.name.startswith("step_") and number.isdigit() else None


def _write_dir(final: Path, files: dict[str, bytes]) -> None:
    """Write `files` into `final` all at once, replacing what is there."""
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
