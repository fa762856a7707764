"""Draw defect boxes on a render, for people: `vsdpo render` writes these PNGs."""

import io

from PIL import Image, ImageDraw

from vsdpo.render.types import Defect

COLORS = {"overlap": (230, 25, 75), "text_overflow": (245, 130, 48),
          "clipped_text": (145, 30, 180), "off_canvas": (0, 130, 200),
          "low_contrast": (60, 180, 75), "misaligned": (240, 50, 230),
          "blank": (128, 128, 128), "layout_warning": (170, 110, 40)}


def open_rgb(source: bytes | str) -> Image.Image:
    """A PNG's bytes, or an image file's path, as an RGB image."""
    return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source).convert("RGB")


def draw_defects(png: bytes, defects: list[Defect]) -> Image.Image:
    """The render with each defect's box outlined in its kind's colour and numbered."""
    image = open_rgb(png)
    pen = ImageDraw.Draw(image)
    w, h = image.size
    for n, d in enumerate(defects, 1):
        x0, y0 = max(0, min(d.bbox[0], w - 2)), max(0, min(d.bbox[1], h - 2))
        x1, y1 = max(x0 + 1, min(d.bbox[2], w - 1)), max(y0 + 1, min(d.bbox[3], h - 1))
        color = COLORS.get(d.kind, (255, 0, 0))
        pen.rectangle((x0, y0, x1, y1), outline=color, width=3)
        pen.text((x0 + 3, max(0, y0 - 12) if y0 >= 12 else y0 + 3), f"{n} {d.kind}", fill=color)
    return image
