"""``sfgym sweep KIND``: seeds × settings of a trainer on Ray Tune, one table of mean ± std over seeds.

The sweep's own options are parsed here; every other option is the trainer's (``sfgym train KIND``'s:
``--config``, ``--data``, ...), passed to each trial unchanged. The work is in :mod:`sfgym.sweep`
(imported when the command runs: it needs Ray, an optional extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sfgym.commands import CommandParser

DESCRIPTION = """\
Run seeds x settings of 'sfgym train KIND' on Ray Tune (local Ray, or a cluster with --address); each
trial is an ordinary run directory (SWEEP_DIR/trials/SETTING-seedK) that evaluate, render and
'train pretrained --from' take. Writes SWEEP_DIR/summary.csv and summary.md (per setting: mean ± std
over seeds of the valid selection figure, and the test figures of the models chosen on valid) and
trials.csv (per trial).

  sfgym sweep supervised --config tiny --data DATA --set training.lr=1e-3,3e-3 --seeds 0,1,2 --out sweeps/lr

Options not listed here are the trainer's ('sfgym train KIND --help') and go to every trial.
A --set with one value is passed to every trial; with several (comma-separated) it is swept."""


def register(subparsers) -> None:
    # '+' as the only prefix: the sweep's and the trainer's options are collected raw and parsed in run().
    parser = subparsers.add_parser("sweep", help="seeds x settings of a trainer on Ray Tune (pip install -e \".[ray]\")",
                                   add_help=False, prefix_chars="+", description=DESCRIPTION)
    parser.add_argument("arguments", nargs="*", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def sweep_parser() -> argparse.ArgumentParser:
    """The sweep's own options (the rest of the command line is the trainer's)."""
    parser = CommandParser(prog="sfgym sweep", description=DESCRIPTION, allow_abbrev=False,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", help="the trainer: supervised, rl or trunk (as 'sfgym train KIND')")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2", dest="sets",
                        help="a config value, or values to sweep (repeatable); commas inside [..] do not split")
    parser.add_argument("--seeds", default=None, help="seeds of every setting: 0,1,2 or 0-4 (default 0,1,2)")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--grid", action="store_true", help="every combination of the swept values (the default)")
    shape.add_argument("--samples", type=int, metavar="N", help="N combinations drawn from the grid instead")
    parser.add_argument("--sweep-file", metavar="YAML",
                        help="settings from a file: 'set: {KEY: [V1, V2]}', optional 'seeds:' and 'samples:'")
    parser.add_argument("--out", required=True, metavar="SWEEP_DIR", help="the sweep's directory")
    parser.add_argument("--address", help="a running Ray cluster ('auto', or HOST:6379); default: start local Ray")
    parser.add_argument("--cpus-per-trial", type=float, default=1, metavar="N", help="CPUs each trial asks (default 1)")
    parser.add_argument("--max-concurrent", type=int, metavar="N", help="trials at a time (default: as CPUs allow)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the sweep in --out: complete trials are kept, the others resumed or rerun")
    parser.add_argument("--no-test", action="store_true", help="skip following the chosen models on the test split")
    return parser


def run(args: argparse.Namespace) -> int:
    from sfgym.sweep import RayUnavailable, TrialsFailed, parse_seeds, parse_sets, plan_trials, read_sweep_file, run_sweep

    options, trainer_args = sweep_parser().parse_known_args(args.arguments)
    swept, seeds, samples = {}, None, options.samples
    if options.sweep_file:
        from_file = read_sweep_file(options.sweep_file)
        swept, seeds = from_file["set"], from_file["seeds"]
        samples = samples if samples is not None else from_file["samples"]
    for key, values in parse_sets(options.sets).items():
        swept[key] = values
    seeds = parse_seeds(options.seeds) if options.seeds is not None else [int(s) for s in (seeds or [0, 1, 2])]
    trials = plan_trials(swept, seeds, samples)
    try:
        settings = run_sweep(options.kind, trainer_args, trials, options.out, address=options.address,
                             cpus_per_trial=options.cpus_per_trial, max_concurrent=options.max_concurrent,
                             resume=options.resume, test=not options.no_test)
    except (RayUnavailable, TrialsFailed) as error:
        print(f"sfgym: error: {error}", file=sys.stderr)
        return 1
    print((Path(options.out) / "summary.md").read_text(), end="")
    return 0 if len(settings) else 1
