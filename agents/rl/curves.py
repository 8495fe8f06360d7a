"""Learning curves: validation tracking ratio against environment steps.

Every RL run writes ``learning_curve.csv`` (one row per evaluation) and ``learning_curve.png`` in
its run directory. :func:`plot_learning_curves` draws several runs in one figure — the
with/without supervised initialization comparison::

    python -m agents.rl.curves runs/rl/ppo-scratch runs/rl/ppo-init \\
        --labels "from scratch" "supervised init" --out ppo_init_comparison.png
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Sequence

from sfgym.files import atomic_write_bytes

CURVE_CSV = "learning_curve.csv"
CURVE_PNG = "learning_curve.png"
CURVE_COLUMNS = ("step", "tr", "tue", "error_mean_px", "error_median_px", "onsets", "onsets_reached", "runs",
                 "wall_s")
"""Columns of ``learning_curve.csv``: environment steps, the aggregated metrics of
:func:`sfgym.metrics.aggregate` on the validation pieces, and seconds since training started."""


def write_curve_csv(path: str | Path, rows: Sequence[dict]) -> None:
    """Write the learning-curve rows (all of them: the file is rewritten atomically each time)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CURVE_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(Path(path), buffer.getvalue().encode())


def read_curve_csv(path: str | Path) -> list[dict[str, float]]:
    """The rows of a ``learning_curve.csv`` (or of the one in a run directory), as floats."""
    path = Path(path)
    if path.is_dir():
        path = path / CURVE_CSV
    if not path.is_file():
        raise FileNotFoundError(f"{path}: learning curve not found")
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        missing = {"step", "tr"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: not a learning curve (missing columns {sorted(missing)})")
        return [{key: float(value) for key, value in row.items() if value not in ("", None)} for row in reader]


def plot_learning_curves(curves: Sequence[tuple[str, Sequence[dict]]], out: str | Path,
                         title: str = "Validation tracking ratio",
                         baselines: dict[str, float] | None = None) -> Path:
    """Plot valid TR against environment steps and against wall-clock minutes (when the rows have
    ``wall_s``) for one or more runs (``(label, rows)`` pairs) into a PNG; ``baselines`` (label → TR)
    are drawn as horizontal lines. Runs of very different lengths share a symmetric-log step axis."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    with_time = all(rows and "wall_s" in rows[0] for _, rows in curves)
    figure, axes = plt.subplots(1, 2 if with_time else 1, figsize=(12 if with_time else 7, 4.2), squeeze=False)
    step_axis = axes[0][0]
    longest = max((max(row["step"] for row in rows) for _, rows in curves if rows), default=0)
    shortest = min((max(row["step"] for row in rows) for _, rows in curves if rows), default=0)
    if shortest and longest / shortest > 5:
        step_axis.set_xscale("symlog", linthresh=max(1.0, shortest / 10))
    panels = [(step_axis, "step", 1.0, "environment steps")]
    if with_time:
        panels.append((axes[0][1], "wall_s", 1 / 60, "wall-clock minutes (training and evaluation)"))
    for axis, column, scale, label in panels:
        for run_label, rows in curves:
            axis.plot([row[column] * scale for row in rows], [row["tr"] for row in rows], marker="o", markersize=3,
                      label=run_label)
        for baseline_label, value in (baselines or {}).items():
            axis.axhline(value, linestyle="--", color="grey", linewidth=1)
            axis.annotate(baseline_label, (0.01, value), xycoords=("axes fraction", "data"), va="bottom",
                          fontsize=8, color="dimgrey")
        axis.set_xlabel(label)
        axis.set_ylabel("tracking ratio (valid)")
        axis.set_ylim(0.0, 1.02)
        axis.grid(alpha=0.3)
    step_axis.set_title(title)
    if len(curves) > 1:
        step_axis.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    out = Path(out)
    atomic_write_bytes(out, buffer.getvalue())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Plot valid TR against steps for RL runs in one figure.")
    parser.add_argument("runs", nargs="+", help="run directories or learning_curve.csv files")
    parser.add_argument("--labels", nargs="+", help="legend labels (default: the run directories' names)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--title", default="Validation tracking ratio")
    parser.add_argument("--baseline", action="append", default=[], metavar="LABEL=TR",
                        help="a horizontal reference line, e.g. --baseline 'constant tempo=0.63' (repeatable)")
    args = parser.parse_args(argv)
    baselines = {}
    for text in args.baseline:
        label, sep, value = text.rpartition("=")
        try:
            baselines[label] = float(value)
        except ValueError:
            sep = ""
        if not sep or not label:
            parser.error(f"--baseline {text!r}: expected LABEL=TR, e.g. 'constant tempo=0.63'")
    if args.labels and len(args.labels) != len(args.runs):
        parser.error(f"got {len(args.labels)} labels for {len(args.runs)} runs")
    labels = args.labels or [Path(run).name if Path(run).is_dir() else Path(run).parent.name for run in args.runs]
    out = plot_learning_curves([(label, read_curve_csv(run)) for label, run in zip(labels, args.runs)],
                               args.out, title=args.title, baselines=baselines)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
