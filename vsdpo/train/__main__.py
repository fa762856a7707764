"""`python -m vsdpo.train --config F [--set a.b=c ...]`, alone or under torchrun."""

import argparse

import torch.distributed as dist

from vsdpo.config import load_config
from vsdpo.train.trainer import Trainer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vsdpo.train", description=__doc__)
    add_train_args(parser)
    args = parser.parse_args(argv)
    run(load_config(args.config, args.set))


def add_train_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="configs/tiny.toml", help="TOML run config")
    parser.add_argument("--set", action="append", default=[], metavar="A.B=C",
                        help="override one config key (repeatable), e.g. --set train.steps=4")


def run(cfg) -> None:
    trainer = Trainer(cfg)
    try:
        trainer.train()
    finally:
        trainer.close()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
