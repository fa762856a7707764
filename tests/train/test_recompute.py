"""The recompute pass and the weight stream, in a gloo group of one on the tiny model."""

import pytest
import torch
from handmade import fixed_samples
from transformers import AutoModelForCausalLM

from kernels import LossConfig
from vsdpo.config import ModelConfig
from vsdpo.model.parallelize import build_policy
from vsdpo.train import step
from vsdpo.train.batch import collate
from vsdpo.train.recompute import recompute_logprobs
from vsdpo.train.teacher import Teacher
from vsdpo.train.weight_sync import full_weights


def _hf_logprobs(model, sample, temperature):
    ids = torch.tensor(sample.prompt_ids + sample.completion_ids)[None]
    with torch.no_grad():
        logits = model(ids).logits[0, len(sample.prompt_ids) - 1:-1].double()
    return torch.log_softmax(logits / temperature, -1).gather(
        1, torch.tensor(sample.completion_ids)[:, None])[:, 0]


def test_recompute_gives_the_trainers_logprobs_and_truncated_importance_weights(
        tiny_model_dir, process_group):
    policy = build_policy(ModelConfig(path=str(tiny_model_dir)), torch.device("cpu"))
    hf = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    g = torch.Generator().manual_seed(3)
    samples = fixed_samples(hf.config.vocab_size)
    trainer_logp = [_hf_logprobs(hf, s, 0.7) for s in samples]
    for s, logp in zip(samples, trainer_logp):  # the engine is off by up to ±1 nat
        s.engine_logprobs = (logp + 2 * torch.rand(len(logp), generator=g,
                                                   dtype=torch.float64) - 1).float()
    engine = [s.engine_logprobs for s in samples]
    out = recompute_logprobs(policy, samples, budget=40, pad_id=0, temperature=0.7,
                             is_weight_clip=2.0)
    weights = []
    for s, logp, engine_T in zip(out, trainer_logp, engine):
        torch.testing.assert_close(s.old_logprobs.double(), logp, atol=1e-5, rtol=0)
        assert s.engine_logprobs is engine_T  # kept where it was: nothing swapped
        expected = torch.exp(logp - engine_T.double()).clamp(max=2.0)
        torch.testing.assert_close(s.is_weight.double(), expected, atol=1e-5, rtol=1e-5)
        weights.append(s.is_weight)
    assert (torch.cat(weights) == 2.0).any() and (torch.cat(weights) < 1.0).any()
    mb = collate(out, pad_id=0)  # the weight rides beside the advantage, not inside it
    assert torch.equal(mb.adv_N, torch.cat([torch.full_like(w, s.advantage)
                                            for s, w in zip(out, weights)]))
    assert torch.equal(mb.is_weight_N, torch.cat(weights))
    assert torch.equal(mb.old_logp_N, torch.cat([s.old_logprobs for s in out]))
    assert torch.equal(mb.engine_logp_N, torch.cat(engine))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_ratio_starts_at_exactly_one_after_recompute(tiny_model_dir, process_group,
                                                         monkeypatch, dtype):
    """Same weights, same samples: the loss's log-probs equal the recomputed old ones bit for
    bit, in fp32 and under bf16 mixed precision."""
    policy = build_policy(ModelConfig(path=str(tiny_model_dir), dtype=dtype), torch.device("cpu"))
    samples = fixed_samples(policy.lm_head_weight.shape[0])
    loss_cfg = LossConfig(temperature=0.7)
    out = recompute_logprobs(policy, samples, budget=40, pad_id=0, temperature=0.7,
                             is_weight_clip=2.0)
    seen = []

    def spy(*args, **kwargs):
        loss, stats = linear_vsdpo_loss(*args, **kwargs)
        if kwargs["config"].pg_coef:  # not the KL-only pass that logs the KL term's gradient
            seen.append((stats, kwargs["mask"]))
        return loss, stats

    linear_vsdpo_loss = step.linear_vsdpo_loss
    monkeypatch.setattr(step, "linear_vsdpo_loss", spy)
    step.accumulate_gradients(policy, Teacher("live", 0.0, policy, None), out, loss_cfg,
                              budget=40, pad_id=0)
    logp_N = torch.cat([stats["logprob"][m_N > 0] for stats, m_N in seen])
    ratio_N = torch.cat([stats["ratio"][m_N > 0] for stats, m_N in seen])
    assert torch.equal(logp_N, torch.cat([s.old_logprobs for s in out]))
    assert torch.equal(ratio_N, torch.ones_like(ratio_N))


def test_the_weight_stream_carries_every_checkpoint_tensor_under_its_name(
        tiny_model_dir, process_group):
    cfg = ModelConfig(path=str(tiny_model_dir), activation_checkpointing=True)
    policy = build_policy(cfg, torch.device("cpu"))
    expected = dict(AutoModelForCausalLM.from_pretrained(tiny_model_dir).named_parameters())
    for bucket_bytes in (1, 1 << 30):  # a bucket per tensor; one bucket for all
        streamed = dict(full_weights(policy, bucket_bytes))
        assert streamed.keys() == expected.keys()
        for name, tensor in streamed.items():
            assert torch.equal(tensor, expected[name]), name
