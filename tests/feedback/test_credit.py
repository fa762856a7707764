"""Credit weights: statements as the unit of blame, IoU × severity, token mapping, the mean-1
normalisation per sequence, and the random-credit control."""

import collections

import pytest
import torch

from vsdpo.feedback import credit_weight, random_statement_scores, token_weights, weight_table
from vsdpo.feedback.statements import all_statements, html_statements, python_statements
from vsdpo.render.types import Defect, Element

CODE = "a = 1\nax.bar(x, y)\nplt.title('t')\n"
#       0    5 6          18 19            33
BAR = (6, 18)
TOKENS = [(0, 1), (2, 3), (4, 5), (5, 6), (6, 12), (12, 18), (18, 19), (19, 28), (28, 33)]
BAR_ELEMENT = Element("Rectangle", (0, 0, 10, 10), BAR, role="data")


def overlap(bbox, severity, spans):
    return Defect("overlap", bbox, severity, "bars overlap the title", spans)


def mean_one(raw) -> torch.Tensor:
    raw = torch.tensor(raw, dtype=torch.float32)
    return raw / raw.mean()


def test_a_blamed_statement_gets_one_plus_alpha_minus_one_times_iou_times_severity():
    defect = overlap((0, 0, 10, 5), 0.8, [(8, 10)])  # IoU with the bar box: 50 / 100
    w = credit_weight(CODE, TOKENS, [defect], alpha=3.0, elements=[BAR_ELEMENT])
    expected = [1, 1, 1, 1, 1 + 2 * 0.4, 1 + 2 * 0.4, 1, 1, 1]
    assert w.dtype == torch.float32
    assert torch.allclose(w, mean_one(expected))


@pytest.mark.parametrize("alpha", [1.5, 3.0, 8.0])
def test_weights_have_mean_one_so_alpha_moves_where_the_pull_lands_not_its_strength(alpha):
    defect = overlap((0, 0, 10, 5), 0.8, [(8, 10)])
    w = credit_weight(CODE, TOKENS, [defect], alpha=alpha, elements=[BAR_ELEMENT])
    assert w.mean().item() == pytest.approx(1.0)
    # blamed over unblamed is still 1 + (α − 1)·r; the unblamed level is the smallest weight
    assert (w[4] / w.min()).item() == pytest.approx(1 + (alpha - 1) * 0.4)
    assert w.min() < 1.0 < w.max()


def test_alpha_one_gives_all_ones():
    defect = overlap((0, 0, 10, 5), 1.0, [BAR])
    w = credit_weight(CODE, TOKENS, [defect], alpha=1.0, elements=[BAR_ELEMENT])
    assert torch.equal(w, torch.ones(len(TOKENS)))


def test_no_defects_gives_all_ones():
    assert torch.equal(credit_weight(CODE, TOKENS, [], alpha=4.0), torch.ones(len(TOKENS)))


def test_a_token_straddling_two_statements_takes_the_larger_weight():
    defect = overlap((0, 0, 10, 10), 1.0, [BAR])  # IoU 1 → w = alpha
    w = credit_weight(CODE, [(4, 8), (17, 21), (0, 1)], [defect], alpha=2.5,
                       elements=[BAR_ELEMENT])
    assert torch.allclose(w, mean_one([2.5, 2.5, 1.0]))


def test_every_token_of_a_multi_line_statement_is_weighted():
    code = "fig = 1\nax.bar(\n    x,\n    y)\nz = 2\n"
    statement = python_statements(code)[1]
    assert code[statement[0]:statement[1]] == "ax.bar(\n    x,\n    y)"
    tokens = [(0, 3), (8, 15), (16, 23), (23, 30), (31, 32), (33, 34)]
    defect = overlap((0, 0, 1, 1), 0.5, [(27, 28)])  # points at `y` on the last line
    w = credit_weight(code, tokens, [defect], alpha=3.0)  # no element drawn → r = severity
    assert torch.allclose(w, mean_one([1.0, 2.0, 2.0, 2.0, 1.0, 1.0]))


def test_a_span_inside_a_loop_blames_its_statement_not_the_whole_loop():
    code = "for i in range(3):\n    ax.plot(i)\n    ax.text(i, 0, 's')\n"
    plot, text = code.index("ax.plot"), code.index("ax.text")
    defect = overlap((0, 0, 1, 1), 1.0, [(text + 3, text + 7)])
    tokens = [(0, 3), (plot, plot + 7), (text, text + 7)]
    assert torch.allclose(credit_weight(code, tokens, [defect], alpha=2.0),
                          mean_one([1.0, 1.0, 2.0]))


def test_html_start_tag_and_css_declaration_spans_are_weighted_as_statements():
    code = '<style>p { color: #eee; }</style><p class="x">hi</p>'
    decl, tag = (11, 23), (33, 46)
    assert code[slice(*decl)] == "color: #eee;" and code[slice(*tag)] == '<p class="x">'
    p = Element("p", (0, 0, 100, 20), tag, text="hi")
    defect = Defect("low_contrast", (0, 0, 50, 20), 0.6, "contrast 1.2:1", [tag, decl])
    tokens = [(0, 7), (11, 17), (18, 23), (33, 35), (35, 46), (46, 48), (48, 52)]
    w = credit_weight(code, tokens, [defect], alpha=2.0, elements=[p], domain="web")
    # the tag drew p: IoU 0.5 × 0.6 = 0.3; the declaration drew nothing: r = severity 0.6
    assert torch.allclose(w, mean_one([1.0, 1.6, 1.6, 1.3, 1.3, 1.0, 1.0]))


def test_the_most_severe_defect_blaming_a_statement_sets_its_weight():
    defects = [overlap((0, 0, 10, 10), 0.3, [BAR]), overlap((0, 0, 10, 10), 0.9, [BAR])]
    w = credit_weight(CODE, torch.tensor(TOKENS), defects, alpha=2.0, elements=[BAR_ELEMENT])
    assert (w[4] / w[0]).item() == pytest.approx(1.9)


def test_empty_token_offsets_are_never_weighted_up():
    defect = overlap((0, 0, 10, 10), 1.0, [BAR])
    w = credit_weight(CODE, [(6, 6), (7, 9), (8, 8)], [defect], alpha=3.0,
                       elements=[BAR_ELEMENT])
    assert torch.allclose(w, mean_one([1.0, 3.0, 1.0]))


def test_weight_table_lists_each_blamed_statement_with_its_score_and_unnormalised_weight():
    defect = overlap((0, 0, 10, 5), 0.8, [(8, 10)])
    rows = weight_table(CODE, [defect], alpha=3.0, elements=[BAR_ELEMENT])
    assert rows == [("ax.bar(x, y)", pytest.approx(0.4), pytest.approx(1.8))]


def test_code_that_does_not_parse_blames_whole_lines():
    code = "x = (\nax.bar(1)\n"
    defect = overlap((0, 0, 1, 1), 1.0, [(7, 8)])
    assert weight_table(code, [defect], alpha=2.0) == [("ax.bar(1)", 1.0, 2.0)]


def test_bad_alpha_and_domain_raise_naming_the_argument():
    with pytest.raises(ValueError, match="alpha"):
        credit_weight(CODE, TOKENS, [], alpha=0.5)
    with pytest.raises(ValueError, match="domain"):
        credit_weight(CODE, TOKENS, [overlap((0, 0, 1, 1), 1.0, [BAR])], 2.0, domain="pdf")


def test_only_the_elements_of_a_statement_that_touch_the_defect_form_its_region():
    # ax.bar drew a bar far away and a tick label exactly under the defect: IoU uses the label.
    far_bar = Element("Rectangle", (100, 100, 200, 200), BAR, role="data")
    label = Element("Text", (0, 0, 10, 10), BAR, role="xtick_label")
    defect = overlap((0, 0, 10, 10), 0.5, [BAR])
    w = credit_weight(CODE, TOKENS, [defect], alpha=3.0, elements=[far_bar, label])
    assert (w[4] / w[0]).item() == pytest.approx(1 + 2 * 0.5)
    # With no element touching the defect, all of the statement's elements count.
    w_far = credit_weight(CODE, TOKENS, [overlap((300, 300, 310, 310), 0.5, [BAR])], alpha=3.0,
                           elements=[far_bar, label])
    assert w_far[4].item() == pytest.approx(1.0)


LOOP = "import x\nfig = 1\nfor i in y:\n    ax.plot(i)\n    ax.text(i, 0, 's')\nplt.show()\n"


def test_random_credit_weights_as_many_statements_with_the_same_r_values():
    blamed = {(LOOP.index("ax.plot"), LOOP.index("ax.plot") + 10): 0.4,
              (LOOP.index("plt.show"), len(LOOP) - 1): 0.7}
    drawn = random_statement_scores(LOOP, blamed, "chart", seed=0)
    assert sorted(drawn.values()) == [0.4, 0.7]
    assert set(drawn) <= set(python_statements(LOOP))
    assert random_statement_scores(LOOP, blamed, "chart", seed=0) == drawn  # reproducible
    assert random_statement_scores(LOOP, {}, "chart", seed=0) == {}


def test_random_credit_draws_every_statement_uniformly():
    blamed = {(0, 8): 1.0}
    statements = python_statements(LOOP)  # import, fig, for-header, plot, text, show
    counts = collections.Counter(s for seed in range(3000)
                                 for s in random_statement_scores(LOOP, blamed, "chart", seed))
    assert set(counts) == set(statements)
    assert all(abs(n / 3000 - 1 / len(statements)) < 0.03 for n in counts.values())


def test_token_weights_of_random_statements_are_weighted_and_renormalised_alike():
    statement = python_statements(LOOP)[3]
    tokens = [(0, 6), statement, (len(LOOP) - 10, len(LOOP) - 1)]
    w = token_weights(tokens, {statement: 0.5}, alpha=3.0)
    assert torch.allclose(w, mean_one([1.0, 2.0, 1.0]))
    assert torch.equal(token_weights(tokens, {statement: 0.5}, alpha=1.0), torch.ones(3))


def test_html_statements_are_every_start_tag_and_every_css_declaration():
    code = '<style>p { color: #eee; font-size: 9px }</style><p style="top:3px">hi</p><br/>'
    texts = [code[a:b] for a, b in html_statements(code)]
    assert texts == ["<style>", "color: #eee", "font-size: 9px", '<p style="top:3px">',
                     "top:3px", "<br/>"]
    assert all_statements(code, "slide") == html_statements(code)
