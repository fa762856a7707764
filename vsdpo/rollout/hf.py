"""The transformers rollout engine: batched `generate` on a plain (non-sharded) model copy.

Why a copy: under FSDP2 the policy's parameters are shards, and `generate` runs dozens of
forwards whose collectives every rank would have to join in lock-step even though each
rank samples its own prompts. A full replica per rank, refreshed by `load_weights` after
each optimizer step, keeps generation local and works the same on gloo (CPU) and NCCL. It
costs one extra copy of the weights per rank — fine for the small models this engine is
for; large models use the vLLM engine.

Prompts are left-padded so every row's next token sits in the last column. A
vision-language model's prompts carry images (`vsdpo.model.inputs`): each prompt's image pads
are expanded and its pixels repeated for its `n` samples, as the trainer's forward sees them,
and `mm_token_type_ids` give the multimodal rotary positions. Log-probs are
computed from the raw logits (`output_logits`) divided by the temperature; top-k, top-p
and every other logits processor are switched off so that this is exactly the sampling
distribution. The batch is sampled in one `generate`, so `on_group` hears of every group
when it ends.
"""

from collections.abc import Iterable

import torch
from transformers import GenerationConfig, PreTrainedModel

from vsdpo.model.images import Images
from vsdpo.model.inputs import PolicyInputs
from vsdpo.model.load import checkpoint_names
from vsdpo.rollout.base import Completion, OnGroup, SamplingParams


class HFGenerator:
    def __init__(self, model: PreTrainedModel, inputs: PolicyInputs):
        self.model = model.eval()
        self.dtype = model.dtype
        self.keeps_weights = True
        self.tokenizer = inputs.tokenizer
        self.inputs = inputs
        self.param_of = {stored: key for key, stored in checkpoint_names(model).items()}

    @torch.no_grad()
    def generate(self, prompts: list[str], n: int, sampling: SamplingParams,
                 images: list[list] | None = None, on_group: OnGroup | None = None
                 ) -> list[Completion]:
        """`images[i]`: the PIL images of prompt i, one per image pad in its text."""
        ids, per_prompt = self._encode(prompts, images)
        vision = Images.cat([None if v is None else v.repeat(n) for v in per_prompt])
        pad = self.tokenizer.pad_token_id
        ids_BP = torch.full((len(ids), max(map(len, ids))), pad, dtype=torch.long)
        mask_BP = torch.zeros_like(ids_BP)
        for b, row in enumerate(ids):  # left padding
            ids_BP[b, ids_BP.shape[1] - len(row):] = torch.tensor(row)
            mask_BP[b, ids_BP.shape[1] - len(row):] = 1
        ids_BP, mask_BP = ids_BP.repeat_interleave(n, 0), mask_BP.repeat_interleave(n, 0)
        device = self.model.device
        extra = {k: v.to(device) for k, v in self.inputs.generate_kwargs(ids_BP, vision).items()}
        out = self.model.generate(
            input_ids=ids_BP.to(device), attention_mask=mask_BP.to(device),
            generation_config=self._generation_config(sampling), **extra)
        new_BT = out.sequences[:, ids_BP.shape[1]:].cpu()
        logits_BTV = torch.stack(out.logits, dim=1).float().cpu()
        temperature = sampling.temperature or 1.0
        logp_BT = torch.log_softmax(logits_BTV / temperature, dim=-1).gather(
            2, new_BT.unsqueeze(2)).squeeze(2)
        completions = [self._completion(i // n, new_BT[i], logp_BT[i]) for i in range(len(new_BT))]
        if on_group:
            for i in range(len(prompts)):
                on_group(i, completions[i * n:(i + 1) * n])
        return completions

    @torch.no_grad()
    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]],
                     unchanged: frozenset[str] = frozenset()) -> None:
        """Copy each streamed tensor into place; every parameter must arrive, except the
        checkpoint names in `unchanged`."""
        params = dict(self.model.named_parameters())
        missing = set(params) - {self.param_of[name] for name in unchanged}
        for name, tensor in weights:
            key = self.param_of[name]
            params[key].copy_(tensor)
            missing.discard(key)
        if missing:
            raise ValueError(f"load_weights: no tensor for {sorted(missing)[:5]} "
                             f"({len(missing)} parameters in all)")

    def _encode(self, prompts: list[str], images: list[list] | None
                ) -> tuple[list[list[int]], list[Images | None]]:
        """Each prompt's ids (image pads expanded) and its images' pixels."""
        per_prompt = [self.inputs.pixels(list(imgs)) for imgs in images or [[] for _ in prompts]]
        return [self.inputs.encode(p, v) for p, v in zip(prompts, per_prompt)], per_prompt

    def close(self) -> None:
        self.model = None  # the copy's memory goes now, not with the trainer

    def _generation_config(self, sampling: SamplingParams) -> GenerationConfig:
        greedy = sampling.temperature == 0
        return GenerationConfig(
            do_sample=not greedy, temperature=None if greedy else sampling.temperature,
            top_k=None, top_p=None, max_new_tokens=sampling.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id,
            return_dict_in_generate=True, output_logits=True)

    def _completion(self, prompt_index: int, new_T: torch.Tensor, logp_T: torch.Tensor):
        """Cut after the first end-of-sequence token (kept: the policy learns to stop)."""
        ids = new_T.tolist()
        eos = self.tokenizer.eos_token_id
        finished = eos in ids
        length = ids.index(eos) + 1 if finished else len(ids)
        ids = ids[:length]
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return Completion(prompt_index, ids, text, logp_T[:length].clone(), finished)
