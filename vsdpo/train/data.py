"""Which prompts each rank trains on, reproducibly and resumably.

The task list is shuffled once per epoch with a generator seeded by `(seed, epoch)`; a step
consumes `world · prompts_per_step` consecutive entries of that order and rank r takes its
slice. The only state is `position` (prompts consumed so far), so a resumed run that
restores it sees exactly the prompts the uninterrupted run would have seen.
"""

import torch

from vsdpo.config import TasksConfig
from vsdpo.tasks import Task, generate_tasks, load_tasks


class TaskStream:
    def __init__(self, tasks: list[Task], per_rank: int, rank: int, world: int, seed: int):
        self.tasks, self.per_rank, self.rank, self.world, self.seed = tasks, per_rank, rank, world, seed
        self.position = 0

    def next(self) -> list[Task]:
        """This rank's prompts for the next step."""
        start = self.position + self.rank * self.per_rank
        batch = [self._at(start + i) for i in range(self.per_rank)]
        self.position += self.world * self.per_rank
        return batch

    def _at(self, index: int) -> Task:
        epoch, offset = divmod(index, len(self.tasks))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return self.tasks[torch.randperm(len(self.tasks), generator=g)[offset]]


def build_tasks(cfg: TasksConfig, split: str = "train") -> list[Task]:
    """Tasks from JSONL when a path is set (`check_config` has read it), else the embedded
    synthetic generator."""
    path = cfg.path if split == "train" else cfg.eval_path
    if path:
        return load_tasks(path)
    n = cfg.num_train if split == "train" else cfg.num_eval
    return generate_tasks(cfg.domains, n, seed=cfg.seed, split=split)

