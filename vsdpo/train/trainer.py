"""The trainer: built from a `Config` by `build_*` functions, run by a loop that reads as the
step does — rollout → render_and_score → train_step → sync_weights → save.

The rollout is sampled on a rollout thread, in the step or, with `rollout.max_staleness = 1`,
one step ahead while the step trains (`rollouts.py`); the loop reads the same either way. With
`rollout.stream`, each group is rendered and read by the teacher as soon as it is sampled
(`stream.py`).

Runs as one process per device under torchrun, or alone (a group of one). A run directory
that already holds a checkpoint is resumed from its latest one.

Faults a long run meets: SIGTERM (a scheduler's notice) ends the run at the next step
boundary with a checkpoint and exit status 0 — the ranks all-reduce the flag, so they stop
after the same step; a non-finite loss or gradient norm skips the update (`step.py`), and
`train.max_skipped_steps` in a row stop the run; a failed checkpoint write stops it with the
previous checkpoint intact (`checkpoint.py`); a dead or stuck rank makes the others' next
collective fail within `train.collective_timeout_s`, naming the dead rank (`faults.py`).
"""

import asyncio
import contextlib
import dataclasses
import functools
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

from vsdpo.config import Config, check_resume, save_config
from vsdpo.model.inputs import build_inputs
from vsdpo.model.parallelize import build_mesh, build_policy
from vsdpo.model.pretrained import load_tokenizer, resolve_model_path
from vsdpo.render import RenderPool
from vsdpo.render.pool import HTML_DOMAINS
from vsdpo.rollout import SamplingParams, build_generator, cut_at
from vsdpo.train.batch import Sample, token_offsets
from vsdpo.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from vsdpo.train.data import TaskStream, build_tasks
from vsdpo.train.distributed import init_distributed
from vsdpo.train.faults import StopRequest, naming_dead_ranks
from vsdpo.train.metrics import MetricLogger, step_metrics
from vsdpo.train.prompts import student_prompt
from vsdpo.train.recompute import recompute_logprobs
from vsdpo.train.rollout_log import RolloutLog
from vsdpo.train.rollouts import Batch, Group, build_rollouts, worker_thread
from vsdpo.train.samples import make_samples
from vsdpo.train.score import RenderScorer, Scorer
from vsdpo.train.step import teacher_hidden_states, train_step
from vsdpo.train.stream import stream_step
from vsdpo.train.teacher import build_teacher
from vsdpo.train.weight_sync import sync_weights


class NonFiniteError(RuntimeError):
    """`train.max_skipped_steps` updates in a row had a non-finite loss or gradient norm."""


class Trainer:
    def __init__(self, cfg: Config, scorer: Scorer | None = None):
        check_resume(cfg)
        self.rank, self.world, self.device = init_distributed(cfg.train.collective_timeout_s)
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(
            cfg.model, path=resolve_model_path(cfg.model.path)))
        self.cfg = cfg
        _seed_everything(cfg.train.seed, self.rank)
        self.run_dir = Path(cfg.run_dir)
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.run_dir / "config.toml")
        self.tokenizer = load_tokenizer(cfg.model)
        self.inputs = build_inputs(cfg.model, self.tokenizer, cfg.feedback.screenshot)
        # the ranks of one tensor-parallel engine sample the same prompts, then split them
        self.tp = cfg.rollout.vllm.tensor_parallel_size if cfg.rollout.engine == "vllm" else 1
        self.tasks = TaskStream(build_tasks(cfg.tasks), cfg.rollout.prompts_per_step * self.tp,
                                self.rank // self.tp, self.world // self.tp, cfg.train.seed)
        self.policy = build_policy(cfg.model, self.device,
                                   build_mesh(cfg.parallel.replicate, self.device))
        self.teacher = build_teacher(cfg, self.policy, self.device)
        self.optimizer, self.scheduler = build_optimizer(self.policy, cfg)
        self.generator = build_generator(cfg, self.inputs, self.device, self.rank // self.tp)
        self.loop = asyncio.new_event_loop()
        self.exit_stack = contextlib.AsyncExitStack()
        self.scorer = scorer or self.loop.run_until_complete(self._build_scorer())
        self.step = self._resume()
        self.position = self.tasks.position  # of the last trained batch: what a checkpoint keeps
        self.rollouts = build_rollouts(cfg.rollout.max_staleness, self.request, self.device)
        self.teacher_thread = worker_thread(self.device, "teacher")  # rollout.stream's
        self.spans = []  # this step's (stage, thread, start, end): bench/step.py's timeline
        self.rollout_log = RolloutLog(self.run_dir, cfg.train.log_rollouts_every,
                                      cfg.feedback.alpha, cfg.rollout.group_size, self.step,
                                      self.rank)
        self.skipped_in_a_row = 0
        self.weights_synced = False
        self.sync_weights()

    def train(self) -> None:
        cfg = self.cfg.train
        logger = MetricLogger(self.run_dir, cfg.steps, self.step, self.rank)
        self.rollout_log.tb = logger.tb  # the logged renders go beside the scalars
        saved = stopped = None
        with StopRequest(signal.SIGTERM) as stop, naming_dead_ranks():
            while self.step < cfg.steps and not stopped:
                metrics = self.run_step()
                logger.log(self.step, metrics)
                self.count_skipped(metrics)
                stopped = stop.agreed(self.device)
                every = cfg.checkpoint_every
                if stopped or self.step == cfg.steps or (every and self.step % every == 0):
                    saved = self.save()
        logger.close()
        if stopped and self.step < cfg.steps:
            if self.rank == 0:
                print(f"SIGTERM: stopped after step {self.step} of {cfg.steps}, checkpoint "
                      f"{saved}; the same command resumes from it", file=sys.stderr, flush=True)
            return
        self.export(self.run_dir / "final")

    def run_step(self) -> dict:
        """One step, stage by stage; returns its metrics (reduced over ranks). "rollout" is the
        time the main thread waits for the engine: all of the sampling when synchronous."""
        times, self.spans = {}, []
        timed = functools.partial(_timed, times, self.spans)
        last = self.step + 1 >= self.cfg.train.steps
        if self.cfg.rollout.stream:  # render and teacher per group, as the groups come
            batch, scored, samples = self.stream(last, times)
        else:
            with timed("rollout"):
                batch = self.rollouts.start(self.step, last).result()
            with timed("render"):
                scored = self.render_and_score(batch.tasks_N, batch.completions, batch.offsets)
            samples = self.make_samples(batch.tasks_N, batch.completions, scored,
                                        batch.task_images, batch.version)
        staleness = self.step - min(s.policy_version for s in samples)
        with timed("recompute"):
            samples = self.recompute(samples, staleness)
        t0 = time.perf_counter()
        sums = train_step(self.policy, self.teacher, self.optimizer, self.scheduler, samples,
                          self.cfg.loss, self.cfg.train.micro_batch_tokens,
                          self.cfg.train.grad_clip, self.tokenizer.pad_token_id)
        times["teacher"] = times.get("teacher", 0.0) + sums.pop("teacher_s")
        times["update"] = sums.pop("update_s")
        # the teacher's forwards and the updates alternate per micro-batch: one span for both
        self.spans.append(("teacher+update", "main", t0, time.perf_counter()))
        with timed("rollout"):
            self.rollouts.settle()  # the engine must not sample while its weights change
        with timed("sync"):
            self.sync_weights()
        self.step, self.position = self.step + 1, batch.position
        self.rollout_log.write(self.step, batch.tasks_N, batch.completions, batch.offsets,
                               scored, [s.advantage for s in samples])
        return step_metrics(scored, sums, times, self.scheduler.get_last_lr()[0], staleness)

    def stream(self, last: bool, times: dict):
        """`rollout.stream`'s sample → render → teacher, overlapped per group (`stream.py`);
        returns the batch, its scores and its samples with their teacher hidden states."""
        def score(group):
            return self.scorer.score(group.tasks, group.completions, group.offsets,
                                     self.cfg.rollout.group_size)

        def teach(group, scored):
            samples = self.make_samples(group.tasks, group.completions, scored,
                                        group.task_images, group.version)
            return teacher_hidden_states(self.teacher, samples, self.cfg.train.micro_batch_tokens,
                                         self.tokenizer.pad_token_id)
        start = functools.partial(self.rollouts.start, self.step, last)
        return stream_step(self.loop, start, self.cfg.rollout.prompts_per_step, score, teach,
                           self.teacher_thread, times, self.spans)

    def count_skipped(self, metrics: dict) -> None:
        """Skipped updates in a row (every rank counts the same); too many: the run diverged."""
        if not metrics["skipped"]:
            self.skipped_in_a_row = 0
            return
        self.skipped_in_a_row += 1
        limit = self.cfg.train.max_skipped_steps
        what = (f"step {self.step}: update skipped, loss={metrics['loss']} "
                f"grad_norm={metrics['grad_norm']} ({self.skipped_in_a_row} in a row, "
                f"train.max_skipped_steps={limit})")
        if self.skipped_in_a_row >= limit:
            raise NonFiniteError(
                f"{what}: stopping. The weights are those of the last finite update; resume "
                "from the latest checkpoint with a lower train.lr, or look at these steps' "
                "rewards and samples")
        if self.rank == 0:
            print(what, file=sys.stderr, flush=True)

    def request(self, step: int):
        """Draw the prompts that step `step` trains on, here on the main thread (the task
        stream; the task images need the event loop); returns the engine call that samples
        them with the engine's present weights, those of `self.step`, on any thread."""
        tasks = self.tasks.next()
        images = self.task_images(tasks)
        version, position = self.step, self.tasks.position

        def sample(on_group=None) -> Batch:
            t0 = time.perf_counter()
            groups = self.rollout(tasks, images, step + 1, version, on_group)
            self.spans.append(("sample", "engine", t0, time.perf_counter()))
            return Batch(groups, position)
        return sample

    def rollout(self, tasks, images, seed: int, version: int, on_group=None) -> list[Group]:
        """G samples per task, one group per task this rank keeps: of its tensor-parallel
        group's prompts, a rank keeps every `tp`-th. `seed`: the engine's sampling seed
        (vLLM); `on_group`: handed each kept group as soon as it is sampled."""
        g, keep = self.cfg.rollout.group_size, self.rank % self.tp
        sampling = SamplingParams(self.cfg.rollout.temperature, self.cfg.rollout.max_new_tokens,
                                  seed=seed)
        prompts = [student_prompt(self.tokenizer, t.prompt, len(i)) for t, i in zip(tasks, images)]
        groups = {}

        def sampled(i: int, completions_G) -> None:
            if i % self.tp != keep:
                return
            completions_G = [cut_at(c, self.inputs.stop_ids, self.tokenizer) for c in completions_G]
            offsets = [token_offsets(self.tokenizer, c.token_ids, c.text) for c in completions_G]
            groups[i] = Group(i // self.tp, [tasks[i]] * g, completions_G, offsets, images[i],
                              version)
            if on_group:
                on_group(groups[i])
        self.generator.generate(prompts, g, sampling, images=images, on_group=sampled)
        return [groups[i] for i in sorted(groups)]

    def render_and_score(self, tasks_N, completions, offsets):
        return self.loop.run_until_complete(
            self.scorer.score(tasks_N, completions, offsets, self.cfg.rollout.group_size))

    def make_samples(self, tasks_N, completions, scored, task_images: dict[str, list],
                     version: int) -> list[Sample]:
        """`task_images`: the student's images of each task, by id (`Batch.task_images`);
        `version`: the optimizer steps of the weights that sampled the completions."""
        return make_samples(self.inputs, tasks_N, completions, scored, task_images,
                            self.cfg.rollout.group_size, self.cfg.feedback.scale_by_std, version)

    def task_images(self, tasks) -> list[list]:
        """The student's images of each task (`PolicyInputs.task_images`), found with the
        scorer's reference renders."""
        return self.inputs.task_images(
            tasks, lambda found: self.loop.run_until_complete(self.scorer.task_images(found)))

    def recompute(self, samples: list[Sample], staleness: int) -> list[Sample]:
        """The trainer's old log-probs: asked for, or needed because the samples come from
        weights `staleness` updates old (the importance weight corrects for the lag)."""
        r = self.cfg.rollout
        if not r.recompute_logprobs and not staleness:
            return samples
        loss = self.cfg.loss
        return recompute_logprobs(self.policy, samples, self.cfg.train.micro_batch_tokens,
                                  self.tokenizer.pad_token_id, loss.temperature, r.is_weight_clip,
                                  kernel=loss.kernel)

    def sync_weights(self) -> None:
        """The new weights into every rank's engine (`weight_sync.sync_weights`)."""
        sync_weights(self.policy, self.generator, self.cfg.rollout.weight_bucket_mb << 20,
                     first=not self.weights_synced)
        self.weights_synced = True

    def save(self) -> Path:
        return save_checkpoint(self.run_dir, self.step, self.position, self.policy,
                               self.optimizer, self.scheduler, self.teacher, self.cfg.model.path)

    def export(self, out_dir: Path) -> None:
        """The current policy as a transformers directory (safetensors + tokenizer)."""
        full = get_model_state_dict(self.policy, options=StateDictOptions(
            full_state_dict=True, cpu_offload=True))
        if self.rank == 0:
            self.policy.lm.save_pretrained(
                out_dir, state_dict={k.removeprefix("lm."): v for k, v in full.items()})
            self.inputs.save(out_dir)
        dist.barrier()

    def close(self) -> None:
        """Stop the render pool and the rollout engine (vLLM's takes the process group along),
        once the batch in flight, if any, is sampled."""
        self.rollouts.close()
        self.teacher_thread.shutdown(wait=True)
        self.loop.run_until_complete(self.exit_stack.aclose())
        self.loop.close()
        self.generator.close()

    def _resume(self) -> int:
        path = latest_checkpoint(self.run_dir)
        if path is None:
            return 0
        meta = load_checkpoint(path, self.policy, self.optimizer, self.scheduler, self.teacher)
        self.tasks.position = meta["position"]
        if self.rank == 0:
            print(f"resumed from {path} (step {meta['step']})", file=sys.stderr, flush=True)
        return meta["step"]

    async def _build_scorer(self) -> Scorer:
        pool = await self.exit_stack.enter_async_context(RenderPool(self.cfg.render))
        if any(t.domain in HTML_DOMAINS for t in self.tasks.tasks):  # no Chromium: fail now
            await pool.start_browsers()
        return build_scorer(self.cfg, pool)


def build_scorer(cfg: Config, pool) -> RenderScorer:
    """The render scorer of `[feedback]`, its reward and teacher-context settings included."""
    f = cfg.feedback
    return RenderScorer(pool, f.alpha, f.sibling, f.teacher_sees, f.credit, cfg.train.seed,
                        f.reward, f.context)


def build_optimizer(policy, cfg: Config):
    """AdamW over the trainable parameters (a frozen vision tower stays out), with a linear
    warm-up to `train.lr`, constant after."""
    t = cfg.train
    trainable = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=t.lr, weight_decay=t.weight_decay)
    warmup = lambda step: min(1.0, (step + 1) / (t.warmup_steps + 1))  # noqa: E731
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, warmup)


def _seed_everything(seed: int, rank: int) -> None:
    """Ranks draw different samples; the same seed and rank always draw the same ones."""
    random.seed(seed + rank)
    np.random.seed(seed + rank)
    torch.manual_seed(seed + rank)


@contextlib.contextmanager
def _timed(times: dict, spans: list, key: str):
    """Time a stage of the main thread (a stage timed twice adds up), keep its span for the
    timeline, and name it in torch.profiler traces (bench/step.py --profile)."""
    t0 = time.perf_counter()
    with torch.profiler.record_function(key):
        yield
    t1 = time.perf_counter()
    times[key] = times.get(key, 0.0) + t1 - t0
    spans.append((key, "main", t0, t1))
