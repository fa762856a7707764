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

The engine always samples on a rollout thread, so that the main thread can render the groups
already sampled (`rollout.stream`, `vsdpo/train/stream.py`). Why a thread is enough: the
engine's sampling is torch ops (or vLLM's), which release the GIL, and it needs no
collective, so the main thread keeps every collective (FSDP, the weight sync), in the same
order on every rank. `settle` waits for the batch in flight before the weight sync, so the
engine's weights never change while it samples.

Drawing the prompts (the task stream, a vision-language policy's task images on the event
loop) stays on the main thread; only the engine call runs on the rollout one. Each
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
class Group:
    """One prompt's samples, as the step's stages read them."""
    index: int                            # of the prompt among this rank's
    tasks: list[Task]                     # the task of each sample (all the same)
    completions: list[Completion]
    offsets: list[list[tuple[int, int]]]  # each sample's token offsets in its text
    images: list                          # the student's images of the task
    version: int                          # optimizer steps taken by the weights that sampled it

    @property
    def task_images(self) -> dict[str, list]:
        return {self.tasks[0].id: self.images}


@dataclass
class Batch:
    groups: list[Group]
    position: int    # the task stream's position after its prompts were drawn

    @property
    def version(self) -> int:
        return self.groups[0].version

    @property
    def task_images(self) -> dict[str, list]:
        return {k: v for g in self.groups for k, v in g.task_images.items()}

    @property
    def tasks_N(self) -> list[Task]:
        return [t for g in self.groups for t in g.tasks]

    @property
    def completions(self) -> list[Completion]:
        return [c for g in self.groups for c in g.completions]

    @property
    def offsets(self) -> list[list[tuple[int, int]]]:
        return [o for g in self.groups for o in g.offsets]


# `request(step)` draws the prompts of the batch step `step` trains on (main thread) and
# returns the engine call that samples them with the engine's present weights (any thread);
# the call hands each group to its `on_group` argument, if any, as soon as it is sampled.
OnGroup = Callable[[Group], None] | None
Request = Callable[[int], Callable[[OnGroup], Batch]]


def worker_thread(device: torch.device, name: str) -> ThreadPoolExecutor:
    """One worker thread that computes as the main thread does: torch's intra-op thread count
    and the CUDA device are per thread, and the engine was built with the main thread's
    (vLLM's CPU attention checks the count matches; its CPU worker replaces
    `torch.set_num_threads` with a no-op, hence `torch._C`)."""
    threads = torch.get_num_threads()

    def like_main() -> None:
        torch._C.set_num_threads(threads)
        if device.type == "cuda":
            torch.cuda.set_device(device)
    return ThreadPoolExecutor(1, thread_name_prefix=name, initializer=like_main)


class Synchronous:
    """max_staleness 0: the batch of step k is sampled in step k, with its weights."""

    def __init__(self, request: Request, device: torch.device):
        self.request = request
        self.thread = worker_thread(device, "rollout")

    def start(self, step: int, last: bool, on_group: OnGroup = None) -> Future:
        """Step `step`'s batch, being sampled on the rollout thread."""
        return self.thread.submit(self.request(step), on_group)

    def settle(self) -> None:
        """Nothing is in flight once the step has its batch."""

    def close(self) -> None:
        self.thread.shutdown(wait=True)


class OneStepOff:
    """max_staleness 1: the batch of step k + 1 is sampled during step k, on one thread."""

    def __init__(self, request: Request, device: torch.device):
        self.request = request
        self.thread = worker_thread(device, "rollout")
        self.ahead: Future | None = None  # the next step's batch, sampled or being sampled

    def start(self, step: int, last: bool, on_group: OnGroup = None) -> Future:
        """Step `step`'s batch; unless it is the `last` step, also start sampling the next
        one. A batch sampled ahead hands all its groups to `on_group` once it is done."""
        if self.ahead:
            batch = self.thread.submit(_hand_over, self.ahead, on_group)
        else:
            batch = self.thread.submit(self.request(step), on_group)
        self.ahead = None if last else self.thread.submit(self.request(step + 1), None)
        return batch

    def settle(self) -> None:
        """Wait until the batch in flight is sampled (its errors surface at `start`)."""
        if self.ahead:
            wait([self.ahead])

    def close(self) -> None:
        self.thread.shutdown(wait=True)


def _hand_over(ahead: Future, on_group: OnGroup) -> Batch:
    batch = ahead.result()
    for group in batch.groups if on_group else ():
        on_group(group)
    return batch


def build_rollouts(max_staleness: int, request: Request,
                   device: torch.device) -> Synchronous | OneStepOff:
    return (OneStepOff if max_staleness else Synchronous)(request, device)
