"""`sgpo-curate`: the command line. No logic lives here: each subcommand parses flags, calls one
public function of the package, and turns known errors into a message and an exit code.

Exit codes: 0 success, 1 a run failed, 2 bad input (unknown name, bad flag, unreadable file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from sgpo_curate.registry import UnknownNameError

logger = logging.getLogger("sgpo_curate")

# Errors that mean "the user asked for something that does not exist or is malformed": exit 2.
USER_ERRORS: tuple[type[BaseException], ...] = (UnknownNameError, FileNotFoundError, ValueError)


class UserError(Exception):
    """An error whose message is all the user needs: printed without a traceback, exit code 2."""


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _add_sources(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sources", help="List the registered sources.",
                            epilog="example: sgpo-curate sources")
    parser.set_defaults(func=_run_sources)


def _run_sources(args: argparse.Namespace) -> int:
    from sgpo_curate.registry import SOURCES
    from sgpo_curate.sources import get_source

    for name in SOURCES.names():
        source = get_source(name)
        _out(f"{name:<14} {source.domain:<5} {source.description}")
    return 0


# Each entry adds one subcommand; a subcommand's module keeps its parser next to its runner.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_sources]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sgpo-curate",
        description="Profile a model on math/code data, curate sGPO datasets, publish them.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (UserError, *USER_ERRORS) as exc:
        sys.stderr.write(f"sgpo-curate {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; finished work is saved, rerun the same command to resume\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
