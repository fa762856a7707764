"""Overlapped rollouts (`rollout.max_staleness = 1`, `vsdpo/train/rollouts.py`): the next batch
is sampled on a background thread while the current one trains, over real FSDP2 ranks on
gloo; a checkpoint taken with a batch in flight resumes without losing or repeating it.
Rewards are `handmade.LetterScorer`'s, as in test_trainer.py."""

import json
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from handmade import start_single, train_worker, wait_single
from vsdpo.config import ConfigError, load_config
from vsdpo.train.distributed import free_port

ONE_STEP_OFF = ("rollout.max_staleness=1", "train.log_rollouts_every=1")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _trained_tasks(run_dir: Path) -> list[str]:
    """The task of rank 0's first group at each logged step (the rollout log)."""
    logs = sorted((run_dir / "rollouts").glob("step_*/rollouts.json"))
    return [json.loads(p.read_text())["samples"][0]["task_id"] for p in logs]


def test_two_ranks_train_one_step_off(tiny_model_dir, tmp_path):
    run_dir = tmp_path / "run"
    mp.spawn(train_worker, args=(2, free_port(), str(tiny_model_dir), str(run_dir),
                                 ["rollout.max_staleness=1", "train.steps=3"]), nprocs=2)
    metrics = _lines(run_dir / "metrics.jsonl")
    assert [m["staleness"] for m in metrics] == [0, 1, 1]  # the first batch has nothing ahead
    # the engine sampled steps 2 and 3 with the weights of one update before: its log-probs
    # differ from the trainer's by the update (lr 3e-3), not by rounding as in step 1
    assert metrics[0]["logp_mismatch"] < 1e-4
    assert all(m["logp_mismatch"] > 1e-3 for m in metrics[1:]), metrics
    assert all(m["skipped"] == 0 and m["tokens"] > 0 for m in metrics)
    assert (run_dir / "final" / "config.json").is_file()


def test_a_batch_in_flight_at_a_checkpoint_is_trained_once_after_resume(tiny_model_dir,
                                                                        tmp_path):
    whole = start_single(tiny_model_dir, tmp_path / "whole", 0, *ONE_STEP_OFF)
    killed = start_single(tiny_model_dir, tmp_path / "killed", 4, *ONE_STEP_OFF)  # SIGKILL in step 4
    assert wait_single(killed) == -9
    # the checkpoint of step 2 was taken with step 3's batch sampled and not yet trained: it
    # records the task stream after step 2's batch (2 steps × 2 prompts), not after step 3's
    meta = json.loads((tmp_path / "killed/checkpoints/step_000002/meta.json").read_text())
    assert meta["position"] == 4
    resumed = start_single(tiny_model_dir, tmp_path / "killed", 0, *ONE_STEP_OFF)
    assert wait_single(whole) == 0 and wait_single(resumed) == 0
    # every step trained the prompts of the uninterrupted run: none lost, none twice
    assert _trained_tasks(tmp_path / "killed") == _trained_tasks(tmp_path / "whole")
    assert len(set(_trained_tasks(tmp_path / "whole"))) == 4
    whole_m, resumed_m = (_lines(tmp_path / d / "metrics.jsonl") for d in ("whole", "killed"))
    assert [m["step"] for m in resumed_m] == [1, 2, 3, 4]
    untimed = lambda m: {k: v for k, v in m.items() if not k.startswith(("time/", "tokens_per_s"))}  # noqa: E731
    assert [untimed(m) for m in resumed_m[:2]] == [untimed(m) for m in whole_m[:2]]
    # resumed, the batch in flight was sampled again with the checkpoint's weights
    assert [m["staleness"] for m in whole_m] == [0, 1, 1, 1]
    assert [m["staleness"] for m in resumed_m] == [0, 1, 0, 1]


@pytest.mark.parametrize("overrides, message", [
    (["rollout.max_staleness=2"], "rollout.max_staleness must be 0 .* or 1"),
    (["rollout.max_staleness=1", "rollout.engine='vllm'"], "rollout.vllm.sleep = false"),
])
def test_a_staleness_the_trainer_cannot_run_is_refused_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)
