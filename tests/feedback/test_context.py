"""Teacher context: prompt, then privileged feedback, then the instruction; capped length."""

import io

import pytest
from PIL import Image

from vsdpo.feedback import (
    ContextConfig,
    best_sibling,
    reference_context,
    teacher_context,
    teacher_screenshot,
)
from vsdpo.render.types import Defect, RenderResult
from vsdpo.tasks.task import Task

TASK = Task("t0", "chart", "Draw a bar chart of quarterly sales with a title.")
CODE = ("import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(figsize=(2, 1))\n"
        "ax.bar(['Q1', 'Q2'], [3, 4])\n"
        "ax.set_title('Quarterly sales of every product line we sell')\n")
TITLE = (CODE.index("ax.set_title"), len(CODE) - 1)
BAR = (CODE.index("ax.bar"), CODE.index("ax.set_title") - 1)
INSTRUCTION = ContextConfig().instruction


def with_defects(*severities):
    kinds = ["clipped_text", "overlap", "low_contrast", "misaligned"]
    return RenderResult(ok=True, image=b"\x89PNG", width=200, height=100, defects=[
        Defect(kinds[i], (0, 0, 200, 20), s, f"measurement {i}", [TITLE if i == 0 else BAR])
        for i, s in enumerate(severities)])


def rubric(text: str) -> str:
    """The rubric part of a context: from its header up to the attempt."""
    start = text.index(ContextConfig().rubric_header)
    return text[start:text.index(ContextConfig().attempt_note.split("\n")[0], start)]


def test_prompt_then_rubric_then_sibling_then_attempt_then_instruction():
    sibling = CODE.replace("Quarterly", "Yearly")
    text = teacher_context(TASK, with_defects(0.9, 0.4), sibling, code=CODE)
    assert text.startswith(TASK.prompt) and text.endswith(INSTRUCTION)
    first, second = text.index("clipped_text"), text.index("overlap")
    assert len(TASK.prompt) < first < second < text.index(sibling) < text.index(CODE)
    assert text.index(CODE) < text.index(INSTRUCTION)
    assert "line 4: ax.set_title('Quarterly sales" in text and "measurement 0" in text
    assert "line 3: ax.bar(['Q1', 'Q2'], [3, 4])" in text


def test_the_plain_rubric_gives_each_defects_kind_and_message_without_lines_or_code():
    text = teacher_context(TASK, with_defects(0.9, 0.4), code=CODE, traced=False)
    assert text.startswith(TASK.prompt) and text.endswith(INSTRUCTION)
    assert "- clipped_text (severity 0.90): measurement 0" in text
    assert "- overlap (severity 0.40): measurement 1" in text
    assert CODE in text  # the attempt is shown; the rubric neither cites nor quotes it
    assert "line" not in rubric(text).lower() and "ax." not in rubric(text)
    assert " px" not in text
    error = RenderResult(ok=False, error="Traceback ...\nNameError: name 'y'")
    assert "NameError: name 'y'" in teacher_context(TASK, error, code=CODE, traced=False)


def test_failed_code_gives_the_last_lines_of_its_traceback():
    error = "Traceback (most recent call last):\n" + "".join(
        f'  File "chart.py", line {i}, in f{i}\n' for i in range(40)) + "NameError: name 'y'"
    text = teacher_context(TASK, RenderResult(ok=False, error=error), code=CODE)
    assert "NameError: name 'y'" in text and "line 39" in text and "line 0," not in text
    assert text.index(TASK.prompt) == 0 and text.endswith(INSTRUCTION)


def test_a_blank_render_is_reported_as_blank():
    blank = RenderResult(ok=True, defects=[Defect("blank", (0, 0, 1, 1), 1.0, "all white")])
    assert ContextConfig().blank_note in teacher_context(TASK, blank, code=CODE)


def test_truncation_drops_least_severe_lines_first_and_never_cuts_the_prompt():
    config = ContextConfig(max_chars=len(TASK.prompt) + 420)  # room for two defect lines
    text = teacher_context(TASK, with_defects(0.9, 0.2, 0.6, 0.1), code=CODE, config=config)
    assert text.startswith(TASK.prompt) and text.endswith(INSTRUCTION)
    assert len(text) <= config.max_chars
    assert "clipped_text" in text and "low_contrast" in text  # severities 0.9 and 0.6 stay
    assert "overlap" not in text and "misaligned" not in text  # 0.2 and 0.1 go
    assert "2 less severe problem(s) omitted" in text
    assert CODE not in text  # the attempt goes before a rubric line
    tiny = teacher_context(TASK, with_defects(0.9), code=CODE, config=ContextConfig(max_chars=10))
    assert tiny.startswith(TASK.prompt)


def test_the_sibling_goes_before_the_attempt_when_the_cap_binds():
    sibling = CODE.replace("Quarterly", "Yearly")
    full = teacher_context(TASK, with_defects(0.9), sibling, code=CODE)
    assert CODE in full and sibling in full
    config = ContextConfig(max_chars=len(full) - 1)
    text = teacher_context(TASK, with_defects(0.9), sibling, code=CODE, config=config)
    assert CODE in text and sibling not in text and "clipped_text" in text


def test_a_clean_sibling_is_offered_as_a_correct_solution():
    sibling = "ax.bar(['Q1', 'Q2'], [3, 4]); ax.set_title('Sales')"
    text = teacher_context(TASK, with_defects(0.5), sibling, code=CODE)
    assert sibling in text and text.index(sibling) < text.index(INSTRUCTION)


def test_best_sibling_picks_the_highest_reward_clean_render_other_than_itself():
    results = [with_defects(0.5), RenderResult(ok=True), RenderResult(ok=True),
               RenderResult(ok=False, error="x")]
    codes = ["a", "b", "c", "d"]
    assert best_sibling(0, codes, results, [0.2, 0.7, 0.9, 0.0]) == "c"
    assert best_sibling(2, codes, results, [0.2, 0.7, 0.9, 0.0]) == "b"
    assert best_sibling(0, codes[:1], results[:1], [0.2]) is None


def test_a_vision_language_teacher_sees_the_render_with_its_defect_boxes():
    png = io.BytesIO()
    Image.new("RGB", (120, 80), "white").save(png, format="PNG")
    box = Defect("overlap", (60, 20, 110, 70), 1.0, "two boxes overlap", [])
    result = RenderResult(ok=True, image=png.getvalue(), width=120, height=80, defects=[box])
    boxed, plain = teacher_screenshot(result), teacher_screenshot(result, boxed=False)
    assert boxed.size == plain.size == (120, 80)
    assert plain.getpixel((60, 45)) == (255, 255, 255) != boxed.getpixel((60, 45))  # the outline
    assert boxed.getpixel((85, 45)) == (255, 255, 255)  # inside the box: untouched
    assert teacher_screenshot(RenderResult(ok=False, error="Traceback ...")) is None


def test_bad_caps_raise_naming_the_field():
    with pytest.raises(ValueError, match="max_chars"):
        ContextConfig(max_chars=0)


def test_html_spans_quote_their_own_text_joined_per_line():
    code = '<style>p{color:#eee;font-size:9px}</style>\n<p class="note">hi</p>'
    spans = [(code.index("color"), code.index(";") + 1), (code.index("font"), code.index("}")),
             (code.index("<p"), code.index(">hi") + 1)]
    result = RenderResult(ok=True, defects=[
        Defect("low_contrast", (0, 0, 10, 10), 0.7, "contrast 1.2:1", spans)])
    text = teacher_context(Task("w", "web", "Make a note."), result, code=code)
    assert ('at line 1: color:#eee; | font-size:9px; line 2: <p class="note">: contrast 1.2:1'
            in text)


def test_the_reference_context_gives_the_reference_program_in_place_of_feedback():
    task = Task("t", "chart", "Draw bars.", reference_code="ax.bar('a', 1)\n")
    text = reference_context(task)
    assert text.startswith("Draw bars.") and text.endswith(ContextConfig().instruction)
    assert "ax.bar('a', 1)" in text and "Feedback on a previous attempt" not in text
