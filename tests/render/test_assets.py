"""CDN assets from the offline cache: pages written the way models write them get their
fonts, icons and frameworks, measured through `RenderResult.elements` as a user would see
them. The `html_pool` has the default config (JavaScript on: Tailwind's Play CDN and Chart.js
need it); the `assetless_pool` neither serves assets nor runs scripts, as before the cache.
"""

import base64
import io

import pytest
from PIL import Image

from vsdpo.render import Artifact
from vsdpo.render.assets import AssetResolver
from vsdpo.render.assets_fetch import DEFAULT_CACHE

pytestmark = pytest.mark.usefixtures("asset_cache")  # skip (or fail in CI) without it

INTER = "https://fonts.googleapis.com/css2?family=Inter:wght@400;700&display=swap"
TEXT = '<p style="font-family: Inter, serif; font-size: 40px; display: inline-block">Hamburgefonstiv</p>'


def _web(pool, *pages):
    return pool.render([Artifact("web", page) for page in pages])


def _box(result, kind: str, index: int = 0):
    assert result.ok, result.error
    return [e for e in result.elements if e.kind == kind][index]


def _width(result, kind: str) -> float:
    x0, _, x1, _ = _box(result, kind).bbox
    return x1 - x0


@pytest.mark.parametrize("url,path", [
    ("https://cdn.tailwindcss.com", "tailwindcss-cdn@3/tailwindcss.js"),
    ("https://cdn.tailwindcss.com?plugins=forms", "tailwindcss-cdn@3/tailwindcss-with-forms.js"),
    ("https://cdn.tailwindcss.com?plugins=forms,typography",
     "tailwindcss-cdn@3/tailwindcss-with-all-plugins.js"),
    ("https://cdn.jsdelivr.net/npm/@tailwindcss/browser@4",
     "@tailwindcss/browser@4/dist/index.global.js"),
    ("https://cdn.jsdelivr.net/npm/bootstrap@5.3.0/dist/css/bootstrap.min.css",
     "bootstrap@5/dist/css/bootstrap.min.css"),
    ("https://unpkg.com/echarts@5.4.3/dist/echarts.js", "echarts@5/dist/echarts.min.js"),
    ("https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.4.0/css/all.min.css",
     "@fortawesome/fontawesome-free@6/css/all.min.css"),
    ("https://cdnjs.cloudflare.com/ajax/libs/twitter-bootstrap/5.3.2/js/bootstrap.bundle.min.js",
     "bootstrap@5/dist/js/bootstrap.bundle.min.js"),
    ("https://cdnjs.cloudflare.com/ajax/libs/Chart.js/4.4.1/chart.umd.min.js",
     "chart.js@4/dist/chart.umd.min.js"),
    ("https://use.fontawesome.com/releases/v5.15.4/css/all.css",
     "@fortawesome/fontawesome-free@5/css/all.min.css"),
    ("https://stackpath.bootstrapcdn.com/bootstrap/4.5.2/css/bootstrap.min.css",
     "bootstrap@4/dist/css/bootstrap.min.css"),
    ("https://code.jquery.com/jquery-3.6.0.min.js", "jquery@3/dist/jquery.min.js"),
    ("https://cdn.jsdelivr.net/npm/chart.js", "chart.js@4/dist/chart.umd.min.js"),
    ("https://cdn.jsdelivr.net/npm/bootstrap@3.4.1/dist/css/bootstrap.min.css", None),
    ("https://fonts.gstatic.com/s/inter/v13/UcCO3FwrK3iLTeHuS_fvQtMwCp50KnMw2boKoduKmMEVuLyfAZ9hjQ.woff2", None),
    ("https://unpkg.com/bootstrap@5/../../../../etc/passwd", None),
])
def test_cdn_urls_map_to_the_cached_file_of_the_same_major(url, path):
    served = AssetResolver().resolve(url)
    if path is None:
        assert served is None
    else:  # the file, or the file with a postscript (Chart.js)
        body = served.body or served.path.read_bytes()
        assert (DEFAULT_CACHE / path).read_bytes() in body


def test_a_google_font_is_drawn_with_the_served_face(html_pool):
    woff2 = (DEFAULT_CACHE / "@fontsource-variable/inter@5/files/inter-latin-wght-normal.woff2")
    inline = ("<style>@font-face{font-family:Inter;src:url(data:font/woff2;base64,"
              f"{base64.b64encode(woff2.read_bytes()).decode()}) format('woff2')}}</style>")
    linked, direct, fallback = _web(
        html_pool, f'<link href="{INTER}" rel="stylesheet">' + TEXT, inline + TEXT, TEXT)
    assert linked.missed_urls == [] and linked.substituted_fonts == []
    assert _width(linked, "p") == pytest.approx(_width(direct, "p"), abs=0.5)
    assert abs(_width(linked, "p") - _width(fallback, "p")) > 10


def test_a_google_font_we_lack_is_named_and_a_cjk_one_drawn_by_the_system_font(html_pool):
    link = ("https://fonts.googleapis.com/css2?family=Lobster&family=Noto+Sans+SC:wght@400;700"
            "&display=swap")
    result = html_pool.one("web", f'<link href="{link}" rel="stylesheet"><p>hi</p>')
    assert result.missed_urls == []
    assert result.substituted_fonts == ["Lobster -> the page's fallback font",
                                        "Noto Sans SC -> Noto Sans CJK SC"]


def test_a_material_icon_is_one_glyph_not_the_word(html_pool, assetless_pool):
    page = ('<link href="https://fonts.googleapis.com/icon?family=Material+Icons" '
            'rel="stylesheet"><i class="material-icons" style="font-size: 28px">person</i>')
    served = html_pool.one("web", page)
    x0, y0, x1, y1 = _box(served, "i").bbox
    assert x1 - x0 == pytest.approx(28, abs=1) and y1 - y0 == pytest.approx(28, abs=1)
    assert _width(assetless_pool.one("web", page), "i") > 50  # the word "person"


def test_a_font_awesome_6_icon_is_one_glyph(html_pool, assetless_pool):
    page = ('<link rel="stylesheet" href="https://cdnjs.cloudflare.com/ajax/libs/font-awesome/'
            '6.4.0/css/all.min.css"><i class="fa-solid fa-user" style="font-size: 28px"></i>')
    assert 20 <= _width(html_pool.one("web", page), "i") <= 30  # fa-user: 0.875 em
    assert _width(assetless_pool.one("web", page), "i") == 0


@pytest.mark.parametrize("link, icon", [
    ("https://maxcdn.bootstrapcdn.com/font-awesome/4.7.0/css/font-awesome.min.css",
     '<i class="fa fa-user"></i>'),
    ("https://use.fontawesome.com/releases/v5.15.4/css/all.css", '<i class="fas fa-user"></i>'),
    ("https://cdn.jsdelivr.net/npm/bootstrap-icons@1.11.3/font/bootstrap-icons.min.css",
     '<i class="bi bi-person"></i>'),
    ("https://fonts.googleapis.com/css2?family=Material+Symbols+Outlined",
     '<span class="material-symbols-outlined">person</span>'),
])
def test_every_icon_font_draws_one_glyph(html_pool, assetless_pool, link, icon):
    page = f'<link rel="stylesheet" href="{link}"><div style="font-size: 28px">{icon}</div>'
    tag = icon[1:icon.index(" ")]
    served = html_pool.one("web", page)
    assert served.missed_urls == [] and 14 <= _width(served, tag) <= 34
    unserved = _width(assetless_pool.one("web", page), tag)  # nothing, or the word "person"
    assert unserved == 0 or unserved > 50


def test_bootstrap_5_styles_the_container_and_the_button(html_pool):
    page = ('<link href="https://cdn.jsdelivr.net/npm/bootstrap@5.3.0/dist/css/bootstrap.min.css"'
            ' rel="stylesheet"><div class="container"><button class="btn btn-primary">Go'
            '</button></div>')
    result = html_pool.one("web", page)
    assert _width(result, "div") == 1140  # the xl container at a 1280 px viewport
    button = _box(result, "button")
    assert button.background == (13, 110, 253)  # --bs-primary
    assert button.bbox[3] - button.bbox[1] == pytest.approx(38, abs=0.5)


def test_tailwind_play_cdn_styles_the_page(html_pool):
    page = ('<script src="https://cdn.tailwindcss.com"></script>'
            '<h1 class="text-5xl font-bold">Title</h1><div class="w-64 h-8 bg-blue-500"></div>')
    result = html_pool.one("web", page)
    assert result.missed_urls == []
    assert _box(result, "h1").font_size == 48
    assert _width(result, "div") == 256


# An AeSlides-style slide as models write them: Tailwind Play CDN with a `tailwind.config`,
# `@apply` in a text/tailwindcss style, an arbitrary-value height, Google Fonts' Noto Serif
# SC, Material Icons and Chinese text.
SLIDE = """<!DOCTYPE html><html lang="zh"><head><meta charset="UTF-8">
<script src="https://cdn.tailwindcss.com"></script>
<link href="https://fonts.googleapis.com/css2?family=Noto+Serif+SC:wght@400;700&display=swap" rel="stylesheet">
<link href="https://fonts.googleapis.com/icon?family=Material+Icons" rel="stylesheet">
<script>
tailwind.config = {theme: {extend: {colors: {brand: {DEFAULT: '#0f4c81', light: '#e8f1fa'}},
  fontFamily: {serif: ['"Noto Serif SC"', 'serif']}}}}
</script>
<style type="text/tailwindcss">
  @layer components { .card { @apply bg-brand-light rounded-lg p-6; } }
</style></head>
<body>
<div class="ppt-slide h-[720px] flex bg-white font-serif">
  <section class="w-1/3 bg-brand text-white p-10 flex flex-col justify-center">
    <h2 class="text-5xl font-bold">团队介绍</h2>
    <p class="text-lg mt-4">Team overview</p>
  </section>
  <section class="flex-1 p-10 grid grid-cols-2 gap-6 content-center">
    <div class="card"><i class="material-icons" style="font-size: 28px">person</i>
      <h3 class="text-lg font-bold">张伟</h3></div>
    <div class="card"><i class="material-icons" style="font-size: 28px">group</i>
      <h3 class="text-lg font-bold">李娜</h3></div>
  </section>
</div></body></html>"""


def test_a_tailwind_slide_renders_as_its_author_meant(html_pool, assetless_pool):
    result = html_pool.one("slide", SLIDE)
    assert result.missed_urls == [] and result.defects == []
    assert result.substituted_fonts == ["Noto Serif SC -> Noto Serif CJK SC"]
    root = _box(result, "div")
    assert root.bbox == (0, 0, 1280, 720) and root.font_size == 16  # body margin 0 (preflight)
    heading, cards = _box(result, "h2"), [e for e in result.elements if e.kind == "div"][1:]
    assert heading.font_size == 48 and heading.background == (15, 76, 129)  # config colour
    assert _box(result, "p").font_size == 18
    assert [c.background for c in cards] == [(232, 241, 250)] * 2  # @apply of a config colour
    icons = [e for e in result.elements if e.kind == "i"]
    assert [(round(i.bbox[2] - i.bbox[0]), round(i.bbox[3] - i.bbox[1])) for i in icons] == [(28, 28)] * 2
    # before the cache: a block inside the body's 8px margin, a 24px h2, the word "person"
    before = assetless_pool.one("slide", SLIDE)
    x0, _, x1, _ = _box(before, "div").bbox
    assert (x0, x1 - x0) == (8, 1264) and _box(before, "h2").font_size == 24
    assert _width(before, "i") > 50


def test_chart_js_draws_its_final_chart(html_pool):
    page = """<script src="https://cdn.jsdelivr.net/npm/chart.js"></script>
<div style="width: 600px; height: 300px"><canvas id="c"></canvas></div>
<script>
new Chart(document.getElementById('c'), {type: 'bar', data: {labels: ['A', 'B', 'C'],
  datasets: [{label: 'Sales', data: [12, 19, 3], backgroundColor: '#36a2eb'}]}});
</script>"""
    result = html_pool.one("web", page)
    x0, y0, x1, y1 = _box(result, "canvas").bbox
    assert (x1 - x0, y1 - y0) == (600, 300)
    crop = Image.open(io.BytesIO(result.image)).convert("RGB").crop((x0, y0, x1, y1))
    bar_px = sum(1 for px in crop.get_flattened_data() if px == (54, 162, 235))
    assert bar_px > 40_000  # the bars at full height (12 + 19 + 3 of 20), not mid-animation


def test_jquery_bootstrap_js_and_echarts_run_from_the_cache(html_pool):
    page = """<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<script src="https://cdn.jsdelivr.net/npm/bootstrap@5.3.2/dist/js/bootstrap.bundle.min.js"></script>
<script src="https://cdn.jsdelivr.net/npm/echarts@5.5.0/dist/echarts.min.js"></script>
<p id="libs"></p><div id="chart" style="width: 600px; height: 300px"></div>
<script>
$('#libs').text(typeof bootstrap.Modal + ' ' + echarts.version.split('.')[0]);
echarts.init(document.getElementById('chart'), null, {renderer: 'canvas'}).setOption({
  animation: false, xAxis: {data: ['A', 'B']}, yAxis: {},
  series: [{type: 'bar', data: [5, 9], itemStyle: {color: '#36a2eb'}}]});
</script>"""
    result = html_pool.one("web", page)
    assert result.missed_urls == [] and _box(result, "p").text == "function 5"
    x0, y0, x1, y1 = _box(result, "canvas").bbox
    crop = Image.open(io.BytesIO(result.image)).convert("RGB").crop((x0, y0, x1, y1))
    assert sum(1 for px in crop.get_flattened_data() if px == (54, 162, 235)) > 10_000  # bars


def test_only_refused_requests_are_missed(html_pool, assetless_pool):
    unknown = "https://cdn.example.org/lib/1.0/style.css"
    known = "https://cdn.jsdelivr.net/npm/bootstrap@5.3.0/dist/css/bootstrap.min.css"
    page = f'<link rel="stylesheet" href="{unknown}"><link rel="stylesheet" href="{known}"><p>x</p>'
    assert html_pool.one("web", page).missed_urls == [unknown]
    assert assetless_pool.one("web", page).missed_urls == [unknown, known]


def test_tailwind_v3_utilities_beat_an_icon_fonts_class_and_v4_layers_lose_to_it(html_pool):
    # `.material-icons {font-size: 24px}` comes unlayered from the icon stylesheet. The v3 Play
    # CDN appends its utilities after it (same specificity, later: text-4xl wins, 36 px); v4
    # puts them in `@layer utilities`, below every unlayered rule (24 px).
    icon = ('<link href="https://fonts.googleapis.com/icon?family=Material+Icons" '
            'rel="stylesheet"><i class="material-icons text-4xl">person</i>')
    v3, v4 = (html_pool.one("slide", f'<script src="{url}"></script>' + icon) for url in (
        "https://cdn.tailwindcss.com", "https://cdn.jsdelivr.net/npm/@tailwindcss/browser@4"))
    assert v3.missed_urls == v4.missed_urls == []
    assert _box(v3, "i").font_size == 36 and _box(v4, "i").font_size == 24
