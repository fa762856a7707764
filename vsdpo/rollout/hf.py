"""The transformers rollout backend: batched `generate` on a plain (non-sharded) model copy.

Why a copy: under FSDP2 the policy's parameters are shards, and `generate` runs dozens of
forwards whose collectives every rank would have to join in lock-step even though each
rank samples its own prompts. A full replica per rank, refreshed by `load_weights` after
each optimizer step, keeps generation local and works the same on gloo (CPU) and NCCL. It
costs one extra copy of the weights per rank — fine for the small models this backend is
for; large models use the vLLM backend.

Prompts are left-padded so every row's next token sits in the last column. Log-probs are
computed from the raw logits (`output_logits`) divided by the temperature; top-k, top-p
and every other logits processor are switched off so that this is exactly the sampling
distribution.
"""

from collections.abc import Iterable

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from vsdpo.rollout.base import Completion, SamplingParams


class HFGenerator:
    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase):
        self.model = model.eval()
        self.tokenizer = tokenizer

    @torch.no_grad()
    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[Completion]:
        tok = self.tokenizer
        tok.padding_side = "left"
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        ids_BP = enc.input_ids.repeat_interleave(n, dim=0)
        mask_BP = enc.attention_mask.repeat_interleave(n, dim=0)
        out = self.model.generate(
            input_ids=ids_BP.to(self.model.device), attention_mask=mask_BP.to(self.model.device),
            generation_config=self._generation_config(sampling))
        new_BT = out.sequences[:, ids_BP.shape[1]:].cpu()
        logits_BTV = torch.stack(out.logits, dim=1).float().cpu()
        temperature = sampling.temperature or 1.0
        logp_BT = torch.log_softmax(logits_BTV / temperature, dim=-1).gather(
            2, new_BT.unsqueeze(2)).squeeze(2)
        return [self._completion(i // n, new_BT[i], logp_BT[i]) for i in range(len(new_BT))]

    @torch.no_grad()
    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy each streamed tensor into place; every parameter must arrive."""
        params = dict(self.model.named_parameters())
        missing = set(params)
        for name, tensor in weights:
            params[name].copy_(tensor)
            missing.discard(name)
        if missing:
            raise ValueError(f"load_weights: no tensor for {sorted(missing)[:5]} "
                             f"({len(missing)} parameters in all)")

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
