"""The pool starts each side on the first artifact that needs it: charts alone run where
Playwright and Chromium are missing (a GPU node's image), and a page there comes back as
an error result naming what is missing; Chromium starts under a temp dir too deep for its
socket path."""

import os
import subprocess
import sys

CODE = '''
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "playwright":
            raise ImportError("no module named playwright (hidden by the test)")
sys.meta_path.insert(0, Hide())
from vsdpo.render import Artifact, render
chart, page = render([Artifact("chart", "import matplotlib.pyplot as plt\\nplt.plot([1, 2])\\n"),
                      Artifact("web", "<p>hello</p>")])
assert chart.ok and any(e.role == "data" for e in chart.elements), chart.error
assert not page.ok and "playwright" in page.error, page.error
print("ok")
'''


def test_charts_render_without_playwright_and_a_page_says_why_it_cannot():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_page_renders_under_a_temp_dir_too_long_for_chromiums_socket(tmp_path):
    deep = tmp_path / ("d" * 40) / ("e" * 40)  # > 107 bytes with Chromium's socket name
    deep.mkdir(parents=True)
    code = ("from vsdpo.render import Artifact, render\n"
            "(page,) = render([Artifact('web', '<p>hello</p>')])\n"
            "assert page.ok, page.error\nprint('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TMPDIR": str(deep)})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
