"""An engine that discards its weights while asleep (vLLM's level 2 on CUDA; modelled here by
one whose sleep zeroes them, since CPU vLLM cannot sleep) holds exactly the trainer's weights
after every sync, a frozen part included, not only after the first."""

import torch

from vsdpo.config import ModelConfig, load_config
from vsdpo.model.parallelize import build_policy
from vsdpo.train.trainer import Trainer
from vsdpo.train.weight_sync import full_weights


class SleepingEngine:
    dtype = torch.float32
    keeps_weights = False

    def __init__(self):
        self.weights = {}

    def sleep(self) -> None:
        self.weights = {name: torch.zeros_like(t) for name, t in self.weights.items()}

    def load_weights(self, weights, unchanged=frozenset()) -> None:
        for name, tensor in weights:
            self.weights[name] = tensor.clone()


def test_a_frozen_part_is_streamed_again_after_a_level_2_sleep(tiny_model_dir, process_group):
    trainer = object.__new__(Trainer)  # only what `sync_weights` reads
    trainer.cfg = load_config(None, [f"model.path='{tiny_model_dir}'"])
    trainer.policy = build_policy(ModelConfig(path=str(tiny_model_dir)), torch.device("cpu"))
    trainer.policy.lm.model.layers[0].requires_grad_(False)  # a frozen part, as a vision tower
    trainer.generator, trainer.weights_synced = SleepingEngine(), False
    for _ in range(2):
        trainer.sync_weights()
        expected = dict(full_weights(trainer.policy, 1 << 30))
        assert trainer.generator.weights.keys() == expected.keys()
        for name, tensor in expected.items():
            assert torch.equal(trainer.generator.weights[name], tensor), name
        trainer.generator.sleep()
