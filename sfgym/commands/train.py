"""``sfgym train supervised | rl | trunk | pretrained``: train a learned follower (or the trunk RL starts from).

Each kind of training lives in a module named by an entry point of the ``sfgym.trainers`` group
(:func:`trainer_modules`; sfgym's own, in ``agents``, are declared in ``pyproject.toml``, so that sfgym
never imports agents), which provides ``add_arguments(parser)`` and ``main(args)``. Building the command line must stay quick (``sfgym --help`` should not load torch), so
a kind's module is imported only when its command runs: its sub-parser here collects the raw
arguments, and :func:`run` parses them with the module's own parser. A kind whose package is not
installed is left out.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from functools import partial
from pathlib import Path

from sfgym.commands import CommandParser

KINDS = {
    "supervised": "a recurrent position regressor (SRN / GRU / LSTM, the seed paper's models) on the "
                  "train split, validated on the valid split after every epoch",
    "rl": "a reinforcement-learning velocity agent (stable-baselines3 PPO / A2C / RecurrentPPO)",
    "trunk": "the shared trunk alone, to tell how far the music is from the score window's centre "
             "(a start for RL: --init-from)",
    "pretrained": "a follower to ship with the package (matching trunk, then PPO; or --from a trained run), "
                  "installed with its card as a named follower ('pretrained')",
}
"""Training kinds with their one-line help."""

ENTRY_POINT_GROUP = "sfgym.trainers"
"""Entry-point group naming, for each training kind, the module that trains it."""


def trainer_modules() -> dict[str, str]:
    """Training kind → the module that trains it, from the ``sfgym.trainers`` entry points."""
    from importlib.metadata import entry_points

    return {entry_point.name: entry_point.value for entry_point in entry_points(group=ENTRY_POINT_GROUP)}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a supervised regressor or an RL agent",
        description="Train a learned follower. 'sfgym train KIND --help' lists the options of a kind.")
    kinds = parser.add_subparsers(dest="train_kind", metavar="KIND", required=True)
    modules = trainer_modules()
    for kind in [k for k in KINDS if k in modules] + sorted(set(modules) - set(KINDS)):
        if not _available(modules[kind]):
            continue
        help_text = KINDS.get(kind, f"a follower with {modules[kind]}")
        # '+' as the only prefix: every '-'/'--' option is collected raw and parsed by the kind's own parser.
        sub = kinds.add_parser(kind, help=help_text, add_help=False, prefix_chars="+",
                               description=f"Train {help_text}.")
        sub.add_argument("arguments", nargs="*", help=argparse.SUPPRESS)
        sub.set_defaults(func=partial(run, kind))


def kind_parser(kind: str) -> tuple[argparse.ArgumentParser, object]:
    """The full parser of ``sfgym train KIND`` and the module that runs it."""
    module = importlib.import_module(trainer_modules()[kind])
    parser = CommandParser(prog=f"sfgym train {kind}", description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    return parser, module


def run(kind: str, args: argparse.Namespace) -> int:
    parser, module = kind_parser(kind)
    return int(module.main(parser.parse_args(args.arguments)) or 0)


def _available(module: str) -> bool:
    """Whether a trainer module exists (found without importing it, which would load torch)."""
    package_name, _, module_name = module.rpartition(".")
    try:
        package = importlib.util.find_spec(package_name)
    except ModuleNotFoundError:
        return False
    if package is None or not package.submodule_search_locations:
        return False
    return any((Path(location) / f"{module_name}.py").is_file() for location in package.submodule_search_locations)


__all__ = ["ENTRY_POINT_GROUP", "KINDS", "kind_parser", "register", "run", "trainer_modules"]
