"""The run recipes in configs/: each loads, passes the checks, and says what it means.

The GPU recipes point `model.path` at a local checkout of the model that does not exist
here, so the tests override it with an empty directory (the checks only need a directory),
and their task files, relative to where the run starts, at one-task files written there.
"""

import dataclasses
import itertools
import os
import tomllib
from pathlib import Path
from unittest import mock

import pytest

from vsdpo.config import load_config
from vsdpo.tasks import Task, save_tasks

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(CONFIGS.glob("*.toml"))
GPU_RECIPES = [p for p in RECIPES if p.name.startswith("qwen2.5-coder-7b")]

# Qwen2.5-Coder-7B and one H100, for the KV budget (the numbers the recipe comments use).
PARAMS, LAYERS, KV_HEADS, HEAD_DIM = 7.62e9, 28, 4, 128
H100_BYTES = 79.6 * 2**30
VLLM_OVERHEAD_BYTES = 2 * 2**30   # activations at the profiling batch + CUDA graphs
MAX_PROMPT_TOKENS = 1300          # the converters' prompt budgets, in tokens


# The number of processes each recipe is launched with (torchrun sets WORLD_SIZE).
WORLD_SIZES = {"qwen2.5-coder-7b-1node.toml": 8, "qwen2.5-coder-7b-multinode.toml": 32,
               "qwen3-vl-8b-1node.toml": 8,
               "tiny.toml": 2, "tiny-vl.toml": 2}


def _load(path: Path, tmp_path: Path):
    tasks = tomllib.loads(path.read_text()).get("tasks", {})
    for key in ("path", "eval_path"):
        if key in tasks:
            (tmp_path / tasks[key]).parent.mkdir(parents=True, exist_ok=True)
            save_tasks([Task(key, "chart", "a bar chart of sales")], tmp_path / tasks[key])
    cwd = Path.cwd()
    os.chdir(tmp_path)  # the recipes' task paths are relative to it
    try:
        with mock.patch.dict(os.environ, {"WORLD_SIZE": str(WORLD_SIZES[path.name])}):
            return load_config(path, [f"model.path={tmp_path}"])
    finally:
        os.chdir(cwd)


def _leaves(table: dict, prefix: str = ""):
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


def test_the_gpu_recipes_exist():
    assert [p.name for p in GPU_RECIPES] == ["qwen2.5-coder-7b-1node.toml",
                                             "qwen2.5-coder-7b-multinode.toml"]


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_loads_and_passes_the_checks(path, tmp_path):
    cfg = _load(path, tmp_path)  # `load_config` runs `check_config`
    assert cfg.loss.temperature == cfg.rollout.temperature


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_key_of_a_recipe_reaches_the_config_tree_unchanged(path, tmp_path):
    cfg = _load(path, tmp_path)
    for dotted, value in _leaves(tomllib.loads(path.read_text())):
        if dotted == "model.path":
            continue
        node = cfg
        for part in dotted.split("."):
            node = getattr(node, part)
        node = list(node) if isinstance(node, tuple) else node
        assert node == value, f"{path.name}: {dotted} = {value!r} loaded as {node!r}"


@pytest.mark.parametrize("path", GPU_RECIPES, ids=lambda p: p.name)
def test_gpu_recipes_sample_with_vllm_in_bf16_with_checkpointing(path, tmp_path):
    cfg = _load(path, tmp_path)
    r, v = cfg.rollout, cfg.rollout.vllm
    assert (r.engine, cfg.model.dtype, cfg.model.activation_checkpointing) == (
        "vllm", "bfloat16", True)
    assert r.recompute_logprobs and r.is_weight_clip >= 1.0
    assert v.tensor_parallel_size == 1 and r.weight_bucket_mb > 0
    assert v.sleep != bool(r.max_staleness)  # it sleeps through the update unless it samples then
    assert v.max_model_len >= MAX_PROMPT_TOKENS + r.max_new_tokens
    assert cfg.tasks.path and cfg.tasks.eval_path
    assert cfg.render.chart.workers <= 8  # per rank: the default (all cores) oversubscribes


@pytest.mark.parametrize("path", GPU_RECIPES, ids=lambda p: p.name)
def test_gpu_recipes_kv_cache_holds_every_sequence_of_a_rank(path, tmp_path):
    cfg = _load(path, tmp_path)
    r = cfg.rollout
    kv_bytes_per_token = 2 * LAYERS * KV_HEADS * HEAD_DIM * 2  # K and V, bf16
    budget = r.vllm.gpu_memory_utilization * H100_BYTES - 2 * PARAMS - VLLM_OVERHEAD_BYTES
    needed = r.prompts_per_step * r.group_size * (MAX_PROMPT_TOKENS + r.max_new_tokens)
    assert needed * kv_bytes_per_token <= budget


def _comment_above(text: str, dotted: str) -> str:
    """The comment lines directly above `key =` in section `[a.b]`, and the line itself."""
    *section, key = dotted.split(".")
    body = text.split(f"\n[{'.'.join(section)}]\n", 1)[1].split("\n[", 1)[0]
    lines = body.splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith(f"{key} ="))
    above = list(itertools.takewhile(lambda line: line.startswith("#"), reversed(lines[:k])))
    return "\n".join(above + [lines[k]])


def test_the_multinode_recipe_differs_from_the_1node_one_only_where_it_says_so(tmp_path):
    one, multi = (dict(_leaves(dataclasses.asdict(_load(p, tmp_path)))) for p in GPU_RECIPES)
    changed = [key for key in one if one[key] != multi[key] and key != "run_dir"]
    assert {"train.steps", "parallel.replicate"} <= set(changed)
    assert multi["parallel.replicate"] == 4 and one["parallel.replicate"] == 1  # a replica per node
    text = GPU_RECIPES[1].read_text()
    for key in changed:
        assert "multi-node" in _comment_above(text, key), f"{key} changed without a comment"
