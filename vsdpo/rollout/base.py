"""The Generator protocol (DESIGN.md §4.4): what the trainer asks of a rollout engine.

A generator samples `n` completions per prompt and reports, for each sampled token, its
log-probability under the distribution it was drawn from (logits / temperature), which the
loss uses as `old_logprobs`. After each optimizer step the trainer pushes the new weights
with `load_weights`, as a stream of `(name, full tensor)` pairs under the transformers
checkpoint names, so no rank ever holds a second full copy of the weights. Completions of
prompt i sit at indices `i·n … i·n + n − 1`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0      # 0: greedy (log-probs then come from temperature 1)
    max_new_tokens: int = 128
    seed: int = 0                 # vLLM: this call's sampling seed (the trainer passes its step,
                                  # so a resumed run samples what the uninterrupted one did)


@dataclass
class Completion:
    prompt_index: int
    token_ids: list[int]          # the sampled tokens, the end-of-sequence token included
    text: str                     # decoded without special tokens
    logprobs: torch.Tensor        # [T] fp32, log p(token) after temperature
    finished: bool                # ended with end-of-sequence (not cut by max_new_tokens)


class Generator(Protocol):
    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[Completion]:
        ...

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        ...

    def close(self) -> None:
        """Release the engine; the default process group may be gone afterwards (vLLM)."""
