"""The `vsdpo` command."""

import argparse
import sys

from vsdpo.render import report
from vsdpo.train import commands as train_commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vsdpo", description="Visual-SDPO trainer.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="warm-start the tiny model, train, evaluate before/after")
    report.add_parser(sub)
    train_commands.add_parsers(sub)
    args = parser.parse_args(argv)
    if args.command == "render":
        return report.run(args)
    if args.command in ("train", "eval", "warmstart"):
        return train_commands.run(args)
    if args.command == "demo":
        print("vsdpo demo: the trainer is not built yet (issue 5); the kernels are: "
              "`python bench/loss.py` runs the loss benchmark.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
