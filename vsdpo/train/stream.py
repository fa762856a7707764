"""Streaming within a step (`rollout.stream`): a group is rendered as soon as the engine has
sampled it, and the teacher reads it as soon as it is scored (docs/rollout.md, "Streaming").

Three threads share the work. The engine samples on its own thread and hands over each
prompt's group when its last sample ends; the event loop (the main thread) starts that
group's renders and scoring at once; the teacher's forwards run on a third thread, one group
at a time, in group order. The order is what keeps FSDP's collectives in line: every rank has
the same number of groups and runs their teacher forwards in the same order, while neither
the engine (the transformers copy, or vLLM without tensor parallelism) nor the event loop
joins a collective meanwhile.

The step's stage times stay main-thread waits that add up to the streamed part: "rollout"
until the last group is sampled, "render" until the last is scored, "teacher" until the last
teacher forward is done — only what the overlap did not hide.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future

from vsdpo.train.batch import Sample
from vsdpo.train.rollouts import Batch, Group, OnGroup
from vsdpo.train.score import Scored


def stream_step(loop: asyncio.AbstractEventLoop, start: Callable[[OnGroup], Future],
                num_groups: int, score: Callable[[Group], Awaitable[list[Scored]]],
                teach: Callable[[Group, list[Scored]], list[Sample]], teacher: Executor,
                times: dict, spans: list) -> tuple[Batch, list[Scored], list[Sample]]:
    """Start sampling (`start(on_group)`, on this thread: drawing the prompts may use `loop`),
    score each group on `loop` as it arrives and run `teach` on the `teacher` thread for each,
    in order; returns the batch, its scores and its samples in the batch's order. Adds the
    stage waits to `times` and each activity to `spans`."""
    arrived = [loop.create_future() for _ in range(num_groups)]
    t_start = time.perf_counter()
    sampled = start(lambda group: loop.call_soon_threadsafe(arrived[group.index].set_result,
                                                           group))
    return loop.run_until_complete(_stream(asyncio.wrap_future(sampled, loop=loop), arrived,
                                           score, teach, teacher, t_start, times, spans))


async def _stream(sampled: asyncio.Future, arrived: list[asyncio.Future], score, teach,
                  teacher: Executor, t_start: float, times: dict, spans: list):
    loop = asyncio.get_running_loop()
    done_at = {}
    sampled.add_done_callback(lambda _: done_at.setdefault("sampled", time.perf_counter()))

    async def scored(k: int) -> tuple[Group, list[Scored]]:
        group = await arrived[k]
        t0 = time.perf_counter()
        result = await score(group)
        done_at["scored"] = time.perf_counter()
        spans.append((f"render g{k}", "render", t0, done_at["scored"]))
        return group, result

    scoring = [asyncio.ensure_future(scored(k)) for k in range(len(arrived))]
    try:
        scored_N, samples_N = [], []
        for k, task in enumerate(scoring):
            group, scores = await _unless_failed(task, sampled)
            t0 = time.perf_counter()
            samples_N += await loop.run_in_executor(teacher, teach, group, scores)
            spans.append((f"teacher g{k}", "teacher", t0, time.perf_counter()))
            scored_N += scores
        batch = await sampled
    finally:
        for task in scoring:
            task.cancel()
    end = time.perf_counter()
    sampled_at = done_at["sampled"]
    scored_at = max(sampled_at, done_at["scored"])
    for key, wait in (("rollout", sampled_at - t_start), ("render", scored_at - sampled_at),
                      ("teacher", end - scored_at)):
        times[key] = times.get(key, 0.0) + wait
    return batch, scored_N, samples_N


async def _unless_failed(task: asyncio.Future, sampled: asyncio.Future):
    """`task`'s result; the engine's error instead if sampling fails before it is done
    (its group would never come)."""
    await asyncio.wait([task, sampled], return_when=asyncio.FIRST_COMPLETED)
    if not task.done() and sampled.exception() is not None:
        raise sampled.exception()
    return await task
