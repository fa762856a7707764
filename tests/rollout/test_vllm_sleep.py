"""The CUDA sleep/wake order of `VLLMGenerator.load_weights`, with a recording engine: CPU
vLLM has no sleep mode, so the order is checked on a stand-in for `LLM`."""

import pytest
import torch

from vsdpo.rollout.vllm import VLLMGenerator


class RecordingLLM:
    def __init__(self, calls: list):
        self.calls = calls
        self.llm_engine = self

    def wake_up(self, tags):
        self.calls.append(f"wake {tags[0]}")

    def collective_rpc(self, method, kwargs):
        self.calls.append(method)
        list(kwargs["weights_iterator"])

    def reset_prefix_cache(self):
        self.calls.append("reset_prefix_cache")

    def reset_encoder_cache(self):
        self.calls.append("reset_encoder_cache")


def test_the_cache_is_emptied_before_each_wake_after_a_sleep(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    engine = object.__new__(VLLMGenerator)  # no vLLM engine: only the sync's bookkeeping
    engine.llm, engine.checkpoint_names, engine.asleep = RecordingLLM(calls), {"w"}, True
    engine.load_weights([("w", torch.zeros(2))])
    assert calls == ["empty_cache", "wake weights", "reload_weights", "empty_cache",
                     "wake kv_cache", "reset_prefix_cache", "reset_encoder_cache"]
    assert not engine.asleep


def test_after_a_level_2_sleep_no_tensor_may_stay_unchanged(monkeypatch):
    """The woken weights are garbage: a frozen tensor the stream leaves out is an error."""
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    engine = object.__new__(VLLMGenerator)
    engine.llm, engine.checkpoint_names = RecordingLLM([]), {"trained", "frozen"}
    engine.asleep = True
    with pytest.raises(ValueError, match="frozen"):
        engine.load_weights([("trained", torch.zeros(2))], unchanged=frozenset({"frozen"}))
