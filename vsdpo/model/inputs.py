"""What the policy reads besides text, as one of two kinds chosen once from the model:
`TextInputs` (a causal LM: token ids only) and `VisionLanguageInputs` (a vision-language
model: the task's image ahead of the student's prompt, and the student's render ahead of
the teacher's). The trainer, the evaluator and the engines call the same methods on either
and never ask which kind they hold; a text policy's images are empty lists and its pixels
None, which every caller passes along unread.

The methods: `task_images` (each task's images for the student), `screenshot` (the images
the teacher adds of a sample's render), `pixels` (images → `Images`), `encode` (prompt text
→ ids, image pads expanded), `generate_kwargs` (what the transformers engine's `generate`
adds for the pixels), `stop_ids` (tokens a completion is cut after), `max_pixels` (the
vLLM engine's image budget) and `save` (the processor files an exported model needs).
"""

from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from vsdpo.config import ModelConfig
from vsdpo.feedback import teacher_screenshot
from vsdpo.model.images import ImageProcessor, Images, is_vision_language

# the images of tasks, one per task (None: it has none), found by the caller's render pool
FindImages = Callable[[list], list]


class TextInputs:
    """A text policy: prompts are token ids, nothing else."""

    stop_ids: frozenset[int] = frozenset()
    max_pixels: int | None = None

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def task_images(self, tasks: list, find: FindImages) -> list[list[Image.Image]]:
        return [[] for _ in tasks]

    def screenshot(self, result) -> list[Image.Image]:
        return []

    def pixels(self, images: list[Image.Image]) -> None:
        return None

    def encode(self, text: str, pixels: None) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def generate_kwargs(self, ids_BP: torch.Tensor, pixels: None) -> dict:
        return {}

    def save(self, out_dir: Path) -> None:
        self.tokenizer.save_pretrained(out_dir)


class VisionLanguageInputs:
    """A vision-language policy: the student sees the task's image (its reference image, else
    its reference render; none when it has neither), the teacher also the student's render
    (`screenshot`: "boxed" with the defects' boxes drawn, "plain", or "none")."""

    def __init__(self, tokenizer, cfg: ModelConfig, screenshot: str):
        self.tokenizer = tokenizer
        self.processor = ImageProcessor(cfg.path, cfg.max_pixels)
        self.stop_ids = frozenset(self.processor.marker_ids)
        self.max_pixels = cfg.max_pixels
        self.screenshot_mode = screenshot

    def task_images(self, tasks: list, find: FindImages) -> list[list[Image.Image]]:
        return [[] if image is None else [image] for image in find(tasks)]

    def screenshot(self, result) -> list[Image.Image]:
        """The student's render (none when the code failed, or with `screenshot = "none"`)."""
        if result is None or self.screenshot_mode == "none":
            return []
        shot = teacher_screenshot(result, boxed=self.screenshot_mode == "boxed")
        return [] if shot is None else [shot]

    def pixels(self, images: list[Image.Image]) -> Images | None:
        return self.processor(images)

    def encode(self, text: str, pixels: Images | None) -> list[int]:
        """Token ids, each image pad expanded to its image's tokens."""
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        return self.processor.expand(ids, pixels)

    def generate_kwargs(self, ids_BP: torch.Tensor, pixels: Images | None) -> dict:
        """The pixels, their grids and `mm_token_type_ids` (the multimodal rotary positions);
        nothing for prompts without images."""
        if pixels is None:
            return {}
        return {"pixel_values": pixels.pixels_PD, "image_grid_thw": pixels.grid_I3,
                "mm_token_type_ids": (ids_BP == self.processor.image_token_id).int()}

    def save(self, out_dir: Path) -> None:
        self.tokenizer.save_pretrained(out_dir)
        self.processor.processor.save_pretrained(out_dir)


PolicyInputs = TextInputs | VisionLanguageInputs


def build_inputs(cfg: ModelConfig, tokenizer, screenshot: str = "none") -> PolicyInputs:
    """The kind of the model at `cfg.path`, read from its config."""
    if is_vision_language(cfg.path):
        return VisionLanguageInputs(tokenizer, cfg, screenshot)
    return TextInputs(tokenizer)
