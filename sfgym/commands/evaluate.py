"""``sfgym evaluate``: run followers over a split and write one results table for all of them."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="evaluate followers (baselines, checkpoints) on a split: results.csv, summary.md, plots",
        description="Run every follower on every piece of a split (several seeds for stochastic ones) in the "
        "MSMDFollow environment and write results.csv (one row per agent, piece and seed), summary.csv and "
        "summary.md (one row per agent: TR, TUE, alignment errors, time-tolerance shares, ms/frame) and plots "
        "(position against time for every piece, error histogram) into --out.")
    from sfgym.followers import follower_descriptions
    from sfgym.threads import add_torch_threads_argument

    parser.add_argument("--agents", required=True,
                        help=f"comma-separated followers: by name ({', '.join(follower_descriptions())}), "
                        "supervised checkpoints (.pt), SB3 models (.zip), each optionally as LABEL=SPEC "
                        "(see 'sfgym agents')")
    parser.add_argument("--data", type=Path,
                        help="dataset root or split directory (e.g. from 'sfgym data import'); "
                        "default: the default dataset (built on first use)")
    parser.add_argument("--split", default="test", help="split to evaluate when --data is a dataset root (default: test)")
    parser.add_argument("--pieces", help="comma-separated piece names (default: all of the split)")
    parser.add_argument("--max-pieces", type=int, help="evaluate only the first N pieces (by name)")
    parser.add_argument("--seeds", type=int, default=1, help="runs per piece of stochastic followers (default: 1)")
    parser.add_argument("--workers", type=int, help="worker processes (default: min(2, CPUs))")
    add_torch_threads_argument(parser)
    parser.add_argument("--score-speed", type=float, metavar="PX_PER_S",
                        help="for pieces without a score MIDI (real MSMD): the speed that stands in for the "
                        "notated tempo of constant_tempo / online_dtw (default: the median of the train split)")
    parser.add_argument("--tempo-mark-error", type=float, metavar="FACTOR",
                        help="read every score as if its tempo mark were off by FACTOR (its notated times multiplied "
                        "by it: 3 = a mark three times too slow, 0.33 three times too fast); the performances and "
                        "their ground truth are unchanged. A robustness check for followers that read the score's timing")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    parser.add_argument("--out", type=Path, required=True,
                        help="output directory (one that holds no earlier results; see --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results of an earlier evaluation in --out (refused without it)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sfgym.data.msmd import find_split_dir, list_pieces, load_split
    from sfgym.data.piece import check_tempo_mark_factor, with_wrong_tempo_mark
    from sfgym.evaluation import AgentSpec, run_evaluation, summary_markdown, write_report
    from sfgym.score.timing import stand_in_tempo

    check_out_dir(args.out, args.overwrite)  # before the evaluation runs, not after
    agents = [AgentSpec.parse(text) for text in args.agents.split(",") if text.strip()]
    if not agents:
        raise ValueError("--agents: name at least one follower")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.tempo_mark_error is not None:  # before the split is loaded, not after
        check_tempo_mark_factor(args.tempo_mark_error)
    if args.data is None:
        from sfgym.data.dataset import default_dataset_dir

        data = default_dataset_dir()
    else:
        data = args.data
    split_dir = find_split_dir(data, args.split)
    names = [n.strip() for n in args.pieces.split(",")] if args.pieces else None
    if names is None and args.max_pieces is not None:
        names = [files.name for files in list_pieces(split_dir)][: args.max_pieces]
    pieces = load_split(split_dir, names)
    if args.tempo_mark_error is not None:
        pieces = [with_wrong_tempo_mark(piece, args.tempo_mark_error) for piece in pieces]

    follower_kwargs = stand_in_tempo([(a.label, a.spec) for a in agents],
                                     timing_missing=any(piece.score_notes is None for piece in pieces),
                                     score_speed=args.score_speed, split_dir=split_dir, data=data)
    agents = [AgentSpec.parse(f"{a.label}={a.spec}", follower_kwargs.get(a.label)) for a in agents]

    started = time.perf_counter()
    evaluation = run_evaluation(agents, pieces, seeds=args.seeds, workers=args.workers,
                                threads=args.torch_threads)
    elapsed = time.perf_counter() - started
    details = f"{len(pieces)} pieces, seeds={args.seeds}"
    if args.tempo_mark_error is not None:
        details += f", tempo marks off by {args.tempo_mark_error:g}"
    title = f"Evaluation on {split_dir} ({details})"
    written = write_report(evaluation, pieces, args.out, title=title, plots=not args.no_plots, progress=True)
    print(summary_markdown(evaluation.summary()))
    print(f"evaluated in {elapsed:.1f} s; wrote {written['results']}, {written['summary_md']}"
          + (f" and {len(written['positions'])} plots" if "positions" in written else ""))
    return 0


RESULT_FILES = ("results.csv", "summary.csv", "summary.md")


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` that cannot hold the results, or that holds an earlier evaluation's (unless ``overwrite``).

    Raises:
        ValueError: ``out`` (or a folder above it) is a file, or it holds results and ``overwrite`` is false.
    """
    from sfgym.commands import check_output_path

    check_output_path(out, "--out", directory=True)
    held = [name for name in RESULT_FILES if (out / name).exists()]
    if held and not overwrite:
        raise ValueError(f"--out {out} already holds the results of an evaluation ({', '.join(held)}): give another "
                         "--out, or --overwrite to replace them")
    if held:
        print(f"replacing the results in {out} (--overwrite)")
