"""Run configuration: a TOML file → a tree of dataclasses, `--set a.b=c` overrides, checks.

Every mistake is caught here, before a process group, a model or a browser starts: an
unknown key (with the nearest valid name), a value of the wrong type, and options that
contradict each other. The resolved tree is written to the run directory as TOML.

    cfg = load_config("configs/tiny.toml", ["train.steps=4", "loss.kl_coef=0"])
"""

import dataclasses
import difflib
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kernels import LossConfig
from vsdpo.feedback.context import ContextConfig
from vsdpo.feedback.reward import RewardConfig
from vsdpo.render import RenderConfig
from vsdpo.render.pool import HTML_DOMAINS
from vsdpo.tasks import DOMAINS, Task, load_tasks


class ConfigError(ValueError):
    """A config mistake; the message names the key and the fix."""


# Keys that moved: the old name is an error that names the new one (never silently ignored).
RENAMED = {
    "train.alpha": "feedback.alpha",
    "rollout.backend": "rollout.engine",
    "loss.backend": "loss.kernel",
    "loss.is_clip": "loss.divergence_ratio_clip",
    "rollout.tis_clip": "rollout.is_weight_clip",
}


@dataclass
class ModelConfig:
    path: str = "warmstart"       # a transformers directory (causal LM, Qwen2.5-VL or Qwen3-VL),
                                  # "warmstart" (the embedded default) or "tiny-vl" (a tiny VL)
    dtype: str = "float32"        # parameter dtype for compute: float32 | bfloat16
    activation_checkpointing: bool = False
    compile: bool = False
    freeze_vision: bool = True    # vision-language policies: the vision tower stays out of the optimizer
    max_pixels: int = 401408      # vision-language policies: pixel budget per image (512 · 28²)


@dataclass
class ParallelConfig:
    replicate: int = 1            # HSDP: replica groups; each shards the model over
                                  # world/replicate ranks (1: FSDP over all ranks)


@dataclass
class VLLMConfig:
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.35  # CUDA: share of GPU memory for weights + KV while awake
    cpu_kv_cache_gb: float = 0.25         # CPU: KV cache size (vLLM would take most of RAM)
    max_model_len: int = 2048             # prompt + completion tokens
    sleep: bool = True                    # CUDA: free weights + KV (level 2) during the update


@dataclass
class RolloutConfig:
    engine: str = "transformers"   # transformers | vllm
    prompts_per_step: int = 2     # per rank
    group_size: int = 4           # G samples per prompt
    max_new_tokens: int = 128
    temperature: float = 1.0
    recompute_logprobs: bool = False  # the trainer's old log-probs + truncated importance weight
    is_weight_clip: float = 2.0   # truncation of that token-level importance weight
    max_staleness: int = 0        # 0: sample each batch in its step; 1: one step ahead, while the
                                  # previous batch trains (docs/rollout.md, "Overlapped rollouts")
    stream: bool = False          # render each group as soon as it is sampled, and run its
                                  # teacher forward once it is scored (docs/rollout.md, "Streaming")
    weight_bucket_mb: int = 512   # weight sync: full parameters gathered per bucket
    vllm: VLLMConfig = field(default_factory=VLLMConfig)


@dataclass
class FeedbackConfig:
    sibling: bool = True          # show the best sibling's code to the teacher
    teacher_sees: str = "traced"  # traced: the defect report with blamed lines and code;
                                  # plain: each defect's kind and message only (SDPO);
                                  # reference: the task's reference program instead
                                  # (OPSD-style), where the task has one
    alpha: float = 3.0            # credit weight on blamed tokens; 1 = uniform (SDPO)
    credit: str = "traced"        # traced: weight up the blamed statements; random: as many
                                  # statements, same r, drawn at random (the control)
    scale_by_std: bool = True     # GRPO advantage normalisation
    screenshot: str = "boxed"     # vision-language teacher: the student's render with defect
                                  # boxes drawn on it (boxed), as rendered (plain), or none
    reward: RewardConfig = field(default_factory=RewardConfig)     # [feedback.reward]
    context: ContextConfig = field(default_factory=ContextConfig)  # [feedback.context]


@dataclass
class TrainConfig:
    steps: int = 10
    lr: float = 1e-4
    warmup_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    micro_batch_tokens: int = 4096  # padded tokens per forward (student + teacher rows)
    seed: int = 0
    checkpoint_every: int = 0     # 0: only at the end
    teacher: str = "ema"          # live | ema | frozen
    ema_rate: float = 0.05
    max_skipped_steps: int = 3    # stop after this many updates in a row skipped (non-finite)
    collective_timeout_s: float = 1800.0  # a collective waiting longer fails (dead/stuck rank)
    log_rollouts_every: int = 0   # keep rank 0's first group every N steps (rollouts/); 0: off


@dataclass
class TasksConfig:
    path: str = ""                # JSONL; empty: the embedded synthetic generator
    eval_path: str = ""
    num_train: int = 64
    num_eval: int = 32
    seed: int = 0
    domains: list[str] = field(default_factory=lambda: ["chart", "web", "slide"])


@dataclass
class Config:
    run_dir: str = "runs/tiny"
    model: ModelConfig = field(default_factory=ModelConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Defaults ← TOML file ← `a.b=c` overrides, then `check_config`."""
    raw = _read_toml(Path(path)) if path else {}
    cfg = _build(Config, _apply_overrides(raw, overrides), prefix="")
    check_config(cfg)
    return cfg


def add_config_args(parser) -> None:
    """`--config F` and repeatable `--set a.b=c`: the two flags of every command that runs a
    config (`vsdpo train|eval|demo`, `python -m vsdpo.train`)."""
    parser.add_argument("--config", default="configs/tiny.toml",
                        help="TOML run config (default: configs/tiny.toml)")
    parser.add_argument("--set", action="append", default=[], metavar="A.B=C",
                        help="override one config key, repeatable: --set train.steps=4 "
                        "--set loss.kl_coef=0")


def build_dataclass(cls, overrides: list[str] = (), prefix: str = ""):
    """Any config dataclass (e.g. `WarmstartConfig`) from `key=value` overrides, same checks."""
    return _build(cls, _apply_overrides({}, overrides), prefix=prefix)


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None


def _apply_overrides(raw: dict, overrides: list[str]) -> dict:
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        _set_dotted(raw, key.strip(), _parse_literal(value.strip()))
    return raw


def check_config(cfg: Config) -> None:
    """Options that are each valid but contradict one another, or are out of range."""
    t, r, loss = cfg.train, cfg.rollout, cfg.loss
    _require(t.teacher in ("live", "ema", "frozen"), "train.teacher",
             f"must be live, ema or frozen, got {t.teacher!r}")
    _require(cfg.feedback.teacher_sees in ("traced", "plain", "reference"),
             "feedback.teacher_sees", "must be 'traced', 'plain' or 'reference', "
             f"got {cfg.feedback.teacher_sees!r}")
    _require(cfg.feedback.credit in ("traced", "random"), "feedback.credit",
             f"must be 'traced' or 'random', got {cfg.feedback.credit!r}")
    _require(0.0 < t.ema_rate <= 1.0, "train.ema_rate", f"must be in (0, 1], got {t.ema_rate}")
    _require(cfg.feedback.alpha >= 1.0, "feedback.alpha",
             f"must be >= 1 (1 = uniform credit), got {cfg.feedback.alpha}")
    _require(loss.kl_coef > 0 or loss.pg_coef > 0, "loss.kl_coef",
             "and loss.pg_coef are both 0: nothing to train; set one of them > 0")
    _require(loss.temperature == r.temperature, "loss.temperature",
             f"({loss.temperature}) must equal rollout.temperature ({r.temperature}): the "
             "policy-gradient ratio compares against the sampling distribution")
    _require(r.group_size >= 2 or loss.pg_coef == 0, "rollout.group_size",
             f"is {r.group_size}: group advantages need >= 2 samples per prompt; "
             "raise it or set loss.pg_coef=0")
    _require(r.engine in ("transformers", "vllm"), "rollout.engine",
             f"must be 'transformers' or 'vllm', got {r.engine!r}")
    _require(r.is_weight_clip >= 1.0, "rollout.is_weight_clip",
             f"must be >= 1 (it truncates an importance weight), got {r.is_weight_clip}")
    _require(r.max_staleness in (0, 1), "rollout.max_staleness",
             f"must be 0 (synchronous) or 1 (one step ahead), got {r.max_staleness}")
    _require(not (r.max_staleness and r.engine == "vllm" and r.vllm.sleep),
             "rollout.max_staleness", "= 1 samples the next batch during the update, so the vLLM "
             "engine cannot sleep then: set rollout.vllm.sleep = false (the memory it then "
             "keeps: docs/gpu.md) or rollout.max_staleness = 0")
    _require(not (r.max_staleness and r.engine == "vllm" and r.vllm.tensor_parallel_size > 1),
             "rollout.max_staleness", "= 1 needs rollout.vllm.tensor_parallel_size = 1: a "
             "tensor-parallel engine's collectives would run on the rollout thread beside the "
             "trainer's, in no fixed order across ranks (NCCL can deadlock)")
    _require(not (r.stream and r.engine == "vllm" and r.vllm.sleep), "rollout.stream",
             "= true runs the teacher while the vLLM engine samples, so the engine cannot "
             "sleep then: set rollout.vllm.sleep = false (the memory it then keeps: docs/gpu.md) "
             "or rollout.stream = false")
    _require(not (r.stream and r.engine == "vllm" and r.vllm.tensor_parallel_size > 1),
             "rollout.stream", "= true needs rollout.vllm.tensor_parallel_size = 1: the engine's "
             "collectives would run on its thread beside the teacher's, in no fixed order "
             "across ranks (NCCL can deadlock)")
    check_restartable_launch(os.environ)
    world = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun; checked before it starts
    replicate = cfg.parallel.replicate
    _require(replicate >= 1 and world % replicate == 0, "parallel.replicate",
             f"({replicate}) must be >= 1 and divide the number of processes ({world}): set it "
             "to the number of nodes (shard inside a node), or 1 for FSDP over all ranks")
    tp = r.vllm.tensor_parallel_size
    _require(tp >= 1 and world % tp == 0, "rollout.vllm.tensor_parallel_size",
             f"({tp}) must be >= 1 and divide the number of processes ({world})")
    _require(0 < r.vllm.gpu_memory_utilization <= 1, "rollout.vllm.gpu_memory_utilization",
             f"must be in (0, 1], got {r.vllm.gpu_memory_utilization}")
    _require(r.vllm.max_model_len > r.max_new_tokens, "rollout.vllm.max_model_len",
             f"({r.vllm.max_model_len}) must exceed rollout.max_new_tokens ({r.max_new_tokens})")
    _require(cfg.model.dtype in ("float32", "bfloat16"), "model.dtype",
             f"must be float32 or bfloat16, got {cfg.model.dtype!r}")
    _require(cfg.model.path in ("warmstart", "tiny-vl") or Path(cfg.model.path).is_dir(),
             "model.path", f"{cfg.model.path!r} is not a directory: point it at a transformers "
             "model directory, or set it to 'warmstart' (the embedded default) or 'tiny-vl'")
    _require(cfg.model.max_pixels >= 56 * 56, "model.max_pixels",
             f"must be >= {56 * 56} (one 2×2 merge of 28-pixel patches), got {cfg.model.max_pixels}")
    _require(cfg.feedback.screenshot in ("boxed", "plain", "none"), "feedback.screenshot",
             f"must be 'boxed', 'plain' or 'none', got {cfg.feedback.screenshot!r}")
    train_tasks = _task_file("tasks.path", cfg.tasks.path)
    _task_file("tasks.eval_path", cfg.tasks.eval_path)
    _require(bool(cfg.tasks.path) or cfg.tasks.num_train >= 1, "tasks.num_train",
             f"must be >= 1 when tasks.path is not set, got {cfg.tasks.num_train}")
    _require(cfg.tasks.num_eval >= 0, "tasks.num_eval", f"must be >= 0, got {cfg.tasks.num_eval}")
    _require(bool(cfg.tasks.domains) and set(cfg.tasks.domains) <= set(DOMAINS), "tasks.domains",
             f"must be a non-empty list of {list(DOMAINS)}, got {cfg.tasks.domains!r}")
    domains = [t.domain for t in train_tasks] if cfg.tasks.path else cfg.tasks.domains
    _require(cfg.render.screenshot or not _is_vision_language(cfg.model.path)
             or not set(domains) & set(HTML_DOMAINS), "render.screenshot",
             "is false, but a vision-language policy sees each page's reference render and its "
             "teacher the student's render: set render.screenshot = true")
    for name in ("steps", "micro_batch_tokens", "grad_clip", "lr"):
        _require(getattr(t, name) > 0, f"train.{name}", "must be > 0")
    for name in ("prompts_per_step", "max_new_tokens", "weight_bucket_mb"):
        _require(getattr(r, name) > 0, f"rollout.{name}", "must be > 0")
    _require(t.checkpoint_every >= 0, "train.checkpoint_every", "must be >= 0 (0 = at the end)")
    _require(t.log_rollouts_every >= 0, "train.log_rollouts_every", "must be >= 0 (0 = off)")
    _require(t.max_skipped_steps >= 1, "train.max_skipped_steps",
             f"must be >= 1 (1 = stop at the first non-finite loss or gradient), "
             f"got {t.max_skipped_steps}")
    _require(t.collective_timeout_s >= 1, "train.collective_timeout_s",
             f"must be >= 1 s, got {t.collective_timeout_s}; it must outlast the longest "
             "wait of one rank for another (a checkpoint save, the warm-start build)")


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The run directory's latest complete checkpoint (`vsdpo/train/checkpoint.py` writes
    them; `check_resume` reads which model it started from)."""
    found = sorted(p for p in (Path(run_dir) / "checkpoints").glob("step_*")
                   if p.is_dir() and not p.name.endswith(".tmp") and (p / "meta.json").is_file())
    return found[-1] if found else None


def check_resume(cfg: Config) -> None:
    """A run directory resumes only from the model it started from: another one (a rebuilt
    warm start, whose cache key changed) would load weights that do not fit its tokenizer.
    Checked before any work, so a changed warm start is not rebuilt first. "tiny-vl" is not
    checked: its random weights come from one fixed recipe, and a run over them resumes."""
    latest = latest_checkpoint(cfg.run_dir)
    started = latest and json.loads((latest / "meta.json").read_text()).get("model")
    if not started or cfg.model.path == "tiny-vl":
        return
    model_dir = cfg.model.path
    if model_dir == "warmstart":
        from vsdpo.warmstart.build import warmstart_dir  # hashes the sources: only when resuming
        model_dir = str(warmstart_dir())
    _require(started == model_dir, "model.path",
             f"is {model_dir}, but {cfg.run_dir} holds a run started from {started}: delete the "
             "run directory, or set run_dir to a new one")


def _is_vision_language(path: str) -> bool:
    """From the model directory's config.json on disk, before anything is loaded. The names
    built on demand are known by name: "tiny-vl" is vision-language, "warmstart" is not."""
    if path in ("warmstart", "tiny-vl"):
        return path == "tiny-vl"
    config = Path(path) / "config.json"
    return config.is_file() and "vision_config" in json.loads(config.read_text())


def _task_file(key: str, path: str) -> list[Task]:
    """The tasks of a JSONL task file, read now so that a missing, malformed or empty file
    is a config mistake; none when `path` is unset."""
    if not path:
        return []
    _require(Path(path).is_file(), key, f"{path!r}: no such file")
    try:
        tasks = load_tasks(path)
    except ValueError as err:  # names the file and line
        raise ConfigError(f"{key}: {err}") from None
    _require(bool(tasks), key, f"{path!r} holds no task")
    return tasks


def check_restartable_launch(env: Mapping[str, str]) -> None:
    """Refuse `torchrun --max-restarts=N` (N > 0) over a rendezvous store that torchrun's
    agents share across restarts. The restarted workers would find the last group's keys
    still in that store, and read a dead peer's address from them: gloo's connect is
    refused, or waits forever (pytorch#135712). With sharing off, each group gets a fresh
    store, hosted by its rank 0."""
    if env.get("TORCHELASTIC_USE_AGENT_STORE") == "True" and \
            int(env.get("TORCHELASTIC_MAX_RESTARTS", "0")) > 0:
        raise ConfigError("torchrun --max-restarts > 0 needs TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 "
                          "in torchrun's environment: a restarted group would read the dead "
                          "group's addresses from the shared rendezvous store (pytorch#135712)")


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved tree as TOML (scalars first, then one table per section)."""
    lines = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if not dataclasses.is_dataclass(value):
            lines.append(f"{f.name} = {_toml_value(value)}")
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            lines.append(f"\n[{f.name}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in dataclasses.asdict(value).items()
                      if v is not None]
    Path(path).write_text("\n".join(lines) + "\n")


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key} {message}")


def _build(cls, raw: dict, prefix: str):
    """Instantiate dataclass `cls` from `raw`, type-checking every key on the way."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.')} must be a table of keys, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        if prefix + key in RENAMED:
            new = RENAMED[prefix + key]
            raise ConfigError(f"{prefix}{key} was renamed {new}: set {new} instead")
        if key not in fields:
            raise ConfigError(_unknown_key(prefix + key, key, list(fields), prefix))
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, prefix + key + ".")
        else:
            kwargs[key] = _coerce(value, hint, prefix + key)
    try:
        return cls(**kwargs)
    except ValueError as err:  # a section's own range checks (e.g. LossConfig)
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {err}") from None


def _unknown_key(full: str, key: str, valid: list[str], prefix: str) -> str:
    # a shared prefix first (lr_rate → lr), else the closest spelling (trian → train)
    close = sorted((v for v in valid if key.startswith(v) or v.startswith(key)), key=len)[-1:]
    close = close or difflib.get_close_matches(key, valid, n=1)
    hint = f"did you mean {prefix}{close[0]}?" if close else f"valid keys: {', '.join(valid)}"
    return f"unknown key {full}: {hint}"


def _coerce(value, hint, key: str):
    """Check `value` against the annotation; ints widen to floats, strings are parsed."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return origin(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table, got {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(hint, type) and not isinstance(value, hint) or (
            hint is int and isinstance(value, bool)):
        name = getattr(hint, "__name__", str(hint))
        article = "an" if name[0] in "aeiou" else "a"
        raise ConfigError(f"{key} must be {article} {name}, got {value!r} ({type(value).__name__})")
    return value


def _parse_literal(text: str):
    """An override value as TOML would read it; a bare word stays a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_dotted(raw: dict, key: str, value) -> None:
    *parents, leaf = key.split(".")
    node = raw
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: {p} is a value, not a section")
    node[leaf] = value


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a TOML basic string: JSON's escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    return repr(v)
