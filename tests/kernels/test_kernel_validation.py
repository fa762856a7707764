"""Bad inputs and bad configs fail early with a ValueError naming the argument."""

import pytest
import torch

from kernels import LossConfig, linear_vsdpo_loss, vsdpo_loss

N, V, H = 4, 9, 5


def _logits_args(**overrides):
    args = dict(
        student_logits=torch.randn(N, V, requires_grad=True),
        teacher_logits=torch.randn(N, V),
        target_ids=torch.tensor([0, 3, 8, 1]),
        credit_weight=torch.ones(N),
        advantages=torch.randn(N),
        old_logprobs=torch.full((N,), -2.0),
        mask=None,
        normalizer=None,
        config=LossConfig(kernel="torch"),
    )
    return {**args, **overrides}


BAD_LOGITS_INPUTS = [
    ("student_logits", dict(student_logits=torch.randn(N, V, 2))),
    ("student_logits", dict(student_logits=torch.randn(N, V, dtype=torch.float16))),
    ("teacher_logits", dict(teacher_logits=torch.randn(N, V + 1))),
    ("target_ids", dict(target_ids=torch.tensor([0, 3, 9, 1]))),
    ("target_ids", dict(target_ids=torch.tensor([0, -1, 2, 1]))),
    ("target_ids", dict(target_ids=torch.tensor([0, 3, 2, 1], dtype=torch.int32))),
    ("credit_weight", dict(credit_weight=torch.tensor([1.0, -0.5, 1.0, 1.0]))),
    ("credit_weight", dict(credit_weight=torch.tensor([1.0, float("nan"), 1.0, 1.0]))),
    ("credit_weight", dict(credit_weight=torch.ones(N + 1))),
    ("advantages", dict(advantages=torch.ones(N, dtype=torch.int64))),
    ("old_logprobs", dict(old_logprobs=torch.zeros(N - 1))),
    ("mask", dict(mask=torch.ones(N, dtype=torch.int64))),
    ("normalizer", dict(normalizer=0.0)),
]


@pytest.mark.parametrize("name,overrides", BAD_LOGITS_INPUTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD_LOGITS_INPUTS)])
def test_bad_logits_level_input_raises_value_error_naming_the_argument(name, overrides):
    with pytest.raises(ValueError, match=name):
        vsdpo_loss(**_logits_args(**overrides))


def _linear_args(**overrides):
    args = _logits_args()
    for key in ("student_logits", "teacher_logits"):
        del args[key]
    args.update(student_hidden=torch.randn(N, H, requires_grad=True), lm_head_weight=torch.randn(V, H),
                teacher_hidden=torch.randn(N, H), teacher_weight=None, chunk_size=None)
    return {**args, **overrides}


BAD_LINEAR_INPUTS = [
    ("lm_head_weight", dict(lm_head_weight=torch.randn(V, H + 1))),
    ("lm_head_weight", dict(lm_head_weight=torch.randn(V, H, dtype=torch.bfloat16))),
    ("teacher_hidden", dict(teacher_hidden=torch.randn(N + 1, H))),
    ("teacher_hidden", dict(teacher_hidden=torch.randn(N, H + 2))),
    ("teacher_weight", dict(teacher_weight=torch.randn(V + 1, H))),
    ("chunk_size", dict(chunk_size=0)),
    ("target_ids", dict(target_ids=torch.tensor([0, 3, 9, 1]))),
]


@pytest.mark.parametrize("name,overrides", BAD_LINEAR_INPUTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD_LINEAR_INPUTS)])
def test_bad_linear_input_raises_value_error_naming_the_argument(name, overrides):
    with pytest.raises(ValueError, match=name):
        linear_vsdpo_loss(**_linear_args(**overrides))


BAD_CONFIGS = [
    ("divergence", dict(divergence="kl")),
    ("jsd_beta", dict(jsd_beta=0.0)),
    ("jsd_beta", dict(jsd_beta=1.0)),
    ("kl_coef", dict(kl_coef=-1.0)),
    ("clip_low", dict(clip_low=1.0)),
    ("clip_high", dict(clip_high=float("inf"))),
    ("temperature", dict(temperature=0.0)),
    ("divergence_ratio_clip", dict(divergence_ratio_clip=0.0)),
    ("kernel", dict(kernel="cuda")),
]


@pytest.mark.parametrize("name,fields", BAD_CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD_CONFIGS)])
def test_bad_loss_config_raises_value_error_naming_the_field(name, fields):
    with pytest.raises(ValueError, match=name):
        LossConfig(**fields)


def test_triton_kernel_on_cpu_tensors_without_the_interpreter_says_how_to_fix_it(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        vsdpo_loss(**_logits_args(config=LossConfig(kernel="triton")))
