"""The rollout engine a run config names."""

import torch

from vsdpo.config import Config
from vsdpo.model.inputs import PolicyInputs
from vsdpo.model.pretrained import load_lm
from vsdpo.rollout.base import Generator
from vsdpo.rollout.hf import HFGenerator


def build_generator(cfg: Config, inputs: PolicyInputs, device: torch.device, group: int
                    ) -> Generator:
    """The rollout engine of `rollout.engine` for a policy reading `inputs`; `group` numbers
    this rank's tensor-parallel group."""
    if cfg.rollout.engine == "vllm":
        from vsdpo.rollout.vllm import VLLMGenerator  # imports vLLM: seconds, and only here
        return VLLMGenerator(cfg.model.path, cfg.rollout.vllm, seed=cfg.train.seed + group,
                             dtype=cfg.model.dtype, max_pixels=inputs.max_pixels)
    return HFGenerator(load_lm(cfg.model, device), inputs)
