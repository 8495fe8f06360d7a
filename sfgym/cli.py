"""The ``sfgym`` command line.

Each sub-command lives in its own module under :mod:`sfgym.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to the function that runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import warnings

from sfgym import __version__
from sfgym.commands import CommandParser
from sfgym.threads import torch_threads

# Modules under sfgym.commands, in the order their commands are listed in --help.
COMMAND_MODULES = ("data", "train", "sweep", "evaluate", "render", "follow", "agents")

DESCRIPTION = """\
sfgym: score following on MSMD-format data.

Typical session:
  sfgym data build                      # build the default dataset (once; cached)
  sfgym data info                       # what is in it
  sfgym evaluate --agents oracle,constant_tempo,online_dtw --out results/
  sfgym train supervised --config lstm
  sfgym train rl --config ppo
  sfgym sweep supervised --config lstm --set training.lr=1e-3,3e-3 --out sweeps/lr   # on Ray
  sfgym render --agents constant_tempo,online_dtw --piece NAME --video out.mp4
  sfgym follow take.wav --score piece.musicxml --positions take.csv
  sfgym agents                          # the followers these commands take

Run 'sfgym COMMAND --help' for the options of one command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="sfgym", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"sfgym {__version__}")
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


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings on the command line as one line each (what happened, not where in sfgym's code)."""
    return f"sfgym: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _format_warning  # formats only: catch_warnings(record=True) still records
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        # Commands that follow (--torch-threads) run their followers on that many torch threads.
        threads = getattr(args, "torch_threads", None)
        with torch_threads(threads) if threads is not None else contextlib.nullcontext():
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
