"""The ``sfgym`` command line.

Each sub-command lives in its own module under :mod:`sfgym.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to the function that runs it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules under sfgym.commands, in the order their commands are listed in --help.
COMMAND_MODULES = ("data", "train", "evaluate", "render", "follow")

DESCRIPTION = """\
sfgym: score following on MSMD-format data.

Typical session:
  sfgym data build                      # build the default dataset (once; cached)
  sfgym data info                       # what is in it
  sfgym evaluate --agents oracle,constant_tempo,online_dtw --out results/
  sfgym train supervised --config lstm
  sfgym train rl --config ppo
  sfgym render --agents constant_tempo,online_dtw --piece NAME --video out.mp4

Run 'sfgym COMMAND --help' for the options of one command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfgym", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"sfgym.commands.{module_name}")
        except ModuleNotFoundError as error:
            if error.name != f"sfgym.commands.{module_name}":
                raise
            continue  # command not available in this version
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as error:
        # Errors of input (bad piece files, unknown config keys, missing paths) are reported, not traced.
        print(f"sfgym: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
