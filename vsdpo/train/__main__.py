"""`python -m vsdpo.train --config F [--set a.b=c ...]`, alone or under torchrun."""

import argparse
from typing import NoReturn

import torch.distributed as dist

from vsdpo.config import Config, add_config_args, load_config
from vsdpo.train.faults import naming_dead_ranks
from vsdpo.train.model import exit_process
from vsdpo.train.trainer import Trainer


def main(argv: list[str] | None = None) -> NoReturn:
    parser = argparse.ArgumentParser(prog="python -m vsdpo.train", description=__doc__)
    add_config_args(parser)
    args = parser.parse_args(argv)
    run(load_config(args.config, args.set))
    exit_process(0)


def run(cfg: Config) -> None:
    """Exit status 0 also when SIGTERM stopped the run early (with a checkpoint to resume)."""
    with naming_dead_ranks():  # the start has collectives too; `train()` names its own
        trainer = Trainer(cfg)
    try:
        trainer.train()
    finally:
        trainer.close()
        if dist.is_initialized():  # a vLLM engine's shutdown destroys it already
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
