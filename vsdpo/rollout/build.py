"""The rollout engine a run config names."""

import torch

from vsdpo.config import Config
from vsdpo.model.images import ImageProcessor
from vsdpo.model.pretrained import load_lm
from vsdpo.rollout.base import Generator
from vsdpo.rollout.hf import HFGenerator


def build_generator(cfg: Config, tokenizer, device: torch.device, group: int,
                    images: ImageProcessor | None = None) -> Generator:
    """The rollout engine of `rollout.engine`; `group` numbers this rank's tensor-parallel
    group; `images` is a vision-language policy's image processor."""
    if cfg.rollout.engine == "vllm":
        from vsdpo.rollout.vllm import VLLMGenerator  # imports vLLM: seconds, and only here
        return VLLMGenerator(cfg.model.path, cfg.rollout.vllm, seed=cfg.train.seed + group,
                             dtype=cfg.model.dtype,
                             max_pixels=cfg.model.max_pixels if images else None)
    return HFGenerator(load_lm(cfg.model, device), tokenizer, images)
