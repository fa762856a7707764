"""The trainer and the evaluator with the real render pool (Chromium, sandboxed matplotlib)
on a tiny random model: its programs are garbage, so this checks the wiring — renders,
rewards, feedback contexts, the metric table — not that anything improves."""

import json
from pathlib import Path

from vsdpo.apps.evaluate import evaluate, format_table
from vsdpo.train.trainer import Trainer

from handmade import tiny_config

SMALL = ["rollout.max_new_tokens=16", "tasks.domains=['web', 'chart']", "tasks.num_eval=4",
         "render.num_browsers=1", "render.chart.workers=1"]


def test_one_step_with_the_render_pool_logs_render_metrics(tiny_model_dir, tmp_path,
                                                           process_group):
    trainer = Trainer(tiny_config(tiny_model_dir, tmp_path / "run", "train.steps=1", *SMALL))
    contexts = []
    score = trainer.scorer.score

    async def spy(*args):
        scored = await score(*args)
        contexts.extend(s.context for s in scored)
        return scored
    trainer.scorer.score = spy
    trainer.train()
    trainer.close()
    (metrics,) = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert 0.0 <= metrics["reward"] <= 1.0 and 0.0 <= metrics["exec_rate"] <= 1.0
    assert metrics["time/render"] > 0
    assert 0.0 <= metrics["clean_complete"] <= metrics["content_fidelity"] <= 1.0
    # every teacher context quotes its task and carries feedback on the attempt
    assert len(contexts) == 8 and all("Feedback on a previous attempt" in c for c in contexts)


def test_evaluation_reports_rates_and_prints_a_table(tiny_model_dir, tmp_path):
    cfg = tiny_config(tiny_model_dir, tmp_path / "run", *SMALL)
    metrics = evaluate(cfg)
    assert {"exec_rate", "defect_rate", "reward", "defect_rate/overlap", "content_fidelity",
            "clean_complete", "chartmimic/mean", "design2code/mean"} <= metrics.keys()
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    values = {k: v for k, v in metrics.items() if "@" not in k}
    for k, v in values.items():  # every value inside its bootstrap interval
        assert metrics[f"{k}@lo"] <= v <= metrics[f"{k}@hi"], k
    rates = [k for k in values if k.endswith("_rate") or "rate/" in k or k == "clean_complete"]
    assert all((values[k] * 4).is_integer() for k in rates)  # 4 prompts, one sample each
    table = format_table({"before": metrics, "after": metrics})
    assert table.splitlines()[0].split() == ["metric", "before", "after"]
    assert "chartmimic/text" in table and f"[{metrics['reward@lo']:.3f}," in table
    assert Path(cfg.model.path).is_dir()
