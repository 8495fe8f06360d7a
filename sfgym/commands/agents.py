"""``sfgym agents``: the followers that ``evaluate``, ``render`` and ``follow`` take."""

from __future__ import annotations

import argparse
from pathlib import Path

CHECKPOINT_KINDS = {
    "PATH.pt": "a supervised checkpoint ('sfgym train supervised' writes RUN/best.pt and RUN/last.pt), or a "
               "matching trunk's ('sfgym train trunk'), followed by the tracker",
    "PATH.zip": "a Stable-Baselines3 model ('sfgym train rl' writes RUN/best_model.zip)",
}
"""The follower files a spec may name, as ``make_follower`` reads them."""

RUN_FILES = ("best.pt", "best_model.zip")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "agents", help="list the followers: baselines and shipped followers by name, checkpoint files, the trained runs found",
        description="List what --agents (evaluate, render) and --agent (follow) take: the baseline and shipped "
        "followers by name, the checkpoint files a follower can be loaded from, and the best checkpoints of the runs under "
        "--runs.")
    parser.add_argument("--runs", type=Path, default=Path("runs"),
                        help="folder of training runs to list checkpoints from (default: ./runs, if it exists)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sfgym.followers import follower_descriptions

    followers = follower_descriptions()
    width = max(len(name) for name in [*followers, *CHECKPOINT_KINDS])
    print("Followers by name (the baselines, and the followers shipped ready to use):")
    for name, description in followers.items():
        print(f"  {name:<{width}}  {description}")
    print("Trained followers (give the file's path):")
    for name, description in CHECKPOINT_KINDS.items():
        print(f"  {name:<{width}}  {description}")
    if args.runs.is_dir():
        found = sorted(path for name in RUN_FILES for path in args.runs.rglob(name))
        print(f"Trained runs under {args.runs}: " + ("none" if not found else ""))
        for path in found:
            print(f"  {path}")
    print("In evaluate and render each may be given a label, LABEL=SPEC (e.g. lstm=runs/lstm/best.pt), and "
          "several are separated by commas.")
    return 0
