"""Where a step's batch comes from: sampled in the step (synchronous) or one step ahead.

`rollout.max_staleness` picks the kind once, in `build_rollouts`; the loop never asks which
it holds (docs/rollout.md, "Overlapped rollouts"):

- 0, `Synchronous`: step k samples its batch with the weights of step k, then renders,
  scores and trains on it.
- 1, `OneStepOff`: step k takes batch k, sampled during step k − 1, and at once starts
  sampling batch k + 1 on a background thread with the engine's current weights — those of
  step k, before its update — while batch k is rendered, scored and trained on. Batch k + 1
  is then one update behind the policy that trains on it; the trainer recomputes its old
  log-probs and weights each token by the truncated importance weight
  (`vsdpo/train/recompute.py`).

Why a thread is enough: the engine's sampling is torch ops (or vLLM's), which release the GIL,
and it needs no collective, so the main thread keeps every collective (FSDP, the weight
sync), in the same order on every rank. `settle` waits for the batch in flight before the
weight sync, so the engine's weights never change while it samples.

Drawing the prompts (the task stream, a vision-language policy's task images on the event
loop) stays on the main thread; only the engine call runs on the background one. Each
`Batch` records the task stream's position after its prompts: the checkpoint keeps that of
the last trained batch, so a batch in flight at a checkpoint is drawn again on resume and
sampled with the resumed weights — never lost, never trained on twice.
"""

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import torch

from vsdpo.rollout import Completion
from vsdpo.tasks import Task


@dataclass
class Batch:
    tasks_N: list[Task]                  # the task of each sample
    completions: list[Completion]
    offsets: list[list[tuple[int, int]]]  # each sample's token offsets in its text
    version: int     # optimizer steps taken by the weights that sampled it
    position: int    # the task stream's position after its prompts were drawn


# `request(step)` draws the prompts of the batch step `step` trains on (main thread) and
# returns the engine call that samples them with the engine's present weights (any thread).
Request = Callable[[int], Callable[[], Batch]]


class Synchronous:
    """max_staleness 0: the batch of step k is sampled in step k, with its weights."""

    def __init__(self, request: Request):
        self.request = request

    def next(self, step: int, last: bool) -> Batch:
        return self.request(step)()

    def settle(self) -> None:
        """Nothing is ever in flight."""

    def close(self) -> None:
        pass


class OneStepOff:
    """max_staleness 1: the batch of step k + 1 is sampled during step k, on one thread."""

    def __init__(self, request: Request):
        self.request = request
        # torch's intra-op thread count is per thread: the rollout thread takes the main
        # thread's, which the engine was built with (vLLM's CPU attention checks they match;
        # its CPU worker replaces `torch.set_num_threads` with a no-op, hence `torch._C`)
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="rollout",
                                         initializer=torch._C.set_num_threads,
                                         initargs=(torch.get_num_threads(),))
        self.ahead: Future | None = None  # the next step's batch, sampled or being sampled

    def next(self, step: int, last: bool) -> Batch:
        """Step `step`'s batch; unless it is the `last` step, start sampling the next one."""
        batch = self.ahead.result() if self.ahead else self.request(step)()
        self.ahead = None if last else self.thread.submit(self.request(step + 1))
        return batch

    def settle(self) -> None:
        """Wait until the batch in flight is sampled (its errors surface at `next`)."""
        if self.ahead:
            wait([self.ahead])

    def close(self) -> None:
        self.thread.shutdown(wait=True)


def build_rollouts(max_staleness: int, request: Request) -> Synchronous | OneStepOff:
    return OneStepOff(request) if max_staleness else Synchronous(request)
