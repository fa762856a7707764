"""Slides written the way models write AeSlides slides: Tailwind's Play CDN with a
`tailwind.config`, `@apply` in a `text/tailwindcss` style, Google Fonts, Material Icons,
Chinese and English text. Four layouts; some slides carry the defects rollouts have (a long
title in a fixed-height bar, a pale caption, a card row wider than the slide).
"""

HEAD = """<!DOCTYPE html><html lang="{lang}"><head><meta charset="UTF-8">
<script src="https://cdn.tailwindcss.com"></script>
<link href="https://fonts.googleapis.com/css2?family={font}:wght@400;700&display=swap" rel="stylesheet">
<link href="https://fonts.googleapis.com/icon?family=Material+Icons" rel="stylesheet">
<script>tailwind.config = {{theme: {{extend: {{colors: {{brand: '{brand}', soft: '{soft}'}},
  fontFamily: {{body: ['"{family}"', 'sans-serif']}}}}}}}}</script>
<style type="text/tailwindcss">
  @layer components {{ .card {{ @apply bg-soft rounded-xl p-6 shadow-md; }} }}
</style></head>
<body><div class="ppt-slide w-[1280px] h-[720px] {root} font-body">{body}</div></body></html>"""

LAYOUTS = {
    "bullets": ("flex flex-col p-16 bg-white", """
<h1 class="text-5xl font-bold text-brand {title_box}">{title}</h1>
<ul class="mt-10 space-y-4 text-2xl text-gray-700 list-disc pl-8">{bullets}</ul>
<p class="mt-auto text-sm {caption}">{caption_text}</p>"""),
    "cards": ("flex flex-col p-12 bg-gray-50", """
<h1 class="text-4xl font-bold text-gray-900 mb-8 {title_box}">{title}</h1>
<div class="flex gap-8 {row}">{cards}</div>"""),
    "split": ("flex", """
<section class="w-2/5 bg-brand text-white p-12 flex flex-col justify-center">
  <h1 class="text-5xl font-bold {title_box}">{title}</h1>
  <p class="text-lg mt-6 opacity-90">{caption_text}</p></section>
<section class="flex-1 p-12 grid grid-cols-2 gap-6 content-center">{cards}</section>"""),
    "stats": ("grid grid-cols-3 gap-8 p-16 bg-white content-center", """
<h1 class="col-span-3 text-4xl font-bold text-brand {title_box}">{title}</h1>
{stats}"""),
}

TEXT = {
    "en": {"font": "Inter", "family": "Inter",
           "titles": ("Quarterly Review", "Product Roadmap for the Next Two Fiscal Years and Beyond",
                      "Team Overview", "Market Expansion Strategy"),
           "items": ("Revenue grew 18% year over year", "Two new regional offices",
                     "Churn down to 3.1%", "Hiring plan on track", "Launch in Q3",
                     "Support response under 2 hours")},
    "zh": {"font": "Noto+Sans+SC", "family": "Noto Sans SC",
           "titles": ("季度回顾", "未来两个财年及以后的产品路线图与关键里程碑规划", "团队介绍", "市场扩展策略"),
           "items": ("收入同比增长百分之十八", "新增两个区域办公室", "客户流失率降至百分之三点一",
                     "招聘计划按期推进", "第三季度正式发布", "客服响应时间低于两小时")},
}
ICONS = ("trending_up", "groups", "rocket_launch", "support_agent", "public", "insights")
PALETTE = (("#0f4c81", "#e8f1fa"), ("#7c2d12", "#fff7ed"), ("#14532d", "#f0fdf4"))


def tailwind_slides(n: int) -> list[str]:
    """`n` slides cycling over layouts, languages, palettes and defects."""
    out = []
    for k in range(n):
        layout = list(LAYOUTS)[k % len(LAYOUTS)]
        lang = ("en", "zh")[k // len(LAYOUTS) % 2]
        text, (brand, soft) = TEXT[lang], PALETTE[k % len(PALETTE)]
        items = text["items"][:3 + k % 4]
        wide = k % 8 == 5  # a card row that runs off the slide
        cards = "".join(
            f'<div class="card {"w-[420px] shrink-0" if wide else "flex-1"}">'
            f'<i class="material-icons text-brand" style="font-size:32px">{ICONS[j]}</i>'
            f'<h3 class="text-xl font-bold mt-2">{item}</h3></div>' for j, item in enumerate(items[:4]))
        stats = "".join(
            f'<div class="card text-center"><p class="text-5xl font-bold text-brand">{10 + 7 * j}%</p>'
            f'<p class="text-lg text-gray-600 mt-2">{item}</p></div>' for j, item in enumerate(items[:3]))
        body = LAYOUTS[layout][1].format(
            title=text["titles"][k % len(text["titles"])],
            title_box="w-[640px] h-14 overflow-hidden" if k % 6 == 1 else "",  # a cut title
            bullets="".join(f"<li>{item}</li>" for item in items),
            caption="text-gray-200" if k % 8 == 4 else "text-gray-500",  # pale: low contrast
            caption_text=text["items"][-1], cards=cards, stats=stats, row="" if wide else "w-full")
        out.append(HEAD.format(lang=lang, font=text["font"], family=text["family"], brand=brand,
                               soft=soft, root=LAYOUTS[layout][0], body=body))
    return out
