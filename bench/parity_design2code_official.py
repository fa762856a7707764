"""Design2Code's own `visual_eval_v3_multi` on the pairs `parity_design2code.py` wrote, CLIP 0.

Runs under an interpreter with Design2Code's requirements (bs4, colormath, opencv, playwright
with a Chromium), never imports vsdpo. Their module loads a CLIP model at import: a stand-in
`clip` module keeps it from downloading one, and the CLIP term is 0. Without `--cleanup` their
clean-up of generated pages (`pre_process`: the repetition cut, the `<html>` wrap, the
50-copies cap) is skipped, so the metric alone is compared. Their screenshots (three per page:
the page and two re-coloured copies) shell out to `screenshot_single.py`, a fresh Python and
browser each; the same screenshot (a new page in the default 1280×720 viewport, `goto`,
full page, animations disabled, a white 1280×960 image on failure) is taken here from one
browser kept open, which is what makes 40 pairs feasible on two shared cores.

    python bench/parity_design2code_official.py DESIGN2CODE_DIR PAIRS_DIR [--cleanup]

PAIRS_DIR holds `pairs.json` ({page: [variant, ...]}) and `<page>/ref.html`,
`<page>/<variant>.html`; the scores go to stdout as one JSON line {"page/variant": [4]}.
"""

import json
import os
import re
import shutil
import sys
import tempfile
import types
from pathlib import Path


def one_browser_screenshots():
    """`os.system` that answers their `screenshot_single.py` calls from one open browser."""
    from PIL import Image
    from playwright.sync_api import sync_playwright
    browser, shell = sync_playwright().start().chromium.launch(), os.system

    def system(command: str) -> int:
        call = re.search(r"screenshot_single\.py --html (\S+) --png (\S+)", command)
        if call is None:
            return shell(command)
        page = browser.new_page()
        try:
            page.goto("file://" + os.path.abspath(call[1]), timeout=60000)
            page.screenshot(path=call[2], full_page=True, animations="disabled", timeout=60000)
        except Exception:  # as theirs: a blank page
            Image.new("RGB", (1280, 960), color="white").save(call[2])
        finally:
            page.close()
        return 0
    os.system = system


def main(official: Path, pairs_dir: Path, cleanup: bool):
    sys.modules["clip"] = types.SimpleNamespace(load=lambda *args, **kw: (None, None))
    sys.path.insert(0, str(official))
    os.chdir(official / "Design2Code")  # it shells out to `python3 metrics/screenshot_single.py`
    from Design2Code.metrics import visual_score
    visual_score.calculate_clip_similarity_with_blocks = lambda *args: 0.0
    one_browser_screenshots()
    if not cleanup:
        visual_score.pre_process = lambda path: None
    scores = {}
    for page, variants in json.loads((pairs_dir / "pairs.json").read_text()).items():
        with tempfile.TemporaryDirectory() as tmp:  # it writes screenshots beside the pages
            shutil.copytree(pairs_dir / page, tmp, dirs_exist_ok=True)
            preds = [f"{tmp}/{v}.html" for v in variants]
            rows = visual_score.visual_eval_v3_multi([preds, f"{tmp}/ref.html"])
        for variant, (_, _, parts) in zip(variants, rows):
            scores[f"{page}/{variant}"] = [float(x) for x in parts[:4]]
        print(f"{page}: done", file=sys.stderr)
    print(json.dumps(scores))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), "--cleanup" in sys.argv[3:])
