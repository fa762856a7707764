"""Design2Code's CLIP score from a local model directory. No CLIP checkpoint can be downloaded
here, so a tiny CLIP built from a config with random weights stands in for one: the tests
check the plumbing (text masked, pairs matched, failures scored 0, the eval column), not
what a trained CLIP thinks of a page."""

import asyncio
import io

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

from vsdpo.apps.evaluate import score_samples
from vsdpo.config import Config
from vsdpo.feedback.clip_score import ClipScorer, masked_screenshot
from vsdpo.render import Artifact, RenderConfig, render
from vsdpo.render.types import RenderResult
from vsdpo.tasks.task import Task

PAGE = ('<body style="margin:0;background:#fff"><div style="margin:40px;width:400px;height:200px;'
        'background:#2a6"></div><p style="margin:40px;font:20px monospace">{text}</p></body>')
CONFIG = RenderConfig(num_browsers=1, pages_per_browser=2)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 2, "image_size": 64, "patch_size": 16}
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "vocab_size": 99, "bos_token_id": 0, "eos_token_id": 1}
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 64},
                       crop_size={"height": 64, "width": 64}).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def renders():
    pages = [PAGE.format(text="Hello"), PAGE.format(text="World"),
             PAGE.replace("#2a6", "#a26").replace("width:400px", "width:900px").format(text="Hello")]
    return render([Artifact("web", p) for p in pages], CONFIG)


def test_text_is_masked_so_only_the_layout_counts(clip_dir, renders):
    hello, world, other = renders
    assert hello.image != world.image
    masked = [np.asarray(masked_screenshot(r)) for r in (hello, world)]
    assert np.array_equal(*masked)  # same boxes, other words: masked alike
    assert (masked[0] == 255).all(axis=-1).sum() > (np.asarray(  # text pixels became white
        Image.open(io.BytesIO(hello.image)).convert("RGB")) == 255).all(axis=-1).sum()
    same, reworded, changed = ClipScorer(clip_dir).similarity([hello, world, other], [hello] * 3)
    assert same == pytest.approx(1.0, abs=1e-5) and reworded == pytest.approx(1.0, abs=1e-5)
    assert 0.0 <= changed < 0.999


def test_a_failed_render_or_a_missing_reference_scores_zero(clip_dir, renders):
    failed = RenderResult(ok=False, error="SyntaxError")
    assert ClipScorer(clip_dir).similarity([failed, renders[0]], [renders[0], None]) == [0.0, 0.0]


def test_a_directory_without_a_clip_model_is_refused_with_the_flag_named(tmp_path):
    with pytest.raises(ValueError, match="--clip .*not a local CLIP model directory"):
        ClipScorer(str(tmp_path))


def test_eval_rows_of_pages_with_a_reference_get_the_clip_column(clip_dir):
    reference = PAGE.format(text="Hello")
    tasks = [Task("page", "web", "Reproduce the page.", reference_code=reference),
             Task("free", "web", "Write any page.")]
    cfg = Config(render=CONFIG)
    rows = asyncio.run(score_samples(cfg, tasks, [reference, reference], ClipScorer(clip_dir)))
    assert rows[0]["design2code/clip"] == pytest.approx(1.0, abs=1e-5)
    assert "design2code/clip" not in rows[1] and "design2code/mean" in rows[0]
