"""Design2Code's high-level score: the CLIP similarity of a render and its reference render.

As Design2Code does, text is masked before embedding (each text element's box is filled with
the background colour it is drawn on; Design2Code inpaints its glyph boxes), so the score
measures the visual layout and images rather than repeating the text columns; and the whole
page is squeezed to a square first, so CLIP's centre crop keeps all of a long page. The
model comes from a local directory (`vsdpo eval --clip DIR`: a transformers CLIP checkpoint
such as clip-vit-base-patch32); nothing is downloaded.
"""

import torch
from PIL import Image, ImageDraw

from vsdpo.render.draw import open_rgb
from vsdpo.render.types import RenderResult


def masked_screenshot(result: RenderResult) -> Image.Image:
    """The render's PNG with every text element's box filled with its background colour."""
    image = open_rgb(result.image)
    pen = ImageDraw.Draw(image)
    for e in result.elements:
        if e.text and e.background is not None:
            pen.rectangle(e.bbox, fill=tuple(e.background))
    return image


def _square(image: Image.Image) -> Image.Image:
    """Squeezed to a square of its shorter side, as Design2Code's `rescale_and_mask` does."""
    side = min(image.size)
    return image.resize((side, side), Image.LANCZOS)


class ClipScorer:
    """Cosine similarity of CLIP image embeddings, on the device the model was put on."""

    def __init__(self, path: str, device: str | torch.device = "cpu"):
        from transformers import CLIPImageProcessor, CLIPModel
        try:
            self.model = CLIPModel.from_pretrained(path, local_files_only=True).to(device).eval()
            self.processor = CLIPImageProcessor.from_pretrained(path, local_files_only=True)
        except OSError as err:
            raise ValueError(f"--clip {path}: not a local CLIP model directory (a transformers "
                             f"CLIPModel with its preprocessor_config.json): {err}") from None
        self.device = device

    @torch.no_grad()
    def similarity(self, results: list[RenderResult],
                   references: list[RenderResult]) -> list[float]:
        """One score in [0, 1] per pair (the cosine clipped at 0; 0 where either has no PNG)."""
        pairs = [k for k, (r, ref) in enumerate(zip(results, references))
                 if r.ok and r.image and ref is not None and ref.image]
        scores = [0.0] * len(results)
        if not pairs:
            return scores
        images = [_square(masked_screenshot(x)) for k in pairs
                  for x in (results[k], references[k])]
        pixels = self.processor(images=images, return_tensors="pt").pixel_values.to(self.device)
        emb_ND = self.model.get_image_features(pixel_values=pixels)
        emb_ND = getattr(emb_ND, "pooler_output", emb_ND)  # transformers 5 may wrap it
        emb_ND = torch.nn.functional.normalize(emb_ND.float(), dim=-1)
        cos_P = (emb_ND[0::2] * emb_ND[1::2]).sum(-1).clamp(min=0.0)
        for k, score in zip(pairs, cos_P.tolist()):
            scores[k] = score
        return scores
