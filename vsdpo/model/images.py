"""Image prompts for vision-language policies: pixels, grids, and image tokens in the ids.

A prompt's text holds one `<|image_pad|>` per image. The trainer and the transformers engine
expand it to the image's `t·h·w / merge²` tokens, as the model's processor does, so their
forwards see identical ids, pixels and `image_grid_thw`; vLLM takes the unexpanded ids with
the images and expands them itself (pre-expanded ids fail there).

The image processor is the checkpoint's own (`AutoImageProcessor`), the class vLLM's
processor uses too, resized to the run's pixel budget. The multimodal rotary positions
(M-RoPE) come from `mm_token_type_ids`; Qwen2.5-VL without them silently falls back to 1-D
positions, so `Policy` and the engines always pass them.

Legend: P patches of all images, D patch size (channels · temporal · patch²), I images.
"""

from dataclasses import dataclass

import torch
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor


@dataclass
class Images:
    pixels_PD: torch.Tensor
    grid_I3: torch.Tensor  # (t, h, w) patches per image, in prompt order

    @staticmethod
    def cat(parts: "list[Images | None]") -> "Images | None":
        parts = [p for p in parts if p is not None]
        if not parts:
            return None
        return Images(torch.cat([p.pixels_PD for p in parts]),
                      torch.cat([p.grid_I3 for p in parts]))

    def repeat(self, n: int) -> "Images":
        """Each prompt's images `n` times, for `n` samples of one prompt."""
        return Images(self.pixels_PD.repeat(n, 1), self.grid_I3.repeat(n, 1))

    def to(self, device) -> "Images":
        return Images(self.pixels_PD.to(device), self.grid_I3.to(device))


def is_vision_language(path: str) -> bool:
    return hasattr(AutoConfig.from_pretrained(path), "vision_config")


class ImageProcessor:
    """Images → `Images`, and the ids' image pads expanded to the images' token counts."""

    def __init__(self, path: str, max_pixels: int):
        config = AutoConfig.from_pretrained(path)
        self.image_token_id = config.image_token_id
        self.marker_ids = {getattr(config, name) for name in (
            "image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")}
        self.processor = AutoImageProcessor.from_pretrained(path)
        self.processor.size = {"shortest_edge": min(self.processor.size["shortest_edge"],
                                                    max_pixels), "longest_edge": max_pixels}
        self.merge = self.processor.merge_size

    def __call__(self, images: list[Image.Image]) -> Images | None:
        if not images:
            return None
        out = self.processor(images=images, return_tensors="pt")
        return Images(out["pixel_values"], out["image_grid_thw"])

    def num_tokens(self, grid_I3: torch.Tensor) -> list[int]:
        return (grid_I3.prod(dim=1) // self.merge**2).tolist()

    def expand(self, ids: list[int], images: Images | None) -> list[int]:
        """Each image pad of `ids` repeated to its image's token count."""
        counts = self.num_tokens(images.grid_I3) if images is not None else []
        pads = ids.count(self.image_token_id)
        if pads != len(counts):
            raise ValueError(f"the prompt has {pads} image pads for {len(counts)} images")
        counts, out = iter(counts), []
        for t in ids:
            out += [t] * next(counts) if t == self.image_token_id else [t]
        return out
