"""The Generator protocol: what the trainer asks of a rollout engine (docs/architecture.md,
"Rollout").

A generator samples `n` completions per prompt and reports, for each sampled token, its
log-probability under the distribution it was drawn from (logits / temperature), which the
trainer keeps as `engine_logprobs` (the ratio's reference unless it recomputes its own).
After each optimizer step the trainer pushes the new weights with `load_weights`, as a stream
of `(name, full tensor)` pairs under the transformers checkpoint names, so no rank ever holds
a second full copy of the weights. Completions of prompt i sit at indices `i·n … i·n + n − 1`.
With `on_group`, each prompt's n completions are also handed over as soon as the engine has
sampled them (`rollout.stream`, `vsdpo/train/stream.py`).
"""

from collections.abc import Callable, Iterable
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


def cut_at(completion: Completion, stop_ids: set[int], tokenizer) -> Completion:
    """The completion up to and including its first token of `stop_ids`: a vision-language
    policy's image markers, which inside a program would make the trainer's forward look for
    an image. The kept marker is a target only, never an input (`vsdpo.train.batch`)."""
    ids = completion.token_ids
    cut = next((i + 1 for i, t in enumerate(ids) if t in stop_ids), len(ids))
    if cut == len(ids):
        return completion
    return Completion(completion.prompt_index, ids[:cut],
                      tokenizer.decode(ids[:cut], skip_special_tokens=True),
                      completion.logprobs[:cut], finished=False)


# `on_group(i, completions)`: prompt i's n completions, called on the generating thread
OnGroup = Callable[[int, list["Completion"]], None]


class Generator(Protocol):
    dtype: torch.dtype  # of the engine's weights: the weight stream is gathered in it
    keeps_weights: bool  # between syncs; False (vLLM asleep at level 2): stream every tensor

    def generate(self, prompts: list[str], n: int, sampling: SamplingParams,
                 images: list[list] | None = None, on_group: OnGroup | None = None
                 ) -> list[Completion]:
        """`images[i]`: a vision-language policy's PIL images of prompt i."""

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]],
                     unchanged: frozenset[str] = frozenset()) -> None:
        """Every checkpoint-named parameter must arrive, except those in `unchanged`: the
        engine keeps what it holds for them."""

    def close(self) -> None:
        """Release the engine; the default process group may be gone afterwards (vLLM)."""
