"""`vsdpo render`: prints each defect with the blamed code lines and writes the annotated PNG."""

from PIL import Image

from vsdpo.cli import main

PAGE = """<html><head><style>
.label { width: 120px; overflow: hidden; white-space: nowrap; }
</style></head>
<body>
<div class="label">A label far too long for its box</div>
</body></html>
"""


def test_render_prints_defects_with_their_code_lines_and_writes_the_png(tmp_path, capsys):
    page = tmp_path / "label.html"
    page.write_text(PAGE)
    assert main(["render", str(page), "--slide", "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "clipped_text" in out and "text is" in out
    assert "2 | .label { width: 120px; overflow: hidden; white-space: nowrap; }" in out
    assert '5 | <div class="label">A label far too long for its box</div>' in out
    assert Image.open(tmp_path / "out" / "label.png").size == (1280, 720)


def test_render_exits_nonzero_when_a_render_fails(tmp_path, capsys):
    chart = tmp_path / "broken.py"
    chart.write_text("import matplotlib.pyplot as plt\nplt.plot([1, 2]\n")
    assert main(["render", str(chart), "-o", str(tmp_path)]) == 1
    assert "render failed" in capsys.readouterr().out
