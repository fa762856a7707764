"""The `vsdpo` command."""

import argparse
import sys

from vsdpo.apps import commands
from vsdpo.apps import report as run_report
from vsdpo.config import add_config_args
from vsdpo.render import command as render_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vsdpo", description="Visual-SDPO trainer.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="warm-start the tiny model, train, evaluate before/after",
                          description="The main job: warm-start the embedded tiny model (cached), "
                          "train Visual-SDPO under torchrun on CPU, print the before/after table "
                          "and the paired change.")
    add_config_args(demo)
    demo.add_argument("--nproc", type=int, default=2, help="training processes (default: 2)")
    render_command.add_parser(sub)
    run_report.add_parser(sub)
    commands.add_parsers(sub)
    args = parser.parse_args(argv)
    if args.command == "render":
        return render_command.run(args)
    if args.command == "report":
        return run_report.run(args)
    return commands.run(args)


if __name__ == "__main__":
    sys.exit(main())
