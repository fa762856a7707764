"""Two nodes for real: two `torchrun` agents on this machine meet through a c10d rendezvous
and train `configs/tiny.toml`, with the command of the multi-node recipe in docs/gpu.md and
the sizes changed (2 nodes × 1 process, a short run: one prompt of two chart samples per
rank, 32 new tokens, the tests' random tiny model instead of the warm-started one, which a
fresh clone would first spend minutes building). Each agent stands for a node; its worker
talks to the other over gloo on 127.0.0.1 as it would over the network. The chart domain
only: no Chromium to start.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vsdpo.config import ConfigError, check_restartable_launch
from vsdpo.train.checkpoint import latest_checkpoint
from vsdpo.train.distributed import free_port

ROOT = Path(__file__).resolve().parents[2]
SHORT = ["rollout.prompts_per_step=1", "rollout.group_size=2", "rollout.max_new_tokens=32",
         "tasks.domains=['chart']", "tasks.num_train=8", "train.warmup_steps=0",
         "train.checkpoint_every=1", "train.log_rollouts_every=0"]
WAIT_S = 300  # for a checkpoint, or for the agents to exit: either takes seconds when idle


def _agents(tmp_path: Path, model_dir: Path, steps: int) -> list[subprocess.Popen]:
    """Both nodes' agents, each running the recipe's command (docs/gpu.md, "Commands")."""
    port, run_dir = free_port(), tmp_path / "run"
    overrides = [f"run_dir='{run_dir}'", f"model.path='{model_dir}'", f"train.steps={steps}",
                 *SHORT]
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--nnodes=2", "--nproc_per_node=1",
           "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=vsdpo-test",
           "--max-restarts=1", "-m", "vsdpo.train", "--config", "configs/tiny.toml",
           *(arg for o in overrides for arg in ("--set", o))]
    env = os.environ | {"OMP_NUM_THREADS": "1", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    agents = []
    for n in range(2):
        with (tmp_path / f"node{n}.log").open("w") as log:
            agents.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log,
                                           stderr=subprocess.STDOUT))
    return agents


def _workers(agent: subprocess.Popen) -> list[int]:
    return [int(pid) for pid in
            Path(f"/proc/{agent.pid}/task/{agent.pid}/children").read_text().split()]


def _stop(agents: list[subprocess.Popen]) -> None:
    """Kill the agents still running, their workers first: torchrun starts each worker in a
    session of its own, so killing an agent alone would leave its worker running."""
    for a in agents:
        if a.poll() is None:
            for pid in _workers(a):
                os.kill(pid, signal.SIGKILL)
            a.kill()
            a.wait()


def _finish(agents: list[subprocess.Popen], tmp_path: Path) -> str:
    """Wait for both agents to exit 0; returns their logs."""
    deadline = time.monotonic() + WAIT_S
    try:
        codes = [a.wait(timeout=max(0.0, deadline - time.monotonic())) for a in agents]
    except subprocess.TimeoutExpired:
        codes = ["timed out"] * len(agents)
    finally:
        _stop(agents)
    logs = "".join((tmp_path / f"node{n}.log").read_text() for n in range(2))
    assert codes == [0, 0], logs[-4000:]
    return logs


def _steps(tmp_path: Path) -> list[int]:
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def test_two_agents_meet_through_c10d_train_two_steps_and_both_exit_0(tmp_path, tiny_model_dir):
    _finish(_agents(tmp_path, tiny_model_dir, steps=2), tmp_path)
    assert _steps(tmp_path) == [1, 2]
    last = tmp_path / "run" / "checkpoints" / "step_000002"
    assert {"rank0.pt", "rank1.pt"} <= {p.name for p in last.iterdir()}  # one rank per node
    assert (tmp_path / "run" / "final" / "config.json").is_file()


def test_a_killed_rank_restarts_the_group_which_resumes_from_its_checkpoint(tmp_path,
                                                                            tiny_model_dir):
    """SIGKILL one node's worker after the first checkpoint: torchrun (`--max-restarts=1`)
    restarts both workers, which resume from the latest checkpoint and finish the run."""
    agents = _agents(tmp_path, tiny_model_dir, steps=3)
    try:
        deadline = time.monotonic() + WAIT_S
        while latest_checkpoint(tmp_path / "run") is None:
            assert all(a.poll() is None for a in agents) and time.monotonic() < deadline
            time.sleep(0.05)
        (worker,) = _workers(agents[1])
        os.kill(worker, signal.SIGKILL)
    except BaseException:
        _stop(agents)
        raise
    logs = _finish(agents, tmp_path)
    resumed = [line for line in logs.splitlines() if "resumed from" in line]
    assert len(resumed) == 1 and "(step 3)" not in resumed[0], logs[-4000:]
    assert _steps(tmp_path) == [1, 2, 3]  # cut back to the checkpoint, then continued
    assert latest_checkpoint(tmp_path / "run").name == "step_000003"


def test_restarts_over_a_shared_rendezvous_store_are_refused_naming_the_fix():
    shared = {"TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_MAX_RESTARTS": "1"}
    with pytest.raises(ConfigError, match="TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"):
        check_restartable_launch(shared)
    check_restartable_launch(shared | {"TORCHELASTIC_MAX_RESTARTS": "0"})
    check_restartable_launch(shared | {"TORCHELASTIC_USE_AGENT_STORE": "False"})
    check_restartable_launch({})  # not under torchrun
