"""Code extraction from completions: the first fenced block (closed or cut off), else the
whole text; token offsets mapped into the code, tokens outside it left unblamed."""

from vsdpo.feedback.extract import code_span, extract_code, offsets_into_code

CODE = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\n"


def test_text_without_a_fence_is_all_code():
    assert extract_code(CODE) == (CODE, (0, len(CODE)))
    assert extract_code("") == ("", (0, 0))


def test_the_body_of_a_closed_python_fence_is_the_code():
    text = f"Here is the chart:\n```python\n{CODE}```\nIt plots two points."
    code, (start, end) = extract_code(text)
    assert code == CODE and text[start:end] == CODE


def test_html_and_bare_fences_and_indented_fences_are_recognised():
    html = "<html><body><p>hi</p></body></html>\n"
    assert extract_code(f"```html\n{html}```")[0] == html
    assert extract_code(f"```\n{html}```\n")[0] == html
    assert extract_code(f"Page:\n  ```html\n{html}  ```\n")[0] == html


def test_windows_line_endings_close_the_fence():
    assert extract_code("Hi\r\n```python\r\nx = 1\r\n```\r\nbye")[0] == "x = 1\r\n"


def test_only_the_first_of_two_blocks_is_taken():
    text = f"```python\n{CODE}```\nOr else:\n```python\nprint('other')\n```\n"
    assert extract_code(text)[0] == CODE


def test_an_unterminated_fence_runs_to_the_end_of_the_text():
    text = f"Sure!\n```python\n{CODE}plt.title('cut by max_new_to"
    assert extract_code(text)[0] == CODE + "plt.title('cut by max_new_to"
    assert extract_code("Sure!\n```python") == ("", (15, 15))


def test_a_longer_fence_closes_only_on_at_least_as_many_backticks():
    body = "x = '''\n```\n'''\n"
    assert extract_code(f"````python\n{body}````\n")[0] == body


def test_backticks_inside_a_line_are_not_a_fence():
    text = "s = 'use ```python fences'\nprint(s)\n"
    assert code_span(text) == (0, len(text))


def test_offsets_shift_into_the_code_and_tokens_outside_it_get_empty_spans():
    text = "Code:\n```python\nx = 1\n```\nDone."
    start, end = code_span(text)
    assert text[start:end] == "x = 1\n"
    # "Code:\n" | "```python\n" | "x" | " = 1" | "\n```" (straddles the end) | "\nDone." | eos
    tokens = [(0, 6), (6, 16), (16, 17), (17, 21), (21, 25), (25, 31), (31, 31)]
    assert offsets_into_code(tokens, (start, end)) == [
        (0, 0), (0, 0), (0, 1), (1, 5), (5, 6), (6, 6), (6, 6)]
    assert offsets_into_code(tokens, (0, len(text))) == tokens
