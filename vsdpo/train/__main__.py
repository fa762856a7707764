"""`python -m vsdpo.train --config F [--set a.b=c ...]`, alone or under torchrun.

A config mistake ends every rank with status 2; only rank 0 prints it, as one line naming
the key (each rank reads the same config, so each finds the same mistake). The other ranks
wait for torchrun to stop them: torchrun ends all ranks as soon as one exits, and a rank
that exited first could cut rank 0 off before its line. torchrun then adds its own summary
of the failed ranks.
"""

import argparse
import os
import sys
import time
from typing import NoReturn

import torch.distributed as dist

from vsdpo.config import Config, ConfigError, add_config_args, load_config
from vsdpo.train.distributed import exit_process
from vsdpo.train.faults import naming_dead_ranks
from vsdpo.train.trainer import Trainer

_RANK_ZERO_GRACE_S = 60.0  # at most this long for rank 0 to report the same mistake


def main(argv: list[str] | None = None) -> NoReturn:
    parser = argparse.ArgumentParser(prog="python -m vsdpo.train",
                                     description=__doc__.split("\n\n")[0])
    add_config_args(parser)
    args = parser.parse_args(argv)
    try:
        run(load_config(args.config, args.set))
    except ConfigError as err:
        if os.environ.get("RANK", "0") == "0":
            print(f"{parser.prog}: {err}", file=sys.stderr)
        else:
            time.sleep(_RANK_ZERO_GRACE_S)
        exit_process(2)
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
