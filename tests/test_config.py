"""The run config: TOML + overrides into typed dataclasses, and the errors it promises."""

import json

import pytest
import torch.distributed as dist

from vsdpo.config import ConfigError, check_resume, load_config, save_config
from vsdpo.train.trainer import Trainer
from vsdpo.warmstart.build import warmstart_dir

BASE = ["model.path=warmstart"]


def test_overrides_are_coerced_to_the_field_types():
    cfg = load_config(None, BASE + ["train.lr=1", "train.steps=7", "model.compile=true",
                                    "tasks.domains=['web', 'slide']", "run_dir=runs/x"])
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.train.steps == 7 and cfg.model.compile is True
    assert cfg.tasks.domains == ["web", "slide"] and cfg.run_dir == "runs/x"


def test_the_shipped_tiny_config_loads():
    cfg = load_config("configs/tiny.toml")
    assert cfg.model.path and cfg.render.num_browsers == 1


def test_the_resolved_config_round_trips_through_toml(tmp_path):
    cfg = load_config("configs/tiny.toml", ["render.timeout_s=3", "loss.divergence=jsd"])
    save_config(cfg, tmp_path / "config.toml")
    assert load_config(tmp_path / "config.toml") == cfg


@pytest.mark.parametrize("override, message", [
    ("train.lr_rate=1e-3", "unknown key train.lr_rate: did you mean train.lr?"),
    ("trian.steps=3", "unknown key trian: did you mean train?"),
    ("render.chart.timeout=3", "unknown key render.chart.timeout: did you mean render.chart.timeout_s?"),
    ("train.steps=many", "train.steps must be an int, got 'many'"),
    ("train.steps=2.5", "train.steps must be an int, got 2.5"),
    ("model.compile=3", "model.compile must be a bool"),
    ("train.teacher=ema2", "train.teacher must be live, ema or frozen"),
    ("feedback.teacher_sees=render", "feedback.teacher_sees must be 'traced', 'plain' or "
     "'reference', got 'render'"),
    ("feedback.credit=blamed", "feedback.credit must be 'traced' or 'random'"),
    ("feedback.alpha=0.5", "feedback.alpha must be >= 1"),
    ("train.alpha=3", "train.alpha was renamed feedback.alpha: set feedback.alpha instead"),
    ("rollout.backend=vllm", "rollout.backend was renamed rollout.engine: set rollout.engine"),
    ("loss.backend=torch", "loss.backend was renamed loss.kernel: set loss.kernel"),
    ("loss.is_clip=2", "loss.is_clip was renamed loss.divergence_ratio_clip"),
    ("rollout.tis_clip=2", "rollout.tis_clip was renamed rollout.is_weight_clip"),
    ("loss.temperature=0.7", "loss.temperature (0.7) must equal rollout.temperature (1.0)"),
    ("loss.divergence=l2", "loss: divergence='l2': use one of"),
    ("train.ema_rate=0", "train.ema_rate must be in (0, 1]"),
    ("rollout.group_size=1", "rollout.group_size is 1: group advantages need >= 2"),
    ("rollout.engine=sglang", "rollout.engine must be 'transformers' or 'vllm', got 'sglang'"),
    ("rollout.is_weight_clip=0.5", "rollout.is_weight_clip must be >= 1"),
    ("rollout.vllm.tensor_parallel_size=3", "rollout.vllm.tensor_parallel_size (3) must be >= 1 "
     "and divide the number of processes (1)"),
    ("parallel.replicate=2", "parallel.replicate (2) must be >= 1 and divide the number of "
     "processes (1): set it to the number of nodes"),
    ("parallel.replicate=0", "parallel.replicate (0) must be >= 1"),
    ("rollout.vllm.max_model_len=64", "rollout.vllm.max_model_len (64) must exceed "
     "rollout.max_new_tokens (128)"),
    ("rollout.vllm.gpu_memory_utilization=1.5", "rollout.vllm.gpu_memory_utilization must be in (0, 1]"),
    ("rollout.vllm.tp=2", "unknown key rollout.vllm.tp: valid keys: tensor_parallel_size"),
])
def test_a_bad_key_or_value_is_named_with_its_fix(override, message):
    with pytest.raises(ValueError) as err:
        load_config(None, BASE + [override])
    assert message in str(err.value)


def test_switching_off_both_loss_terms_is_refused():
    with pytest.raises(ValueError, match="loss.kl_coef and loss.pg_coef are both 0"):
        load_config(None, BASE + ["loss.kl_coef=0", "loss.pg_coef=0"])


def test_the_ablations_are_valid_configs():
    grpo = load_config(None, BASE + ["loss.kl_coef=0"])
    sdpo = load_config(None, BASE + ["feedback.teacher_sees=plain", "feedback.alpha=1"])
    control = load_config(None, BASE + ["feedback.credit=random"])
    assert grpo.loss.kl_coef == 0 and sdpo.feedback.alpha == 1.0
    assert sdpo.feedback.teacher_sees == "plain" and control.feedback.credit == "random"
    assert (grpo.feedback.teacher_sees, grpo.feedback.credit) == ("traced", "traced")


def test_a_missing_model_directory_says_what_to_use_instead(tmp_path):
    with pytest.raises(ValueError, match="model.path '.*nope' is not a directory.*'warmstart'"):
        load_config(None, [f"model.path='{tmp_path / 'nope'}'"])
    assert load_config(None, [f"model.path='{tmp_path}'"]).model.path == str(tmp_path)


def test_an_override_without_equals_sign_is_refused():
    with pytest.raises(ValueError, match="must look like section.key=value"):
        load_config(None, BASE + ["train.steps"])


def test_reward_and_context_settings_reach_the_trainers_scorer_from_toml(tmp_path):
    from vsdpo.train.trainer import build_scorer
    path = tmp_path / "run.toml"
    path.write_text('[feedback.reward]\nquality_weight = 0.25\nkind_weights = {overlap = 2.0}\n'
                    '[feedback.context]\ninstruction = "Fix it."\nmax_chars = 4000\n')
    cfg = load_config(path)
    scorer = build_scorer(cfg, pool=None)
    assert scorer.reward_config.quality_weight == 0.25
    assert scorer.reward_config.kind_weights == {"overlap": 2.0}
    assert (scorer.context_config.instruction, scorer.context_config.max_chars) == ("Fix it.", 4000)
    save_config(cfg, tmp_path / "resolved.toml")  # the templates' newlines survive the round trip
    assert load_config(tmp_path / "resolved.toml") == cfg


@pytest.mark.parametrize("override, message", [
    ("feedback.context.instructions='x'", "unknown key feedback.context.instructions: did you "
     "mean feedback.context.instruction?"),
    ("feedback.reward.quality=0.3", "unknown key feedback.reward.quality: did you mean "
     "feedback.reward.quality_weight?"),
    ("feedback.reward.quality_weight=2", "feedback.reward: RewardConfig.quality_weight must be "
     "in [0, 1]"),
])
def test_a_bad_reward_or_context_key_is_a_config_error_naming_it(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, BASE + [override])
    assert message in str(err.value)


def test_a_vision_language_model_read_from_disk_needs_screenshots_for_pages(tmp_path):
    """Checked from config.json before any process group or tokenizer exists."""
    (tmp_path / "config.json").write_text('{"model_type": "qwen2_5_vl", "vision_config": {}}')
    bad = [f"model.path='{tmp_path}'", "render.screenshot=false", "tasks.domains=['web']"]
    with pytest.raises(ConfigError, match="render.screenshot is false, but a vision-language"):
        load_config(None, bad)
    assert load_config(None, bad[:2] + ["tasks.domains=['chart']"]).render.screenshot is False
    with pytest.raises(ConfigError, match="render.screenshot is false"):
        load_config(None, ["model.path='tiny-vl'", "render.screenshot=false"])


def test_a_run_resumes_only_from_the_model_it_started_from(tmp_path):
    """A rebuilt warm start has another directory; resuming its old run would load weights
    that do not fit the new tokenizer. The trainer finds out before it starts a process group
    (or rebuilds the warm start)."""
    run, model_a, model_b = tmp_path / "run", tmp_path / "a", tmp_path / "b"
    model_a.mkdir(), model_b.mkdir()
    step = run / "checkpoints" / "step_000002"
    step.mkdir(parents=True)
    meta = {"step": 2, "position": 0, "model": str(model_a)}
    (step / "meta.json").write_text(json.dumps(meta))
    resume = [f"run_dir='{run}'"]
    check_resume(load_config(None, [*resume, f"model.path='{model_a}'"]))
    other = load_config(None, [*resume, f"model.path='{model_b}'"])
    with pytest.raises(ConfigError, match=f"model.path.*started from {model_a}: delete"):
        check_resume(other)
    had_group = dist.is_initialized()
    with pytest.raises(ConfigError, match="model.path"):
        Trainer(other)
    assert dist.is_initialized() == had_group

    (step / "meta.json").write_text(json.dumps({**meta, "model": str(warmstart_dir())}))
    check_resume(load_config(None, [*resume, "model.path='warmstart'"]))
    (step / "meta.json").write_text(json.dumps({**meta, "model": "/x/warmstart-0123"}))
    with pytest.raises(ConfigError, match="started from /x/warmstart-0123"):
        check_resume(load_config(None, [*resume, "model.path='warmstart'"]))

    (step / "meta.json").write_text(json.dumps({"step": 2, "position": 0}))  # older runs
    check_resume(other)
    check_resume(load_config(None, [f"run_dir='{tmp_path / 'fresh'}'", f"model.path='{model_b}'"]))
