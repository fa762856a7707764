"""Images the pool cannot fetch keep their place: a grey placeholder at the requested size,
still named in `missed_urls`, and no defect that only the placeholder causes. Real Chromium
(the shared `html_pool`); the AeSlides title slide mirrors a public AeSlides example."""

import pytest

from vsdpo.render.placeholder import DEFAULT_SIZE, requested_size

REMOTE = "https://images.example.com/cover.jpg"


@pytest.mark.parametrize("url, size", [
    (REMOTE, DEFAULT_SIZE),
    ("https://placehold.co/600x400?text=Hello", (600, 400)),
    ("https://via.placeholder.com/300x200.png", (300, 200)),
    ("https://picsum.photos/800/600", (800, 600)),
    ("https://picsum.photos/200", (200, 200)),
    ("https://images.unsplash.com/photo-1?w=1200&h=600&fit=crop", (1200, 600)),
    ("https://images.unsplash.com/photo-1?w=1280", (1280, 720)),  # the default's 16:9
    ("https://cdn.example.com/2023/05/photo.jpg", DEFAULT_SIZE),  # a date is not a size
])
def test_the_placeholder_takes_the_size_the_url_asks_for(url, size):
    assert requested_size(url) == size


def _box(result, kind):
    assert result.ok, result.error
    x0, y0, x1, y1 = next(e for e in result.elements if e.kind == kind).bbox
    return x0, y0, x1 - x0, y1 - y0


def test_a_remote_image_keeps_its_layout_box(html_pool):
    unsized, attrs, hinted = (html_pool.one("web", page) for page in (
        f'<img src="{REMOTE}" alt="cover" style="display:block">',
        f'<img src="{REMOTE}" alt="cover" width="300" height="120">',
        '<div style="width:400px"><img src="https://picsum.photos/800/600" style="width:100%">'
        '</div>'))
    assert _box(unsized, "img")[2:] == DEFAULT_SIZE  # not the alt text's line
    assert _box(attrs, "img")[2:] == (300, 120)
    assert _box(hinted, "img")[2:] == (400, 300)  # scaled at the URL's 4:3
    for result in (unsized, attrs):
        assert result.missed_urls == [REMOTE]


def test_a_relative_image_gets_the_placeholder_as_design2code_serves_one_file(html_pool):
    result = html_pool.one("web", '<img src="placeholder.jpg" style="display:block">')
    assert _box(result, "img")[2:] == DEFAULT_SIZE
    assert result.missed_urls == ["https://page.vsdpo.invalid/placeholder.jpg"]


# AeSlides' title slides put a cover photo behind the title (deck01 page 1): without the
# placeholder the photo's alt text sat at the top left and the layer around it collapsed.
TITLE_SLIDE = f"""<script src="https://cdn.tailwindcss.com"></script>
<div class="relative w-[1280px] h-[720px] overflow-hidden">
  <div class="absolute inset-0"><img class="w-full h-full object-cover" src="{REMOTE}"
    alt="a misty river landscape"></div>
  <div class="absolute inset-0 flex flex-col items-center justify-center">
    <h1 class="text-6xl font-bold text-white">Dwelling in the Fuchun Mountains</h1>
    <p class="text-2xl text-gray-100 mt-4">A scroll and its two halves</p>
  </div>
</div>"""


def test_a_cover_photo_fills_the_title_slide_with_no_placeholder_defect(html_pool):
    result = html_pool.one("slide", TITLE_SLIDE)
    assert _box(result, "img") == (0, 0, 1280, 720)
    assert result.missed_urls == [REMOTE]
    # white text over the (grey) photo: its background is unknown, so no contrast defect;
    # text over an earlier image is a caption, not an overlap
    assert result.defects == []
