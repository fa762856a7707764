"""The trainer end to end on a tiny random model: FSDP2 over gloo, resume, overfitting, export.

Rewards come from `handmade.LetterScorer` (the share of lowercase letters), not from
rendering: these tests are about the optimisation loop; the render pool has its own tests.
"""

import json
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from transformers import AutoConfig, AutoModelForCausalLM

from kernels import LossConfig
from handmade import (CONTEXT, LetterScorer, fixed_samples, spawn_worker, start_single,
                      tiny_config, wait_single)
from vsdpo.config import ConfigError, ModelConfig
from vsdpo.model.parallelize import build_policy
from vsdpo.train.batch import split_micro_batches
from vsdpo.train.distributed import free_port
from vsdpo.train.step import accumulate_gradients, train_step
from vsdpo.train.teacher import Teacher
from vsdpo.train.trainer import Trainer
from vsdpo.warmstart.tokenizer import format_teacher_prompt

TIMING = ("time/", "tokens_per_s")


def _metrics(run_dir) -> list[dict]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.startswith(TIMING)}
            for line in lines]


def _trainer(tiny_model_dir, tmp_path, *overrides) -> Trainer:
    cfg = tiny_config(tiny_model_dir, tmp_path / "run", *overrides)
    return Trainer(cfg, scorer=LetterScorer(cfg.feedback.alpha))


def _one_batch(trainer: Trainer):
    batch = trainer.request(0)()
    tasks_N, completions, offsets = batch.tasks_N, batch.completions, batch.offsets
    scored = trainer.render_and_score(tasks_N, completions, offsets)
    return trainer.make_samples(tasks_N, completions, scored, batch.task_images, 0)


@pytest.fixture(scope="module")
def two_ranks(tiny_model_dir, tmp_path_factory) -> Path:
    """One 2-process gloo job: sharded gradients of a fixed batch, then a 3-step run."""
    out = tmp_path_factory.mktemp("two_ranks")
    mp.spawn(spawn_worker, args=(2, free_port(), str(tiny_model_dir), str(out),
                                 ["train.steps=3", "train.checkpoint_every=2"]), nprocs=2)
    return out


def test_two_gloo_processes_train_checkpoint_and_export(two_ranks):
    run_dir = two_ranks / "run"
    metrics = _metrics(run_dir)
    assert [m["step"] for m in metrics] == [1, 2, 3]
    # 2 ranks × 2 prompts × 4 samples: rates are multiples of 1/16
    assert all(m["tokens"] > 0 and (m["exec_rate"] * 16).is_integer() for m in metrics)
    # each rank's generator copy got every update: it scores its samples like the trainer
    assert all(m["logp_mismatch"] < 1e-4 for m in metrics)
    ckpt = run_dir / "checkpoints" / "step_000003"
    assert {"rank0.pt", "rank1.pt", "meta.json"} <= {p.name for p in ckpt.iterdir()}
    assert (run_dir / "checkpoints" / "step_000002").is_dir()
    assert AutoModelForCausalLM.from_pretrained(run_dir / "final").config.num_hidden_layers == 2


def test_resume_continues_the_same_trajectory(tiny_model_dir, tmp_path):
    whole = start_single(tiny_model_dir, tmp_path / "whole", kill_at=0)
    killed = start_single(tiny_model_dir, tmp_path / "killed", kill_at=4)  # SIGKILL during step 4
    assert wait_single(killed) == -9
    assert len(_metrics(tmp_path / "killed")) == 3  # step 3 logged, checkpoint at step 2
    resumed = start_single(tiny_model_dir, tmp_path / "killed", kill_at=0)
    assert wait_single(whole) == 0 and wait_single(resumed) == 0
    assert _metrics(tmp_path / "killed") == _metrics(tmp_path / "whole")


@pytest.mark.parametrize("overrides", [
    ("loss.pg_coef=0", "train.teacher=frozen"),   # self-distillation towards a fixed teacher
    ("loss.kl_coef=0",),                          # GRPO only
], ids=["distillation", "grpo"])
def test_a_fixed_batch_loss_falls_when_overfitting(tiny_model_dir, tmp_path, process_group,
                                                   overrides):
    trainer = _trainer(tiny_model_dir, tmp_path, "train.lr=3e-3", *overrides)
    samples = _one_batch(trainer)
    torch.manual_seed(0)
    with torch.no_grad():  # move the student away from its frozen teacher
        for p in trainer.policy.parameters():
            p.to_local().add_(0.3 * torch.randn_like(p.to_local()))
    losses = []
    for _ in range(15):
        sums = train_step(trainer.policy, trainer.teacher, trainer.optimizer, trainer.scheduler,
                          samples, trainer.cfg.loss, 10_000, 1.0, trainer.tokenizer.pad_token_id)
        losses.append(sums["loss"] / sums["tokens"])
    trainer.close()
    assert losses[-1] < losses[0] - 0.5 * abs(losses[0]), losses


def test_micro_batching_does_not_change_the_gradient(tiny_model_dir, tmp_path, process_group):
    grads, counts = [], []
    for budget in (40, 100_000):  # one sample per micro-batch vs the whole batch at once
        torch.manual_seed(0)
        trainer = _trainer(tiny_model_dir, tmp_path / str(budget))
        samples = _one_batch(trainer)
        counts.append(len(split_micro_batches(samples, budget, trainer.tokenizer.pad_token_id)))
        accumulate_gradients(trainer.policy, trainer.teacher, samples, trainer.cfg.loss, budget,
                             trainer.tokenizer.pad_token_id)
        grads.append([p.grad.full_tensor().clone() for p in trainer.policy.parameters()])
        trainer.close()
    assert counts == [len(samples), 1]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_blame_and_the_split_gradient_norms_do_not_depend_on_micro_batching(tiny_model_dir,
                                                                              process_group):
    policy = build_policy(ModelConfig(path=str(tiny_model_dir)), torch.device("cpu"))
    teacher = Teacher("live", 0.0, policy, None)
    samples = fixed_samples(policy.lm.config.vocab_size)
    for s in samples:  # weights renormalised per sequence, as the scorer's are
        s.credit_weight = s.credit_weight / s.credit_weight.mean()
    blamed = sum(int((s.credit_weight > s.credit_weight.min()).sum()) for s in samples)

    def sums(budget, **coefs):
        out = accumulate_gradients(policy, teacher, samples, LossConfig(**coefs), budget, 0)
        policy.zero_grad(set_to_none=True)
        return out
    whole, split = sums(100_000), sums(30)
    kl_only, pg_only = sums(100_000, pg_coef=0.0), sums(100_000, kl_coef=0.0)
    assert whole["blamed_tokens"] == split["blamed_tokens"] == blamed > 0
    for key in ("divergence_blamed", "grad_sq_kl", "grad_sq_pg"):
        assert split[key] == pytest.approx(whole[key], rel=1e-4), key
    # each term's norm is the norm of that loss alone
    assert whole["grad_sq_kl"] == pytest.approx(kl_only["grad_sq_kl"], rel=1e-4)
    assert whole["grad_sq_pg"] == pytest.approx(pg_only["grad_sq_pg"], rel=1e-4)
    assert kl_only["grad_sq_pg"] == pg_only["grad_sq_kl"] == 0.0 < whole["grad_sq_pg"]


def test_teacher_contexts_reach_the_teacher_forward(tiny_model_dir, tmp_path, process_group):
    trainer = _trainer(tiny_model_dir, tmp_path, "train.steps=1", "train.teacher=live")
    seen = []
    hidden = trainer.teacher.hidden
    trainer.teacher.hidden = lambda ids_BL, mask_BL, images: (seen.append((ids_BL, mask_BL)),
                                                              hidden(ids_BL, mask_BL, images))[1]
    samples = _one_batch(trainer)
    train_step(trainer.policy, trainer.teacher, trainer.optimizer, trainer.scheduler, samples,
               trainer.cfg.loss, 10_000, 1.0, trainer.tokenizer.pad_token_id)
    trainer.close()
    context = trainer.tokenizer(format_teacher_prompt(CONTEXT), add_special_tokens=False).input_ids
    (ids_BL, mask_BL), = seen
    assert len(ids_BL) == len(samples)
    for row, length, s in zip(ids_BL, mask_BL.sum(1), samples):
        assert row[:length].tolist() == context + s.completion_ids[:-1]  # the last: target only


def test_the_exported_model_holds_the_trained_weights(tiny_model_dir, tmp_path, process_group):
    trainer = _trainer(tiny_model_dir, tmp_path, "train.steps=2", "train.lr=1e-2")
    trainer.train()
    trainer.close()
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "final")
    initial = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trained = {k.removeprefix("lm."): p.full_tensor() for k, p in trainer.policy.named_parameters()}
    for name, p in exported.named_parameters():
        torch.testing.assert_close(p, trained[name])
    assert not torch.equal(exported.lm_head.weight, initial.lm_head.weight)


def test_sharded_gradients_equal_the_single_process_average(tiny_model_dir, two_ranks,
                                                            process_group):
    """Two FSDP ranks (head weight used outside the model's forward) give the mean of the
    two halves' gradients, the lm_head's included."""
    sharded = torch.load(two_ranks / "grads.pt")
    policy = build_policy(ModelConfig(path=str(tiny_model_dir)), torch.device("cpu"))
    samples = fixed_samples(policy.lm.config.vocab_size)
    halves = []
    for half in (samples[:4], samples[4:]):
        accumulate_gradients(policy, Teacher("live", 0.0, policy, None), half, LossConfig(),
                             10_000, 0)
        halves.append({n: p.grad.full_tensor().clone() for n, p in policy.named_parameters()})
        policy.zero_grad(set_to_none=True)
    assert sharded.keys() == halves[0].keys() and "lm.lm_head.weight" in sharded
    for name, grad in sharded.items():
        torch.testing.assert_close(grad, (halves[0][name] + halves[1][name]) / 2,
                                   atol=1e-6, rtol=1e-4, msg=name)


def test_two_ranks_stream_full_weights_one_gather_at_a_time(tiny_model_dir, two_ranks):
    """On gloo no functional collective is left in flight while the next one starts: several
    at once corrupt the heap (`vsdpo/train/weight_sync.py`)."""
    saved = torch.load(two_ranks / "stream.pt")
    assert saved["in_flight"] == 0
    expected = dict(AutoModelForCausalLM.from_pretrained(tiny_model_dir).named_parameters())
    assert saved["weights"].keys() == expected.keys()
    for name, tensor in saved["weights"].items():
        assert torch.equal(tensor, expected[name]), name


def test_a_bf16_engine_gets_its_weights_from_half_the_gathered_bytes(tiny_model_dir,
                                                                     two_ranks):
    """Shards are cast to the engine's dtype before the all-gather, not after."""
    saved = torch.load(two_ranks / "stream.pt")
    fp32, bf16 = (saved["gathered_bytes"][dtype] for dtype in (torch.float32, torch.bfloat16))
    expected = dict(AutoModelForCausalLM.from_pretrained(tiny_model_dir).named_parameters())
    assert fp32 >= 4 * sum(p.numel() for p in expected.values()) > 0
    assert bf16 * 2 == fp32
    for name, tensor in saved["weights_bf16"].items():
        assert torch.equal(tensor, expected[name].to(torch.bfloat16)), name


def test_activation_checkpointing_gives_the_same_gradients_and_syncs(tiny_model_dir,
                                                                     process_group):
    samples = fixed_samples(AutoConfig.from_pretrained(tiny_model_dir).vocab_size)
    grads = []
    for checkpointing in (False, True):
        policy = build_policy(ModelConfig(path=str(tiny_model_dir),
                                          activation_checkpointing=checkpointing),
                              torch.device("cpu"))
        accumulate_gradients(policy, Teacher("live", 0.0, policy, None), samples, LossConfig(),
                             10_000, 0)
        grads.append({n.replace("._checkpoint_wrapped_module", ""): p.grad.full_tensor()
                      for n, p in policy.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-5)
    # the rollout copy takes the checkpointed policy's weights under their plain names
    full = get_model_state_dict(policy, options=StateDictOptions(full_state_dict=True))
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    plain.load_state_dict({k.removeprefix("lm."): v for k, v in full.items()}, strict=True)
