"""The `vsdpo train`, `vsdpo eval`, `vsdpo warmstart` and `vsdpo demo` subcommands."""

import argparse
import json
import os
import sys

from vsdpo.config import ConfigError, add_config_args, build_dataclass, load_config


def add_parsers(sub) -> None:
    train = sub.add_parser("train", help="train a policy (also under torchrun)",
                           description="Train with Visual-SDPO. Single process here; the same "
                           "code runs under `torchrun --nproc_per_node=K -m vsdpo.train`. A run "
                           "directory with a checkpoint is resumed.")
    add_config_args(train)
    ev = sub.add_parser("eval", help="exec rate, defect rate and reward on held-out tasks",
                        description="Evaluate a model directory on the eval split of the "
                        "config's tasks and print a table (or JSON).")
    add_config_args(ev)
    ev.add_argument("--model", action="append", required=True, metavar="DIR",
                    help="model directory or 'warmstart'; repeat to compare columns")
    ev.add_argument("--samples", type=int, default=1, metavar="K",
                    help="programs sampled per task at rollout.temperature; rates average "
                    "over all of them (default: 1)")
    ev.add_argument("--clip", metavar="DIR", help="a local CLIP model directory (transformers "
                    "format): adds Design2Code's CLIP score for pages with a reference")
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ws = sub.add_parser("warmstart", help="build (or find cached) the embedded tiny model",
                        description="SFT a tiny decoder on synthetic programs and feedback "
                        "examples; prints the model directory. Cached by configuration.")
    ws.add_argument("--out", default=None, help="cache directory (default: .cache/warmstart)")
    ws.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a WarmstartConfig field, e.g. --set steps=100")
    ws.add_argument("--gate", action="store_true",
                    help="measure the teacher gate on held-out prompts (minutes) and record it "
                    "beside the model; without it, a recorded gate is printed")


def run(args: argparse.Namespace) -> int:
    """Config mistakes end the command with one line naming the key, not a traceback."""
    try:
        if args.command == "train":
            from vsdpo.train.__main__ import run as run_training
            from vsdpo.train.distributed import exit_process
            cfg = load_config(args.config, args.set)
            run_training(cfg)
            exit_process(0)
        elif args.command == "eval":
            from vsdpo.train.distributed import exit_process
            _eval(args)
            exit_process(0)  # a vLLM engine starts a gloo group
        elif args.command == "demo":
            from vsdpo.apps.demo import run_demo
            from vsdpo.train.distributed import exit_process
            run_demo(args.config, args.set, args.nproc)
            exit_process(0)  # its eval may have started a vLLM engine (a gloo group)
        elif args.command == "warmstart":
            from vsdpo.warmstart import WarmstartConfig, warmstart
            from vsdpo.warmstart.measure import teacher_gate
            path = warmstart(args.out, build_dataclass(WarmstartConfig, args.set))
            teacher_gate(path, measure_now=args.gate)
            print(path)
    except ConfigError as err:
        print(f"vsdpo {args.command}: {err}", file=sys.stderr)
        return 2
    return 0


def _eval(args) -> None:
    """One column per model: the prompt and sample counts, then the rates."""
    from vsdpo.apps.evaluate import evaluate, format_table
    from vsdpo.model.pretrained import resolve_model_path
    from vsdpo.train.data import build_tasks
    if args.samples < 1:
        raise ConfigError(f"--samples {args.samples}: must be at least 1")
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")  # stdout: table or JSON
    configs = {m: load_config(args.config, args.set + [f"model.path='{m}'"]) for m in args.model}
    clip = None
    if args.clip:
        import torch
        from vsdpo.feedback.clip_score import ClipScorer
        try:
            clip = ClipScorer(args.clip, "cuda" if torch.cuda.is_available() else "cpu")
        except ValueError as err:
            raise ConfigError(str(err)) from None
    columns = {}
    for model, cfg in configs.items():  # checked first, built (warm-start) second
        cfg.model.path = resolve_model_path(model)
        prompts = len(build_tasks(cfg.tasks, split="eval"))
        columns[model] = {"prompts": prompts, "samples": prompts * args.samples,
                          **evaluate(cfg, args.samples, clip)}
    print(json.dumps(columns, indent=1) if args.json else format_table(columns))
