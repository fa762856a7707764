"""The vLLM rollout engine: one in-process engine per torchrun rank (docs/rollout.md).

Why in-process (`external_launcher`): the engine lives in the trainer's own process, so a
weight update is a function call that streams tensors from the FSDP2 shards straight into
the engine — no second process, no IPC, no weight-transfer group. The ranks of one
tensor-parallel group sample together, so they must pass identical prompts and seeds; each
group samples its own prompts.

Log-probs come with `logprobs_mode="processed_logprobs"`: log-softmax of the logits after
temperature, i.e. the distribution the tokens were drawn from, which is what the loss's
ratio compares against. `generation_config="vllm"` keeps the model's own sampling defaults
(top-p, repetition penalty) out, for the same reason.

Memory on CUDA: with `sleep`, the engine frees its weights and KV cache (level 2) after
each rollout, so the update has the GPU to itself. Its woken weights are garbage, so every
sync then streams every tensor, a frozen vision tower too (~1.2 GB of bf16 at 8B, 7% of the
stream): cheaper than level 1, which would keep a 16 GB copy per rank in host memory.
`load_weights` wakes the weights, streams the new ones in, and only then wakes the KV cache:
the KV cache is never resident while the weights are being gathered. Before each wake,
PyTorch's cached blocks (the update's, then the gathered buckets') go back to the driver:
vLLM's sleep-mode pool cannot use them. CPU has no sleep mode; the engine stays resident.
"""

import os
import secrets
import sys
from collections.abc import Iterable

import torch
import torch.distributed as dist

from vsdpo.config import VLLMConfig
from vsdpo.model.pretrained import parameter_checkpoint_names
from vsdpo.rollout.base import Completion, OnGroup, SamplingParams


def cpu_unsupported_reason() -> str | None:
    """Why vLLM's CPU build cannot run from this Python environment, or None if it can."""
    if torch.cuda.is_available() or " " not in sys.prefix:
        return None
    return (f"vLLM's CPU build cannot run from a Python environment whose path has a space "
            f"({sys.prefix!r}): it compiles its sampler with torch inductor, whose compiler "
            f"command splits on spaces, and puts libraries in LD_PRELOAD, which does too. "
            f"Create the virtual environment at a path without spaces")


def _recording(weights: Iterable[tuple[str, torch.Tensor]], names: set[str]):
    for name, tensor in weights:
        names.add(name)
        yield name, tensor


def engine_inputs(tokenizer, prompts: list[str], images: list[list] | None) -> list[dict]:
    """vLLM's prompts: token ids, not text (vLLM would add the tokenizer's special tokens, a
    second BOS for Llama-style tokenizers, which the trainer does not score), with one
    unexpanded image pad per image and the images beside them: vLLM runs the model's
    processor on the images and expands the pads itself (pre-expanded ids fail there)."""
    from vllm.inputs import TokensPrompt

    inputs = []
    for i, text in enumerate(prompts):
        prompt = TokensPrompt(prompt_token_ids=tokenizer(text, add_special_tokens=False).input_ids)
        if images and images[i]:
            prompt["multi_modal_data"] = {"image": list(images[i])}
        inputs.append(prompt)
    return inputs


class VLLMGenerator:
    def __init__(self, model_path: str, cfg: VLLMConfig, seed: int, dtype: str = "float32",
                 max_pixels: int | None = None):
        """`seed` must be equal on the ranks of one tensor-parallel group, distinct across groups.
        `max_pixels`: a vision-language model's pixel budget per image, the trainer's
        (`model.max_pixels`), so both resize every image alike."""
        if reason := cpu_unsupported_reason():
            raise RuntimeError(reason)
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine in this process
        if dist.is_initialized():
            # CPU tensor parallelism names its shared memory after this: a run that crashed
            # leaves its segments behind, and a same-named new run (a resume) would fail
            ident = [secrets.token_hex(4)]
            dist.broadcast_object_list(ident)
            os.environ["VLLM_DIST_IDENT"] = f"vsdpo-{ident[0]}"
        from vllm import LLM

        cuda = torch.cuda.is_available()
        if cuda:
            memory = dict(gpu_memory_utilization=cfg.gpu_memory_utilization,
                          enable_sleep_mode=cfg.sleep)
        else:
            memory = dict(kv_cache_memory_bytes=int(cfg.cpu_kv_cache_gb * 2**30))
        vision = {}
        if max_pixels is not None:  # the student's reference image, the teacher's two
            vision = {"limit_mm_per_prompt": {"image": 2, "video": 0},
                      "mm_processor_kwargs": {"max_pixels": max_pixels}}
        self.llm = LLM(
            model=model_path, dtype=dtype, seed=seed, max_model_len=cfg.max_model_len,
            tensor_parallel_size=cfg.tensor_parallel_size,
            distributed_executor_backend="external_launcher" if dist.is_initialized() else None,
            enforce_eager=not cuda, logprobs_mode="processed_logprobs",
            generation_config="vllm", **memory, **vision)
        self.tokenizer = self.llm.get_tokenizer()
        self.checkpoint_names = parameter_checkpoint_names(model_path)
        self.seed = seed
        self.dtype = getattr(torch, dtype)
        self.sleeps = cuda and cfg.sleep
        self.keeps_weights = not self.sleeps  # level 2 discards them, the frozen ones included
        self.asleep = False
        self.calls = 0  # a prefix that keeps each call's request ids apart

    def generate(self, prompts: list[str], n: int, sampling: SamplingParams,
                 images: list[list] | None = None, on_group: OnGroup | None = None
                 ) -> list[Completion]:
        """`images[i]`: the PIL images of prompt i, one per image pad in its text. The engine
        is stepped here (`LLMEngine.step`, not `LLM.generate`) so that each prompt's group, a
        request of n samples, reaches `on_group` as soon as its last sample ends."""
        from vllm import SamplingParams as VLLMSamplingParams
        from vllm.sampling_params import RequestOutputKind

        inputs = engine_inputs(self.tokenizer, prompts, images)
        params = [VLLMSamplingParams(
            n=n, temperature=sampling.temperature, max_tokens=sampling.max_new_tokens,
            logprobs=0, seed=hash((self.seed, sampling.seed, i)) % 2**31, detokenize=False,
            output_kind=RequestOutputKind.FINAL_ONLY)
            for i in range(len(prompts))]  # seeded per request: reproducible, TP ranks agree
        engine = self.llm.llm_engine
        self.calls += 1
        for i, (prompt, params_i) in enumerate(zip(inputs, params)):
            engine.add_request(f"{self.calls}-{i}", prompt, params_i)
        groups = [None] * len(prompts)
        while engine.has_unfinished_requests():
            for out in engine.step():
                if out.finished:
                    i = int(out.request_id.rpartition("-")[2])
                    groups[i] = [self._completion(i, c)
                                 for c in sorted(out.outputs, key=lambda c: c.index)]
                    if on_group:
                        on_group(i, groups[i])
        completions = [c for group in groups for c in group]
        if self.sleeps:
            self.llm.sleep(level=2)
            self.asleep = True
        return completions

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]],
                     unchanged: frozenset[str] = frozenset()) -> None:
        """Stream checkpoint-named tensors into the engine (vLLM fuses q/k/v etc. itself);
        the names in `unchanged` keep the values the engine holds.

        `reload_weights` rather than the model's `load_weights`: it redoes the engine's
        post-load processing (e.g. the CPU backend's weight repacking), which a plain load
        into already-processed parameters would skip.
        """
        if self.asleep:
            torch.cuda.empty_cache()  # the trainer's cached blocks go back before the weights
            self.llm.wake_up(tags=["weights"])
            unchanged = frozenset()  # nothing was kept: a tensor left out is an error below
        streamed = set()
        self.llm.collective_rpc("reload_weights",
                                kwargs=dict(weights_iterator=_recording(weights, streamed)))
        # vLLM would silently keep a missed tensor's old values
        if missing := self.checkpoint_names - streamed - unchanged:
            raise ValueError(f"load_weights: no tensor for {sorted(missing)[:5]} "
                             f"({len(missing)} parameters in all)")
        if self.asleep:
            torch.cuda.empty_cache()  # and the gathered buckets' before the KV cache
            self.llm.wake_up(tags=["kv_cache"])
            self.asleep = False
        self.llm.reset_prefix_cache()
        # an image seen before would otherwise come from the old vision tower's cached output
        self.llm.llm_engine.reset_encoder_cache()

    def close(self) -> None:
        """Shut the engine down now. vLLM's teardown destroys the default process group as
        well, so it must run before the trainer's own; left to interpreter exit, it would run
        after, and fail."""
        self.llm.llm_engine.engine_core.shutdown()

    def _completion(self, prompt_index: int, out) -> Completion:
        """Decoded in one go, as the transformers engine does: vLLM's incremental text holds
        back a trailing partial UTF-8 character, which would shift the token offsets."""
        ids = list(out.token_ids)
        logp_T = torch.tensor([step[tok].logprob for step, tok in zip(out.logprobs, ids)],
                              dtype=torch.float32)
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return Completion(prompt_index, ids, text, logp_T, out.finish_reason == "stop")
