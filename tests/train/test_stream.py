"""Streaming within a step (`rollout.stream`, `vsdpo/train/stream.py`): each group is scored
as soon as it is sampled and the teacher reads it as soon as it is scored, over real FSDP2
ranks on gloo; the step then trains on exactly what the stage-by-stage step trains on.
Rewards are `handmade.LetterScorer`'s, as in test_trainer.py."""

import asyncio
import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from handmade import LetterScorer, tiny_config, train_worker
from vsdpo.config import ConfigError, load_config
from vsdpo.train.distributed import free_port
from vsdpo.train.rollouts import Batch, Group
from vsdpo.train.stream import stream_step
from vsdpo.train.trainer import Trainer

TIMING = ("time/", "tokens_per_s")


def _metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.startswith(TIMING)}
            for line in lines]


@pytest.mark.parametrize("teacher", ["ema", "live"])
def test_a_streamed_step_trains_as_the_stage_by_stage_step_does(tiny_model_dir, tmp_path,
                                                                teacher):
    """Same seed, same samples: every metric of 2 steps on 2 ranks agrees (here to the bit).
    The teacher's hidden states are read per group instead of per micro-batch, so on other
    hardware the loss may differ in the last bits (other padding, other matmul shapes)."""
    runs = {}
    for stream in (False, True):
        runs[stream] = tmp_path / f"stream_{stream}"
        mp.spawn(train_worker, args=(2, free_port(), str(tiny_model_dir), str(runs[stream]),
                                     [f"rollout.stream={str(stream).lower()}", "train.steps=2",
                                      f"train.teacher='{teacher}'"]), nprocs=2)
    plain, streamed = _metrics(runs[False]), _metrics(runs[True])
    assert len(plain) == len(streamed) == 2
    for a, b in zip(plain, streamed):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key
    assert all(m["tokens"] > 0 and m["skipped"] == 0 for m in streamed)


def test_a_streamed_step_renders_and_teaches_each_group_on_its_own(tiny_model_dir, tmp_path,
                                                                    process_group):
    """The stream path itself: one render span and one teacher span per group, each teacher
    forward after its group's score."""
    cfg = tiny_config(tiny_model_dir, tmp_path / "run", "rollout.stream=true", "train.steps=1")
    trainer = Trainer(cfg, scorer=LetterScorer(cfg.feedback.alpha))
    try:
        metrics = trainer.run_step()
    finally:
        trainer.close()
    spans = {name: (start, end) for name, _, start, end in trainer.spans}
    groups = cfg.rollout.prompts_per_step
    for k in range(groups):
        assert spans[f"render g{k}"][1] <= spans[f"teacher g{k}"][0]
    assert len([n for n in spans if n.startswith("teacher g")]) == groups
    assert metrics["tokens"] > 0 and metrics["skipped"] == 0


def _group(k: int) -> Group:
    return Group(k, [], [], [], [], 0)


def _stream(deliver_order, score_delay, fail_after=None):
    """`stream_step` with stand-ins for the engine, the scorer and the teacher (what they do
    is beside the point here): the engine thread hands the groups over in `deliver_order`."""
    taught = []

    def start(on_group) -> Future:
        done = Future()

        def engine():
            for i, k in enumerate(deliver_order):
                if i == fail_after:
                    done.set_exception(RuntimeError("engine died"))
                    return
                time.sleep(0.01)
                on_group(_group(k))
            done.set_result(Batch([_group(k) for k in sorted(deliver_order)], 7))
        threading.Thread(target=engine).start()
        return done

    async def score(group):
        await asyncio.sleep(score_delay(group.index))
        return [f"scored {group.index}"]

    def teach(group, scored):
        taught.append(group.index)
        return [f"sample {group.index}"]

    loop = asyncio.new_event_loop()
    with ThreadPoolExecutor(1) as teacher:
        times, spans = {}, []
        try:
            out = stream_step(loop, start, len(deliver_order), score, teach, teacher, times,
                              spans)
        finally:
            loop.close()
    return out, taught, times, spans


def test_groups_that_arrive_out_of_order_are_taught_in_order():
    """vLLM ends requests in any order; each rank's teacher must still read the groups in
    order (its FSDP collectives line up across ranks), and the step's lists keep the batch's
    order."""
    (batch, scored, samples), taught, times, spans = _stream([2, 0, 3, 1],
                                                            lambda k: 0.05 * (k % 2))
    assert taught == [0, 1, 2, 3]
    assert scored == [f"scored {k}" for k in range(4)]
    assert samples == [f"sample {k}" for k in range(4)]
    assert batch.position == 7
    assert set(times) == {"rollout", "render", "teacher"} and min(times.values()) >= 0
    assert sorted(s[0] for s in spans if s[1] == "teacher") == [f"teacher g{k}" for k in range(4)]


def test_an_engine_that_fails_midway_raises_instead_of_waiting_for_its_groups():
    with pytest.raises(RuntimeError, match="engine died"):
        _stream([0, 1, 2], lambda k: 0.0, fail_after=1)


@pytest.mark.parametrize("overrides, message", [
    (["rollout.engine='vllm'", "rollout.vllm.sleep=true"], "cannot sleep"),
    (["rollout.engine='vllm'", "rollout.vllm.sleep=false",
      "rollout.vllm.tensor_parallel_size=2"], "tensor_parallel_size = 1"),
])
def test_a_stream_the_engine_cannot_run_is_refused_naming_the_key(overrides, message,
                                                                   monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match=f"rollout.stream.*{message}"):
        load_config(None, ["model.path='warmstart'", "rollout.stream=true", *overrides])
