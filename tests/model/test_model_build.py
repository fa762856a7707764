"""`build_policy` builds on the meta device, yet its non-persistent buffers (RoPE's `inv_freq`)
equal a CPU-built model's without relying on transformers' `_init_weights` to recompute them
(5.19's does; 5.17's need not)."""

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from vsdpo.config import load_config
from vsdpo.model.parallelize import build_policy


def test_rope_buffers_are_the_cpu_builds_when_init_weights_leaves_them(
        tiny_model_dir, process_group, monkeypatch):
    reference = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(tiny_model_dir))
    expected = dict(reference.named_non_persistent_buffers())
    assert any(name.endswith("inv_freq") for name in expected)
    monkeypatch.setattr(type(reference), "_init_weights", lambda self, module: None)
    cfg = load_config(None, [f"model.path='{tiny_model_dir}'"])
    policy = build_policy(cfg.model, torch.device("cpu"))
    built = dict(policy.lm.named_non_persistent_buffers())
    assert built.keys() == expected.keys()
    for name, buffer in built.items():
        torch.testing.assert_close(buffer, expected[name], rtol=0, atol=0, msg=name)
