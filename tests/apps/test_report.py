"""The rollout log and `vsdpo report`: a one-step run with the real render pool logs its first
group, and the report, opened in Chromium, shows the curves, the renders and — token by
token — the credit weights the log holds."""

import html
import io
import json
import sys
from pathlib import Path

import torch
from PIL import Image
from playwright.sync_api import sync_playwright

from vsdpo.apps.report import visible
from vsdpo.cli import main
from vsdpo.render.browser import LAUNCH_ARGS, find_chromium
from vsdpo.render.types import Defect, RenderResult
from vsdpo.rollout import Completion
from vsdpo.tasks import Task
from vsdpo.train.rollout_log import RolloutLog
from vsdpo.train.score import Scored
from vsdpo.train.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))  # the trainer tests' helpers
from handmade import tiny_config  # noqa: E402

ALPHA = 3.0
RUN = ["train.steps=1", "train.log_rollouts_every=1", "render.screenshot=true",
       "rollout.max_new_tokens=24", "render.num_browsers=1", f"feedback.alpha={ALPHA}"]


def test_the_report_shows_the_curves_the_renders_and_the_logged_credit_of_each_token(
        tiny_model_dir, tmp_path, process_group):
    run_dir = tmp_path / "run"
    trainer = Trainer(tiny_config(tiny_model_dir, run_dir, *RUN))
    _blame_every_third_token(trainer)  # the random model's pages have little to blame
    trainer.train()
    trainer.close()
    assert main(["report", str(run_dir)]) == 0
    log = json.loads((run_dir / "rollouts" / "step_000001" / "rollouts.json").read_text())
    samples = log["samples"]
    assert log["step"] == 1 and len(samples) == 4 and all(s["image"] for s in samples)
    assert all(len(s["offsets"]) == len(s["weights"]) for s in samples)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=LAUNCH_ARGS)
        page = browser.new_page()
        page.goto((run_dir / "report.html").as_uri())
        images = page.eval_on_selector_all(
            "img", "all => all.map(i => [i.className, i.naturalWidth, i.naturalHeight])")
        shown = page.eval_on_selector_all("pre.code", """all => all.map(pre => ({
            text: pre.textContent,
            tokens: [...pre.querySelectorAll('.tok')].map(t => [+t.dataset.token,
                     +t.dataset.weight, getComputedStyle(t).backgroundColor])}))""")
        browser.close()
    classes = [c for c, _, _ in images]
    assert classes.count("curve") == 5 and classes.count("render") == 4
    assert all(w > 0 and h > 0 for _, w, h in images)
    assert len(shown) == 4
    for sample, code in zip(samples, shown):
        # one character per code character; controls as their pictures (a random model's)
        assert code["text"] == html.unescape(visible(sample["code"]))
        assert [t for t, _, _ in code["tokens"]] == _visible_tokens(sample["offsets"])
        for t, weight, background in code["tokens"]:
            assert weight == sample["weights"][t]
            shade = float(background.rstrip(")").split(",")[3]) if "rgba" in background else 1.0
            level = min(sample["weights"])  # the unblamed level of the renormalised weights
            assert abs(shade - (weight / level - 1) / (ALPHA - 1)) < 3e-3


def test_a_logged_step_is_written_whole_and_a_resumed_run_drops_the_steps_after_its_checkpoint(
        tmp_path):
    rollouts = tmp_path / "rollouts"
    for name in ("step_000001", "step_000002", "step_000003", "step_000004.tmp"):
        (rollouts / name).mkdir(parents=True)
    log = RolloutLog(tmp_path, every=2, alpha=ALPHA, group_size=2, start_step=2, rank=0)
    log.tb = FakeWriter()
    assert sorted(p.name for p in rollouts.iterdir()) == ["step_000001", "step_000002"]
    png = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(png, format="PNG")
    result = RenderResult(ok=True, image=png.getvalue(), width=40, height=30,
                          defects=[Defect("overlap", (2, 2, 20, 20), 1.0, "two boxes", [(0, 3)])])
    scored = [Scored(0.5, True, ["overlap"], "ctx", torch.tensor([ALPHA, 1.0]), None, result,
                     {"reward": 0.5})] * 3
    task = Task(id="t0", domain="web", prompt="a page")
    args = ([task] * 3, [Completion(0, [1, 2], "<p>x</p>", torch.zeros(2), True)] * 3,
            [[(0, 3), (3, 8)]] * 3, scored, [0.5, -0.5, 0.0])
    log.write(3, *args)  # not a step to log
    log.write(2, *args)
    step = json.loads((rollouts / "step_000002" / "rollouts.json").read_text())
    assert [s["advantage"] for s in step["samples"]] == [0.5, -0.5]  # the first group
    assert step["samples"][0]["weights"] == [ALPHA, 1.0]
    # nothing drawn by the span: r is the defect's severity (feedback/credit.py)
    assert step["samples"][0]["blamed"] == [{"span": [0, 3], "r": 1.0, "weight": ALPHA}]
    assert sorted(p.name for p in (rollouts / "step_000002").iterdir()) == [
        "rollouts.json", "sample_0.png", "sample_1.png"]
    assert [(tag, shape, step) for tag, shape, step in log.tb.images] == [
        ("rollouts/sample_0", (30, 40, 3), 2), ("rollouts/sample_1", (30, 40, 3), 2)]


class FakeWriter:
    """Records `add_image` calls as a TensorBoard `SummaryWriter` receives them."""

    def __init__(self):
        self.images = []

    def add_image(self, tag, image, step, dataformats):
        assert dataformats == "HWC"
        self.images.append((tag, image.shape, step))


def _blame_every_third_token(trainer: Trainer) -> None:
    """Weights 1 + (α − 1)·k/3 on every third token, renormalised to mean 1 as the scorer's
    are: shades that differ, and the extremes."""
    score = trainer.scorer.score

    async def blaming(*args):
        scored = await score(*args)
        for s in scored:
            raw_T = torch.ones_like(s.credit_weight_T)
            raw_T[::3] = 1.0 + (ALPHA - 1.0) * (torch.arange(len(raw_T[::3])) % 4) / 3
            s.credit_weight_T = raw_T / raw_T.mean()
        return scored
    trainer.scorer.score = blaming


def _visible_tokens(offsets: list[list[int]]) -> list[int]:
    """Tokens that bring characters of their own: not empty, not inside the ones before."""
    visible, cursor = [], 0
    for t, (start, end) in enumerate(offsets):
        if end > max(start, cursor):
            visible.append(t)
            cursor = end
    return visible


def test_the_eval_table_shows_each_value_with_its_interval(tmp_path):
    from vsdpo.apps.report import eval_html
    (tmp_path / "eval.json").write_text(json.dumps({
        "before": {"reward": 0.5, "reward@lo": 0.25, "reward@hi": 0.75, "prompts": 4},
        "after": {"reward": 0.625, "reward@lo": 0.5, "reward@hi": 0.75}}))
    table = eval_html(tmp_path / "eval.json")
    assert "0.500 [0.250, 0.750]" in table and "0.625 [0.500, 0.750]" in table
    assert "@" not in table and "<td>-</td>" in table  # 'after' has no prompt count
