"""Design2Code's own `visual_eval_v3_multi` on the pairs `parity_design2code.py` wrote, CLIP 0.

Runs under an interpreter with Design2Code's requirements (bs4, colormath, opencv, playwright
with a Chromium), never imports vsdpo. Their module loads a CLIP model at import: a stand-in
`clip` module keeps it from downloading one, and the CLIP term is 0. Without `--cleanup` their
clean-up of generated pages (`pre_process`: the repetition cut, the `<html>` wrap, the
50-copies cap) is skipped, so the metric alone is compared.

    python bench/parity_design2code_official.py DESIGN2CODE_DIR PAIRS_DIR [--cleanup]

PAIRS_DIR holds `pairs.json` ({page: [variant, ...]}) and `<page>/ref.html`,
`<page>/<variant>.html`; the scores go to stdout as one JSON line {"page/variant": [4]}.
"""

import json
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path


def main(official: Path, pairs_dir: Path, cleanup: bool):
    sys.modules["clip"] = types.SimpleNamespace(load=lambda *args, **kw: (None, None))
    sys.path.insert(0, str(official))
    os.chdir(official / "Design2Code")  # it shells out to `python3 metrics/screenshot_single.py`
    from Design2Code.metrics import visual_score
    visual_score.calculate_clip_similarity_with_blocks = lambda *args: 0.0
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
