"""Source tagging: every start tag maps back to its exact span; CSS declarations are found.
Pure Python, no browser."""

import re

from vsdpo.render.source_map import SRC_ATTR, parse_span, tag_source

PAGE = """<!DOCTYPE html>
<html><head><style>
/* a comment { with: braces } */
.card { width: 180px; overflow : hidden }
@media (max-width: 600px) { p > b { font-size: 30px } }
h1{color:#333}
</style></head>
<body><DIV class=card style="color: red; width:5px">hi<br/><img src=x.png alt='a > b'></DIV>
<p>text <b>bold</b></p></body></html>"""


def test_every_start_tag_is_tagged_with_its_own_span():
    smap = tag_source(PAGE)
    spans = [parse_span(v) for v in re.findall(rf'{SRC_ATTR}="([0-9-]+)"', smap.html)]
    starts = [m.start() for m in re.finditer(r"<(?![!/])", PAGE)]
    assert [a for a, _ in spans] == starts
    for a, b in spans:
        assert PAGE[a] == "<" and PAGE[b - 1] == ">" and "<" not in PAGE[a + 1:b]
    assert smap.html.replace(" " + SRC_ATTR, "").count("<") == PAGE.count("<")


def test_tagging_keeps_the_page_otherwise_unchanged():
    smap = tag_source(PAGE)
    assert re.sub(rf' {SRC_ATTR}="[0-9-]+"', "", smap.html) == PAGE


def test_inline_style_declarations_point_at_their_text():
    smap = tag_source(PAGE)
    (decls,) = smap.inline.values()
    assert [(d.prop, PAGE[slice(*d.span)]) for d in decls] == [("color", "color: red"),
                                                               ("width", "width:5px")]


def test_sheet_rules_keep_selectors_and_skip_comments_and_media_wrappers():
    rules = tag_source(PAGE).rules
    assert [r.selector for r in rules] == [".card", "p > b", "h1"]
    card = rules[0].declarations
    assert [PAGE[slice(*d.span)] for d in card] == ["width: 180px", "overflow : hidden"]
    assert [(d.prop, d.value) for d in card] == [("width", "180px"), ("overflow", "hidden")]
    assert PAGE[slice(*rules[1].declarations[0].span)] == "font-size: 30px"


def test_tagging_stops_at_the_tag_cap():
    code = "<div>" + "<span>x</span>" * 1000 + "</div>"
    assert tag_source(code, max_tags=10).html.count(SRC_ATTR) == 10


def test_each_class_token_is_kept_with_its_own_span():
    code = '<p id=x class=" text-4xl  md:leading-8 ">a</p><b class=lead>b</b>'
    classes = tag_source(code).classes
    assert [[(t, code[slice(*s)]) for t, s in tokens] for tokens in classes.values()] == [
        [("text-4xl", "text-4xl"), ("md:leading-8", "md:leading-8")], [("lead", "lead")]]


def test_a_selector_list_gives_one_rule_per_selector_with_its_specificity():
    css = ("<style>h1, #top .nav > a:hover, :where(.x) p, a:not(.b, #c)::before "
           "{ color: red !important }</style>")
    rules = tag_source(css).rules
    assert [(r.selector, r.specificity) for r in rules] == [
        ("h1", (0, 0, 1)), ("#top .nav > a:hover", (1, 2, 1)), (":where(.x) p", (0, 0, 1)),
        ("a:not(.b, #c)::before", (1, 0, 2))]
    (decl,) = rules[0].declarations
    assert (decl.value, decl.important) == ("red", True)
    assert css[slice(*decl.span)] == "color: red !important"
