"""A tiny random Qwen2.5-VL (or Qwen3-VL) with the project's byte-level tokenizer and a Qwen
image processor, saved as a transformers directory (`model.path = "tiny-vl"`: Qwen2.5-VL).

The vision-language counterpart of `tiny.py`, for tests and `configs/tiny-vl.toml`: it loads
through `AutoModelForImageTextToText` like a real checkpoint of either family. The tokenizer is
trained on the synthetic tasks' prompts and programs and carries Qwen's vision markers, whose
ids the model config names. Text head_dim is 32: vLLM's CPU attention has no kernel for 16.
"""

import hashlib
import inspect
import random
import sys
from pathlib import Path

import torch
import transformers
from transformers import (
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
    Qwen2VLImageProcessorPil,
)

from vsdpo.tasks.programs import ROBUST_STYLES, solve
from vsdpo.tasks.synthetic import generate_tasks
from vsdpo.tasks.task import DOMAINS
from vsdpo.warmstart.build import default_cache_dir
from vsdpo.warmstart.tokenizer import format_prompt, train_tokenizer

VISION_TOKENS = ("<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|video_pad|>")
PATCH, MERGE = 14, 2  # one image token per 28 × 28 pixels
MAX_PIXELS = 64 * (PATCH * MERGE) ** 2  # at most 64 image tokens per image


def save_tiny_vl_model(path: str | Path, seed: int = 0, arch: str = "qwen2_5_vl") -> Path:
    """Write the model (`arch`: qwen2_5_vl | qwen3_vl), tokenizer and image processor to
    `path`; returns the path."""
    rng = random.Random(seed)
    tasks = generate_tasks(DOMAINS, 300, seed=seed, split="train")
    corpus = [format_prompt(t.prompt) + solve(t, rng.choice(ROBUST_STYLES[t.domain]))
              for t in tasks]
    tokenizer = train_tokenizer(corpus, vocab_size=768)
    tokenizer.add_special_tokens({"additional_special_tokens": list(VISION_TOKENS)})
    start, image, end, video = tokenizer.convert_tokens_to_ids(list(VISION_TOKENS))
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    text = {"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
            "head_dim": 32, "max_position_embeddings": 4096, "tie_word_embeddings": False,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                "mrope_section": [4, 6, 6]}} | special  # sums to head_dim / 2
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
              "out_hidden_size": 64, "patch_size": PATCH, "spatial_merge_size": MERGE,
              "temporal_patch_size": 2}
    markers = {"image_token_id": image, "video_token_id": video, "vision_start_token_id": start,
               "vision_end_token_id": end, "tie_word_embeddings": False}
    if arch == "qwen2_5_vl":
        config = Qwen2_5_VLConfig(text_config=text, vision_config=vision | {
            "window_size": 4 * PATCH * MERGE, "fullatt_block_indexes": [1]}, **markers)
        model_class = Qwen2_5_VLForConditionalGeneration
    elif arch == "qwen3_vl":  # vLLM matches transformers only with interleaved M-RoPE
        text["rope_parameters"]["mrope_interleaved"] = True
        config = Qwen3VLConfig(text_config=text, vision_config=vision | {
            "deepstack_visual_indexes": [0], "num_position_embeddings": 64}, **markers)
        model_class = Qwen3VLForConditionalGeneration
    else:
        raise ValueError(f"arch must be qwen2_5_vl or qwen3_vl, got {arch!r}")
    torch.manual_seed(seed)
    model = model_class(config)
    model.generation_config.update(**special)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    Qwen2VLImageProcessorPil(patch_size=PATCH, merge_size=MERGE, size={
        "shortest_edge": 4 * (PATCH * MERGE) ** 2, "longest_edge": MAX_PIXELS}).save_pretrained(path)
    return Path(path)


def tiny_vl_path() -> Path:
    """The cached tiny VL directory, built on first use; keyed by this file and transformers."""
    source = inspect.getsource(sys.modules[__name__]) + transformers.__version__
    path = default_cache_dir().parent / f"tiny-vl-{hashlib.sha256(source.encode()).hexdigest()[:16]}"
    if not (path / "preprocessor_config.json").exists():
        partial = path.with_name(path.name + ".partial")
        save_tiny_vl_model(partial)
        partial.rename(path)
    return path
