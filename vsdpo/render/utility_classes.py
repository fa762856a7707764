"""Which CSS longhands a utility class token sets (Tailwind, Bootstrap), so blame can name it.

A page styled with utility classes declares its `font-size` as `text-4xl` or `fs-1` in the
start tag; the framework's sheet that holds the real declaration is not in the code. So a
defect blames the class token itself (its span in the `class` attribute): this module says
which longhands a token sets. The table covers the common families only (text size and
colour, line height, white space, overflow, sizes, position, margins); an unknown token sets
nothing and is never blamed.

Variants: the breakpoints that apply at the 1280 px viewport (`sm:`, `md:`, `lg:`, `xl:`)
are stripped; a token under any other variant (`hover:`, `dark:`, `2xl:`) sets nothing at
rest. Tailwind's `!` (before the token in v3, after it in v4) and Bootstrap's `fs-*`/`lh-*`
(declared `!important` in its sheet) are important.
"""

import re
from functools import lru_cache

ACTIVE_VARIANTS = {"sm", "md", "lg", "xl"}
_PALETTE = (  # colour names after `text-` / `bg-`: Tailwind's palette, then Bootstrap's themes
    "slate|gray|grey|zinc|neutral|stone|red|orange|amber|yellow|lime|green|emerald|teal|cyan|"
    "sky|blue|indigo|violet|purple|fuchsia|pink|rose|white|black|transparent|current|inherit|"
    "primary|secondary|success|danger|warning|info|light|dark|body|muted|opacity")
_SIDES = {"": ("top", "right", "bottom", "left"), "x": ("left", "right"), "y": ("top", "bottom"),
          "t": ("top",), "r": ("right",), "b": ("bottom",), "l": ("left",), "s": ("left",),
          "e": ("right",)}
_LENGTH = re.compile(r"\[(?:length:)?[\d.]|\[(?:calc|clamp|min|max)\(")
_FULL = re.compile(r"-(?:full|100)$")  # Tailwind's `w-full`, Bootstrap's `w-100`
_AUTO = re.compile(r"-(?:auto|none|fit|min|max)$")  # `h-auto`, `max-w-none`, `w-fit`
_BOX = re.compile(r"-?([mp])([xytrblse]?)-")
_OVERFLOW = ("overflow-x", "overflow-y")
_TABLE = [  # (pattern over the bare token, longhands it sets), first match wins
    (r"(truncate|text-truncate)$", ("white-space", "text-overflow") + _OVERFLOW),
    (r"(overflow-ellipsis|text-ellipsis|text-clip)$", ("text-overflow",)),
    (r"(whitespace-|text-(nowrap|wrap)$)", ("white-space",)),
    (r"overflow-x-", ("overflow-x",)),
    (r"overflow-y-", ("overflow-y",)),
    (r"overflow-", _OVERFLOW),
    (r"text-(xs|sm|base|lg|[2-9]?xl)(/|$)", ("font-size", "line-height")),
    (r"fs-[1-6]$", ("font-size",)),
    (rf"text-({_PALETTE})\b|text-\[", ("color",)),  # text-[44px] is caught by `_LENGTH` first
    (r"(leading-|lh-)", ("line-height",)),
    (r"font-(sans|serif|mono|monospace)$", ("font-family",)),
    (r"(max-h-|mh-100$)", ("max-height",)),
    (r"(max-w-|mw-100$)", ("max-width",)),
    (r"(h-|vh-100$)", ("height",)),
    (r"(w-|vw-100$)", ("width",)),
    (r"size-", ("width", "height")),
    (rf"bg-({_PALETTE})\b|bg-\[#", ("background-color",)),
    (r"(static|relative|absolute|fixed|sticky)$|position-", ("position",)),
    (r"-?top-", ("top",)),
    (r"-?bottom-", ("bottom",)),
    (r"-?(left|start)-", ("left",)),
    (r"-?(right|end)-", ("right",)),
    (r"-?inset-", ("top", "right", "bottom", "left")),
    (r"-?translate-", ("transform",)),
]
_COMPILED = [(re.compile(p), longhands) for p, longhands in _TABLE]


@lru_cache(maxsize=4096)
def utility_longhands(token: str) -> tuple[tuple[str, ...], str, bool]:
    """`(longhands, value, important)` a class token sets; `()` when it sets nothing we blame.

    The value is the token itself, except `"100%"` for a full-size token (`w-full`, `h-100`),
    which takes its size from the parent, and `"auto"` for `h-auto`, `max-w-none`, `w-fit`.
    """
    head, bracket, tail = token.partition("[")  # `text-[color:red]`: no variant after `[`
    *variants, base = head.split(":")
    if any(v not in ACTIVE_VARIANTS for v in variants):
        return (), token, False
    base += bracket + tail
    important = base.startswith("!") or base.endswith("!") or base.startswith(("fs-", "lh-"))
    base = base.strip("!")
    value = "100%" if _FULL.search(base) else "auto" if _AUTO.search(base) else token
    if base.startswith("text-") and _LENGTH.match(base, 5):
        return ("font-size",), value, important
    if m := _BOX.match(base):
        kind = "margin" if m.group(1) == "m" else "padding"
        return tuple(f"{kind}-{side}" for side in _SIDES[m.group(2)]), value, important
    for pattern, longhands in _COMPILED:
        if pattern.match(base):
            return longhands, value, important
    return (), token, False
