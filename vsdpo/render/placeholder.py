"""A neutral stand-in for an image the render pool cannot fetch.

The pool has no network: a page's remote images would be refused, and Chromium would draw
the broken-image icon and the alt text instead. Layouts that size from the image then
collapse (a cover photo of an AeSlides title slide becomes alt text at the top left). The
pool answers such a request with a flat grey SVG instead, so the image keeps its place. Its
intrinsic size is what the URL asks for where it says (`placehold.co/600x400`,
`picsum.photos/800/600`, `?w=800&h=600`), else `DEFAULT_SIZE`; width/height attributes and
CSS size the box as they would a real image. The URL still counts as missed
(`RenderResult.missed_urls`): the page did not get its picture.
"""

import re
from urllib.parse import parse_qs, urlsplit

DEFAULT_SIZE = (640, 360)  # 16:9, a photo on a 1280×720 slide
FILL = "#d1d5db"  # a mid-light grey: neither the page's text colour nor its background
MAX_SIDE = 4000
CONTENT_TYPE = "image/svg+xml"
HEADER = "X-Vsdpo-Placeholder"  # on the response: html.py names the URL as missed
SIZE_IN_PATH = re.compile(r"(?<![\d.])(\d{2,4})[x×](\d{2,4})(?!\d)")  # 600x400
SIZES_AS_SEGMENTS = re.compile(r"/(\d{2,4})(?:/(\d{2,4}))?/?$")  # picsum.photos/800/600


def requested_size(url: str) -> tuple[int, int]:
    """(width, height) the URL asks for, `DEFAULT_SIZE` where it names none; one side
    given keeps the default's aspect ratio."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    match = SIZE_IN_PATH.search(parts.path) or SIZES_AS_SEGMENTS.search(parts.path)
    if match:
        w, h = int(match.group(1)), int(match.group(2) or match.group(1))
    else:
        w, h = (_first_int(query, names) for names in (("w", "width"), ("h", "height")))
        ratio = DEFAULT_SIZE[1] / DEFAULT_SIZE[0]
        if w and not h:
            h = round(w * ratio)
        elif h and not w:
            w = round(h / ratio)
        elif not w:
            w, h = DEFAULT_SIZE
    return min(max(w, 1), MAX_SIDE), min(max(h, 1), MAX_SIDE)


def placeholder_svg(url: str) -> bytes:
    """The grey picture served for `url`, at its requested size."""
    w, h = requested_size(url)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
            f'viewBox="0 0 {w} {h}"><rect width="{w}" height="{h}" fill="{FILL}"/></svg>'
            ).encode()


def _first_int(query: dict[str, list[str]], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = query.get(name, [""])[0]
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None
