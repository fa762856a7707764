"""Hand-made scoring and a tiny run for the trainer tests: rendering is beside the point
there, so rewards are a deterministic function of the text and the teacher context is a
fixed hint. Importable by spawned and subprocess workers (they add this folder to sys.path).
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from vsdpo.config import load_config
from vsdpo.train.score import Scored

CONTEXT = "Feedback: write more lowercase letters."


class LetterScorer:
    """reward = share of lowercase letters; a sample under 0.5 has an `overlap` defect;
    tokens holding no lowercase letter are blamed (weight alpha)."""

    def __init__(self, alpha: float = 3.0):
        self.alpha = alpha
        self.contexts = []

    async def score(self, tasks, completions, offsets, group_size):
        out = []
        for c, off in zip(completions, offsets):
            text = c.text
            r = sum(ch.islower() for ch in text) / max(1, len(text))
            blamed = torch.tensor([not any(ch.islower() for ch in text[s:e]) for s, e in off])
            credit = 1.0 + (self.alpha - 1.0) * blamed.float()
            self.contexts.append(CONTEXT)
            out.append(Scored(r, bool(text), ["overlap"] if r < 0.5 else [], CONTEXT, credit))
        return out


def tiny_config(model_dir, run_dir, *overrides):
    return load_config(None, [
        f"model.path='{model_dir}'", f"run_dir='{run_dir}'", "rollout.prompts_per_step=2",
        "rollout.group_size=4", "rollout.max_new_tokens=12", "train.steps=4", "train.lr=3e-3",
        "tasks.num_train=8", "tasks.domains=['web']", *overrides])


def spawn_worker(rank, world, port, model_dir, out_dir, overrides):
    """One rank of a gloo group, for `torch.multiprocessing.spawn`: saves the gradients of
    `fixed_samples` to `out_dir/grads.pt` and the weight stream to `out_dir/stream.pt`, then
    trains a run in `out_dir/run`. (One spawn
    for both: starting the processes is most of the cost.)"""
    _join_group(rank, world, port)
    save_sharded_gradients(model_dir, os.path.join(out_dir, "grads.pt"))
    save_weight_stream(model_dir, os.path.join(out_dir, "stream.pt"))
    _train(model_dir, os.path.join(out_dir, "run"), overrides)


def train_worker(rank, world, port, model_dir, run_dir, overrides):
    """One rank of a gloo group that trains a run, for `torch.multiprocessing.spawn`."""
    _join_group(rank, world, port)
    _train(model_dir, run_dir, overrides)


def _join_group(rank, world, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from vsdpo.train.distributed import init_distributed
    init_distributed()


def _train(model_dir, run_dir, overrides):
    """Trains the run, then ends the process (`exit_process`)."""
    import torch.distributed as dist

    from vsdpo.train.distributed import exit_process
    from vsdpo.train.trainer import Trainer
    cfg = tiny_config(model_dir, run_dir, *overrides)
    trainer = Trainer(cfg, scorer=LetterScorer(cfg.feedback.alpha))
    try:
        trainer.train()
    finally:
        trainer.close()
        if dist.is_initialized():  # a vLLM engine's shutdown destroys it already
            dist.destroy_process_group()
    exit_process(0)


class KillingScorer(LetterScorer):
    """A LetterScorer that SIGKILLs its own process on its `kill_at`-th call (mid-step)."""

    def __init__(self, alpha: float, kill_at: int):
        super().__init__(alpha)
        self.calls, self.kill_at = 0, kill_at

    async def score(self, *args):
        self.calls += 1
        if self.calls == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return await super().score(*args)


def run_single(model_dir, run_dir, kill_at, *overrides):
    """A whole single-process run (the body of the kill-and-resume subprocesses)."""
    import torch.distributed as dist

    from vsdpo.train.distributed import exit_process
    from vsdpo.train.trainer import Trainer
    cfg = tiny_config(model_dir, run_dir, *overrides)
    trainer = Trainer(cfg, scorer=KillingScorer(cfg.feedback.alpha, kill_at))
    trainer.train()
    trainer.close()
    if dist.is_initialized():
        dist.destroy_process_group()
    exit_process(0)


def fixed_samples(vocab_size: int, num: int = 8, seed: int = 0):
    """Random but reproducible samples (prompt, teacher context, completion, credit, advantage)."""
    from vsdpo.train.batch import Sample
    g = torch.Generator().manual_seed(seed)
    rand = lambda lo, hi: int(torch.randint(lo, hi, (1,), generator=g))  # noqa: E731
    ids = lambda n: torch.randint(5, vocab_size, (n,), generator=g).tolist()  # noqa: E731
    samples = []
    for i in range(num):
        t = rand(3, 9)
        samples.append(Sample(ids(rand(4, 8)), ids(rand(5, 11)), ids(t),
                              -2.0 + 0.1 * torch.randn(t, generator=g),
                              1.0 + 2.0 * (torch.rand(t, generator=g) < 0.3).float(),
                              float(i % 2) * 2 - 1))
    return samples


def save_sharded_gradients(model_dir, out_path):
    """Each rank takes its share of `fixed_samples`; rank 0 saves the full gradients."""
    import torch.distributed as dist

    from kernels import LossConfig
    from vsdpo.config import ModelConfig
    from vsdpo.model.parallelize import build_policy
    from vsdpo.train.step import accumulate_gradients
    from vsdpo.train.teacher import Teacher
    rank, world = dist.get_rank(), dist.get_world_size()
    policy = build_policy(ModelConfig(path=str(model_dir)), torch.device("cpu"))
    samples = fixed_samples(policy.lm.config.vocab_size)
    share = len(samples) // world
    accumulate_gradients(policy, Teacher("live", 0.0, policy, None),
                         samples[rank * share:(rank + 1) * share], LossConfig(), 10_000, 0)
    grads = {n: p.grad.full_tensor() for n, p in policy.named_parameters()}
    if rank == 0:
        torch.save(grads, out_path)


def save_weight_stream(model_dir, out_path):
    """Stream the sharded policy's full weights (one bucket for all), in fp32 and for a bf16
    engine; rank 0 saves both streams, the bytes each all-gathered, and the most functional
    collectives that were in flight right after a gather."""
    import torch.distributed as dist
    from torch._C._distributed_c10d import _get_work_registry_size

    from vsdpo.config import ModelConfig
    from vsdpo.model.parallelize import build_policy
    from vsdpo.train import weight_sync
    policy = build_policy(ModelConfig(path=str(model_dir)), torch.device("cpu"))
    gather, in_flight = weight_sync._gather, [0]

    def counting_gather(param):
        full = gather(param)
        in_flight.append(_get_work_registry_size())
        return full

    weight_sync._gather = counting_gather
    streams, gathered = {}, {}
    try:
        for dtype in (torch.float32, torch.bfloat16):
            with GatheredBytes() as counted:
                streams[dtype] = dict(weight_sync.full_weights(policy, 1 << 30, dtype))
            gathered[dtype] = counted.bytes
    finally:
        weight_sync._gather = gather
    if dist.get_rank() == 0:
        torch.save({"weights": streams[torch.float32], "weights_bf16": streams[torch.bfloat16],
                    "gathered_bytes": gathered, "in_flight": max(in_flight)}, out_path)


class GatheredBytes(TorchDispatchMode):
    """Counts the bytes all-gathered by functional collectives (what DTensor redistributes
    with) while active."""

    def __enter__(self):
        self.bytes = 0
        return super().__enter__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops._c10d_functional.all_gather_into_tensor.default:
            self.bytes += out.numel() * out.element_size()
        return out


def start_single(model_dir, run_dir, kill_at, *overrides) -> subprocess.Popen:
    """`run_single` of 4 steps (checkpoints at 2) in a fresh process, `overrides` added."""
    args = ", ".join(repr(o) for o in ("train.steps=4", "train.checkpoint_every=2", *overrides))
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from handmade import run_single; "
            f"run_single(sys.argv[2], sys.argv[3], int(sys.argv[4]), {args})")
    from vsdpo.train.distributed import free_port
    env = os.environ | {"MASTER_PORT": str(free_port()), "MASTER_ADDR": "127.0.0.1",
                        "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code, str(Path(__file__).resolve().parent),
                             str(model_dir), str(run_dir), str(kill_at)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_single(proc: subprocess.Popen) -> int:
    """The exit status of a `start_single` run, which must finish or be SIGKILLed."""
    _, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, -9), err[-3000:]
    return proc.returncode
