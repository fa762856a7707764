"""HSDP (`parallel.replicate`) on real gloo processes: 2 replicas × 2 shards train like FSDP
over 4 ranks, and a DCP checkpoint written by 2 ranks resumes on 4 (as 2 × 2) and on 1.

Gradients are compared in fp32 with a tight tolerance, not bit for bit: HSDP averages a
gradient in two rounds (a reduce-scatter inside a replica group, then an all-reduce across
groups) where FSDP averages it in one reduce-scatter, so the same four fp32 terms are added in
another order. That moves an entry by a few ulp of the largest term, so the tolerance is
1e-6 (~8 ulp) of the tensor's largest entry (where the ranks' terms cancel, a relative
tolerance on the entry itself would be meaningless), while a wrong reduction (a sum instead of
a mean, a replica left out) is off by a large fraction of the entry. The losses come from the
same all-gathered weights and the same samples: they are equal exactly.
"""

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict)

from handmade import LetterScorer, _join_group, fixed_samples, tiny_config
from vsdpo.train.distributed import free_port
from vsdpo.train.trainer import Trainer

WORLD = 4
TIMING = ("time/", "tokens_per_s")


def _metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def _trainer(model_dir, run_dir, *overrides) -> Trainer:
    cfg = tiny_config(model_dir, run_dir, *overrides)
    return Trainer(cfg, scorer=LetterScorer(cfg.feedback.alpha))


def _full_state(trainer: Trainer) -> dict:
    """Everything a checkpoint restores, gathered whole on rank 0 (empty on the others), as
    copies: AdamW's `step` comes back as the live tensor, which the next update increments."""
    full = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = {"model": get_model_state_dict(trainer.policy, options=full),
             "optim": get_optimizer_state_dict(trainer.policy, trainer.optimizer, options=full),
             "teacher": get_model_state_dict(trainer.teacher.copy, options=full),
             "scheduler": trainer.scheduler.state_dict()}
    return copy.deepcopy(state)


def _save_worker(rank, port, model_dir, out_dir):
    """2 ranks, FSDP: one step (AdamW moments and the EMA teacher move), checkpointed; rank 0
    keeps the state the checkpoint holds."""
    from vsdpo.train.distributed import exit_process
    _join_group(rank, 2, port)
    trainer = _trainer(model_dir, Path(out_dir) / "run", "train.steps=1")
    trainer.train()
    state = _full_state(trainer)
    if rank == 0:
        torch.save(state, Path(out_dir) / "saved.pt")
    trainer.close()
    exit_process(0)


def _four_rank_worker(rank, port, model_dir, out_dir):
    """4 ranks: the gradients of a fixed batch as FSDP 4 × 1 and HSDP 2 × 2; then the 2-rank
    checkpoint resumed in both layouts, each training one more step."""
    from kernels import LossConfig
    from vsdpo.config import ModelConfig
    from vsdpo.model.parallelize import build_mesh, build_policy
    from vsdpo.train.distributed import exit_process
    from vsdpo.train.step import accumulate_gradients
    from vsdpo.train.teacher import Teacher
    _join_group(rank, WORLD, port)
    out_dir, cpu = Path(out_dir), torch.device("cpu")
    out = {}
    for replicate in (1, 2):
        mesh = build_mesh(replicate, cpu)
        policy = build_policy(ModelConfig(path=model_dir), cpu, mesh)
        samples = fixed_samples(policy.lm.config.vocab_size)[2 * rank:2 * rank + 2]
        sums = accumulate_gradients(policy, Teacher("live", 0.0, policy, None), samples,
                                    LossConfig(), 10_000, 0)
        out[replicate] = {
            "loss": sums["loss"], "placements": str(next(policy.parameters()).placements),
            "shard_group": mesh.get_group("shard").size(),
            "grads": {n: p.grad.full_tensor() for n, p in policy.named_parameters()}}
    for replicate in (1, 2):
        run_dir = out_dir / f"run{replicate}"
        trainer = _trainer(model_dir, run_dir, f"parallel.replicate={replicate}", "train.steps=2")
        out[replicate]["resumed"] = _full_state(trainer)
        trainer.train()
        trainer.close()
    torch.save(out, out_dir / f"rank{rank}.pt")
    exit_process(0)


@pytest.fixture(scope="module")
def saved(tiny_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two_rank_save")
    mp.spawn(_save_worker, args=(free_port(), str(tiny_model_dir), str(out)), nprocs=2)
    return out


@pytest.fixture(scope="module")
def four_ranks(tiny_model_dir, saved, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("four_ranks")
    for replicate in (1, 2):
        shutil.copytree(saved / "run" / "checkpoints", out / f"run{replicate}" / "checkpoints")
        shutil.copy(saved / "run" / "metrics.jsonl", out / f"run{replicate}")
    mp.spawn(_four_rank_worker, args=(free_port(), str(tiny_model_dir), str(out)), nprocs=WORLD)
    return out, [torch.load(out / f"rank{rank}.pt") for rank in range(WORLD)]


def _assert_same(a, b, where: str = "") -> None:
    """Nested state dicts equal: tensors bit for bit, everything else by value."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def test_two_replicas_of_two_shards_give_fsdp_losses_and_gradients(four_ranks):
    _, ranks = four_ranks
    hsdp, fsdp = ranks[0][2], ranks[0][1]
    assert (hsdp["placements"], hsdp["shard_group"]) == ("(Replicate(), Shard(dim=0))", 2)
    assert (fsdp["placements"], fsdp["shard_group"]) == ("(Shard(dim=0),)", WORLD)
    for r in ranks:
        assert r[2]["loss"] == r[1]["loss"] > 0
    assert hsdp["grads"].keys() == fsdp["grads"].keys() and "lm.lm_head.weight" in hsdp["grads"]
    for name, grad in hsdp["grads"].items():
        assert grad.abs().max() > 0, name
        expected = fsdp["grads"][name]
        torch.testing.assert_close(grad, expected, rtol=0, atol=1e-6 * float(expected.abs().max()),
                                   msg=name)


@pytest.mark.parametrize("replicate", [1, 2], ids=["fsdp_4x1", "hsdp_2x2"])
def test_a_two_rank_checkpoint_resumes_on_four_ranks_with_identical_state(saved, four_ranks,
                                                                          replicate):
    _, ranks = four_ranks
    expected = torch.load(saved / "saved.pt")
    assert expected["optim"]["state"] and expected["scheduler"]["last_epoch"] == 1
    _assert_same(ranks[0][replicate]["resumed"], expected)


def test_metrics_reduce_over_all_four_ranks_in_either_layout(four_ranks):
    """The resumed step 2 in both layouts: the same samples and losses (the data position and
    the weights are restored alike), 32 samples in the rates, the engines synced exactly."""
    out, _ = four_ranks
    fsdp, hsdp = _metrics(out / "run1"), _metrics(out / "run2")
    assert [m["step"] for m in hsdp] == [m["step"] for m in fsdp] == [1, 2]
    assert hsdp[0] == fsdp[0]  # step 1: the 2-rank run's line, kept on resume
    step_h, step_f = ({k: v for k, v in m[1].items() if not k.startswith(TIMING)}
                      for m in (hsdp, fsdp))
    assert step_h.pop("grad_norm") == pytest.approx(step_f.pop("grad_norm"), rel=1e-6)
    assert step_h == step_f
    # 4 ranks × 2 prompts × 4 samples
    assert step_h["tokens"] > 0 and (step_h["exec_rate"] * 32).is_integer()
    assert step_h["logp_mismatch"] < 1e-4


def test_a_two_rank_checkpoint_resumes_on_one_rank_with_identical_state(
        tiny_model_dir, saved, process_group, tmp_path):
    shutil.copytree(saved / "run" / "checkpoints", tmp_path / "run" / "checkpoints")
    trainer = _trainer(tiny_model_dir, tmp_path / "run", "train.steps=2")
    try:
        assert trainer.step == 1
        _assert_same(_full_state(trainer), torch.load(saved / "saved.pt"))
    finally:
        trainer.close()
