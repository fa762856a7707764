"""`vsdpo warmstart`: build the embedded default policy, cached by its configuration.

corpus (synthetic tasks, programs, rendered feedback) → byte-level BPE tokenizer → tiny
Llama decoder → SFT → a transformers directory (safetensors + tokenizer) that
`AutoModelForCausalLM.from_pretrained` / `AutoTokenizer.from_pretrained` load.

The directory is `out_dir / "warmstart-<key>"`, where the key hashes the config, the library
versions and the code of every module that shapes the corpus or the model (tasks, warm-start
but its gate `measure.py`, render, feedback; Python as its syntax tree without docstrings or
comments, so editing the prose keeps the cache): a change to any of them builds a new model;
otherwise the cached one is returned.
`warmstart.json` in the directory records the config, the timings and the loss curve, and is
written last, so a directory without it is an interrupted build and is rebuilt.
"""

import ast
import hashlib
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import tokenizers
import torch
import transformers

import vsdpo
from vsdpo.warmstart.corpus import (ContextFn, RenderFn, feedback_examples, real_context_fn,
                                    real_render_fn, student_examples)
from vsdpo.warmstart.induction import ROPE_THETA, check_fits, install_induction_head
from vsdpo.warmstart.sft import build_model, copy_sequences, encode, train
from vsdpo.warmstart.tokenizer import train_tokenizer

_SOURCES = ("tasks", "warmstart", "render", "feedback")
_NOT_HASHED = ("warmstart/measure.py",)  # the teacher gate: it reads the model, not shapes it


@dataclass(frozen=True)
class WarmstartConfig:
    """Sizes of the corpus, the tokenizer, the model and the SFT run."""

    seed: int = 0
    num_student_examples: int = 4000
    num_feedback_examples: int = 960  # each one is rendered once
    prone_fraction: float = 0.5  # chance that a block of a student's program is in a prone style
    vocab_size: int = 1024
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384
    max_len: int = 1280  # tokens per sequence, prompt + completion
    copy_steps: int = 500  # the copy stage (sft.copy_sequences), before the corpus
    copy_batch_size: int = 64
    copy_per_batch: int = 16  # copy sequences added to every corpus batch (sft.py)
    steps: int = 2400  # the teacher gate's fidelity half needs them (docs/tasks.md)
    batch_size: int = 16
    feedback_fraction: float = 0.5  # share of each batch drawn from the feedback examples
    lr: float = 1e-3
    warmup_steps: int = 20
    content_weight: float = 5.0  # loss weight of completion tokens that copy a prompt word
    induction_head: bool = True  # write one in before training (induction.py)

    def __post_init__(self):
        for name in ("num_student_examples", "num_feedback_examples", "hidden_size",
                     "num_layers", "num_heads", "intermediate_size", "max_len", "steps",
                     "batch_size", "copy_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"WarmstartConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("prone_fraction", "feedback_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"WarmstartConfig.{name} must be in [0, 1], "
                                 f"got {getattr(self, name)}")
        if self.induction_head:
            try:
                check_fits(self.num_layers, self.hidden_size // self.num_heads, self.max_len)
            except ValueError as err:
                raise ValueError(f"WarmstartConfig: {err}") from None
        if self.hidden_size % self.num_heads:
            raise ValueError(f"WarmstartConfig.hidden_size ({self.hidden_size}) must be a "
                             f"multiple of num_heads ({self.num_heads})")
        if self.content_weight < 1.0:
            raise ValueError("WarmstartConfig.content_weight must be >= 1, "
                             f"got {self.content_weight}")
        for name in ("copy_steps", "copy_per_batch"):
            if getattr(self, name) < 0:
                raise ValueError(f"WarmstartConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0 or self.warmup_steps < 0:
            raise ValueError(f"WarmstartConfig: lr must be > 0 and warmup_steps >= 0, got "
                             f"lr={self.lr}, warmup_steps={self.warmup_steps}")


def cache_key(config: WarmstartConfig) -> str:
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    versions = f"{torch.__version__} {transformers.__version__} {tokenizers.__version__}"
    digest.update(versions.encode())
    root = Path(vsdpo.__file__).parent
    for package in _SOURCES:
        for path in sorted((root / package).glob("*.[pj][ys]")):
            if f"{package}/{path.name}" in _NOT_HASHED:
                continue
            digest.update(path.name.encode() + code_of(path))
    return digest.hexdigest()[:16]


def code_of(path: Path) -> bytes:
    """A source file as the cache key sees it: a Python file's syntax tree without its
    docstrings (comments are not in the tree); any other file's bytes."""
    if path.suffix != ".py":
        return path.read_bytes()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def default_cache_dir() -> Path:
    """`.cache/warmstart` under the repository (git-ignored)."""
    return Path(vsdpo.__file__).resolve().parents[1] / ".cache" / "warmstart"


def warmstart_dir(out_dir: str | Path | None = None,
                  config: WarmstartConfig = WarmstartConfig()) -> Path:
    """Where `warmstart` keeps the model for `config`, whether or not it is built yet."""
    return Path(out_dir or default_cache_dir()) / f"warmstart-{cache_key(config)}"


def warmstart(out_dir: str | Path | None = None, config: WarmstartConfig = WarmstartConfig(), *,
              render_fn: RenderFn | None = None, context_fn: ContextFn | None = None,
              log=log_to_stderr) -> Path:
    """The model directory for `config`, built unless cached; see the module docstring.
    Progress goes to stderr, so `vsdpo warmstart` and `vsdpo eval --json` print only results."""
    path = warmstart_dir(out_dir, config)
    if (path / "warmstart.json").exists():
        log(f"warmstart: cached model at {path}")
        return path
    start = time.perf_counter()
    c = config
    student = student_examples(c.num_student_examples, c.seed, c.prone_fraction)
    feedback = feedback_examples(c.num_feedback_examples, c.seed, c.prone_fraction,
                                 render_fn or real_render_fn(),
                                 context_fn or real_context_fn())
    corpus_s = time.perf_counter() - start
    log(f"warmstart: corpus of {len(student)} student + {len(feedback)} feedback examples "
        f"in {corpus_s:.0f}s")
    tokenizer = train_tokenizer((e.prompt + e.completion for e in student + feedback),
                                c.vocab_size)
    model = build_model(tokenizer, c.hidden_size, c.num_layers, c.num_heads,
                        c.intermediate_size, c.max_len, c.seed,
                        **({"rope_theta": ROPE_THETA} if c.induction_head else {}))
    if c.induction_head:
        install_induction_head(model, c.max_len, c.seed)
    student_ids, feedback_ids = (encode(part, tokenizer, c.max_len, c.content_weight)
                                 for part in (student, feedback))
    copies = copy_sequences(tokenizer, c.copy_steps * c.copy_batch_size, c.seed)
    copy_losses = train(model, copies, [], pad_id=tokenizer.pad_token_id, steps=c.copy_steps,
                        batch_size=c.copy_batch_size, feedback_fraction=0.0, lr=c.lr,
                        warmup_steps=c.warmup_steps, seed=c.seed, log=log, stage="copy",
                        decay=False)  # constant lr: a decayed one stalls the induction head
    losses = train(model, student_ids, feedback_ids, pad_id=tokenizer.pad_token_id,
                   steps=c.steps, batch_size=c.batch_size, feedback_fraction=c.feedback_fraction,
                   lr=c.lr, warmup_steps=c.warmup_steps, seed=c.seed, log=log,
                   copy=copies, copy_per_batch=c.copy_per_batch)
    shutil.rmtree(path, ignore_errors=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    record = {"config": asdict(c), "corpus_s": round(corpus_s, 1),
              "total_s": round(time.perf_counter() - start, 1),
              "num_params": sum(p.numel() for p in model.parameters()),
              "copy_losses": copy_losses, "losses": losses}
    (path / "warmstart.json").write_text(json.dumps(record, indent=1))
    log(f"warmstart: {record['num_params'] / 1e6:.2f}M parameters, final loss "
        f"{losses[-1]:.3f}, {record['total_s']:.0f}s, saved to {path}")
    return path
