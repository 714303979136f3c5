"""`atheria COMMAND`: one argparse subcommand per module; torch and Lightning are imported only by the command run."""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn, Optional, Sequence

from atheria.cli import CliError

COMMANDS = ("status", "stop", "estimate", "export", "render", "generate")


def usage_error(prog: str, message: str) -> NoReturn:
    """Exit 2 with argparse's complaint as one line that says where to look."""
    print(f"error: {prog}: {message} (see {prog} --help)", file=sys.stderr)
    sys.exit(2)


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line instead of the usage and then the message."""

    def error(self, message: str) -> NoReturn:
        usage_error(self.prog, message)


def build_parser() -> argparse.ArgumentParser:
    """The `atheria` parser with every command's subparser (each module's `add_parser`)."""
    parser = Parser(prog="atheria", description="Follow, stop, plan and use Atheria training runs from any machine. "
                    "`atheria COMMAND --help` describes each command.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"atheria.cli.{name}").add_parser(commands)
    return parser


def parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """The parsed command line; overrides may sit anywhere among `estimate`'s options (argparse alone takes a
    positional list only in one run)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "overrides") and not any(item.startswith("-") for item in extra):
        args.overrides += extra
    elif extra:
        usage_error(f"atheria {args.command}", f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; a CliError is one line on stderr and exit code 2."""
    args = parse(argv)
    try:
        return args.run(args)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
