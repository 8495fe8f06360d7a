"""Score-following metrics, defined once so that every follower's numbers are comparable.

The definitions follow Dorfer et al. (ISMIR 2018, TISMIR 2019) and Henkel et al. (2020/2021); see
section 3 of the reference notes. Everything is measured at the piece's *merged onset frames*
(``Piece.onset_frames``), with the same (unpadded) frame index for the prediction and the truth.

A run of one follower over one piece is recorded as a :class:`Trajectory`. For that run:

- An onset is **reached** when the follower was still tracking at its frame: the onset's frame lies
  in the recorded frames and comes *before* the first frame at which the follower lost the target
  (``|x - x_true| > threshold``). The onset at the very frame of the loss is therefore *not*
  reached. (The reference code counts ``onset_frame <= frame_of_loss`` and so credits one onset
  more per lost piece; otherwise the definitions agree.)
- **TR** (tracking ratio) of a piece: onsets reached / all onsets. Over many runs, the *global*
  TR sums both counts over all runs (``aggregate``), it does not average per-piece ratios.
- **TUE** (tracked until end): whether every onset was reached; over many runs, the share of runs.
- **Alignment error**: ``|x - x_true|`` in native sheet pixels at every *reached* onset frame
  (the first onset, where every episode starts on the truth, included); also in cm
  (``PX_TO_CM``, 72 dpi). Mean, median and (population) standard deviation pooled over all reached
  onsets of all runs.
- **Time tolerance shares**: the follower's x at a reached onset is mapped back to a time through
  the piece's ground truth (onset x → onset time, linear in between, see :func:`x_to_time`); the
  share of *all* onsets whose mapped time is within 0.05 / 0.1 / 0.5 / 1.0 / 5.0 s of the onset's
  true time. Onsets never reached count as misses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sfgym.data.piece import Piece
from sfgym.envs.geometry import LOSS_THRESHOLD_PX

PX_TO_CM = 0.035277778
"""Centimetres per native sheet pixel (72 dpi), as in the reference code."""

DEFAULT_THRESHOLD_PX = LOSS_THRESHOLD_PX
"""Distance from the truth beyond which the target counts as lost: the environment's, 170 px (512 // 3, the reference value)."""

TIME_TOLERANCES_S: tuple[float, ...] = (0.05, 0.1, 0.5, 1.0, 5.0)
"""Tolerances (seconds) of the time-tolerance shares."""


def tolerance_key(tolerance_s: float) -> str:
    """Column name of a time-tolerance share, e.g. ``within_0.05s``."""
    return f"within_{tolerance_s:g}s"


# ---------------------------------------------------------------------------- records
@dataclass
class Trajectory:
    """The record of one follower following one piece once.

    Attributes:
        agent: the follower's name.
        piece: the piece's name.
        seed: the seed of the run.
        frames: int64 ``(S,)`` unpadded spectrogram frames the follower was at, strictly increasing
            (one per environment step, starting with the frame of the reset).
        follower_x: float ``(S,)`` the follower's x (native unpadded sheet columns) at those frames.
        true_x: float ``(S,)`` the ground-truth x at those frames.
        lost_frame: the first frame at which ``|follower_x - true_x| > threshold``, or ``None`` if the
            follower never lost the target. Derived from the data when not given.
        threshold: the loss threshold in pixels.
        act_seconds: wall-clock time spent inside the follower's ``act`` over the whole run.
        reset_seconds: wall-clock time spent inside the follower's ``reset``.
    """

    agent: str
    piece: str
    seed: int
    frames: np.ndarray
    follower_x: np.ndarray
    true_x: np.ndarray
    lost_frame: int | None = None
    threshold: float = DEFAULT_THRESHOLD_PX
    act_seconds: float = 0.0
    reset_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.int64).reshape(-1)
        self.follower_x = np.asarray(self.follower_x, dtype=np.float64).reshape(-1)
        self.true_x = np.asarray(self.true_x, dtype=np.float64).reshape(-1)
        where = f"trajectory of {self.agent!r} on {self.piece!r}"
        if not len(self.frames) == len(self.follower_x) == len(self.true_x):
            raise ValueError(
                f"{where}: frames, follower_x and true_x must have the same length, got "
                f"{len(self.frames)}, {len(self.follower_x)}, {len(self.true_x)}"
            )
        if len(self.frames) == 0:
            raise ValueError(f"{where}: is empty")
        if np.any(np.diff(self.frames) <= 0):
            raise ValueError(f"{where}: frames must be strictly increasing")
        if not np.all(np.isfinite(self.follower_x)):
            raise ValueError(f"{where}: follower_x contains NaN or inf")
        if self.lost_frame is None:
            lost = np.flatnonzero(self.errors > self.threshold)
            self.lost_frame = int(self.frames[lost[0]]) if len(lost) else None
        else:
            self.lost_frame = int(self.lost_frame)

    @property
    def errors(self) -> np.ndarray:
        """``|follower_x - true_x|`` at every recorded frame (pixels)."""
        return np.abs(self.follower_x - self.true_x)

    @property
    def lost(self) -> bool:
        return self.lost_frame is not None

    @property
    def n_steps(self) -> int:
        """Number of ``act`` calls (one per recorded frame after the reset frame)."""
        return max(len(self.frames) - 1, 0)

    @property
    def ms_per_frame(self) -> float:
        """Mean wall-clock cost of one ``act`` call, in milliseconds."""
        return 1000.0 * self.act_seconds / self.n_steps if self.n_steps else float("nan")

    def reached_onsets(self, onset_frames: np.ndarray) -> np.ndarray:
        """Bool mask over ``onset_frames``: reached (recorded, and before the loss) or not."""
        onset_frames = np.asarray(onset_frames, dtype=np.int64)
        recorded = np.isin(onset_frames, self.frames)
        if self.lost_frame is not None:
            recorded &= onset_frames < self.lost_frame
        return recorded

    def x_at(self, frames: np.ndarray) -> np.ndarray:
        """The follower's x at ``frames`` (which must all be recorded frames)."""
        index = np.searchsorted(self.frames, frames)
        return self.follower_x[index]


@dataclass
class PieceMetrics:
    """The metrics of one :class:`Trajectory` (one follower, one piece, one seed).

    The per-onset arrays are kept so that :func:`aggregate` can pool them over runs.
    """

    agent: str
    piece: str
    seed: int
    n_onsets: int
    reached: np.ndarray = field(repr=False)
    """bool ``(n_onsets,)``: onset reached."""
    onset_errors_px: np.ndarray = field(repr=False)
    """``|x - x_true|`` at the reached onsets, in onset order."""
    onset_time_errors_s: np.ndarray = field(repr=False)
    """``(n_onsets,)`` time error of each onset; ``inf`` where not reached."""
    lost_frame: int | None
    n_steps: int
    act_seconds: float
    reset_seconds: float

    @property
    def n_reached(self) -> int:
        return int(self.reached.sum())

    @property
    def tr(self) -> float:
        return self.n_reached / self.n_onsets

    @property
    def tue(self) -> bool:
        return bool(self.reached.all())

    def as_row(self) -> dict[str, float | int | str | bool | None]:
        """One flat row (for ``results.csv``)."""
        row: dict = {"agent": self.agent, "piece": self.piece, "seed": self.seed, "tr": self.tr,
                     "tue": self.tue, "onsets": self.n_onsets, "onsets_reached": self.n_reached,
                     "lost_frame": self.lost_frame}
        row.update(error_stats(self.onset_errors_px))
        row.update(tolerance_shares(self.onset_time_errors_s))
        row["ms_per_frame"] = 1000.0 * self.act_seconds / self.n_steps if self.n_steps else float("nan")
        row["reset_s"] = self.reset_seconds
        return row


# ---------------------------------------------------------------------------- helpers
_QUERY_CHUNK = 256


def x_to_time(x: np.ndarray, onset_x: np.ndarray, onset_times: np.ndarray,
              reference_times: np.ndarray | None = None) -> np.ndarray:
    """Map score positions back to performance times through a piece's ground truth.

    The ground truth is piecewise linear between consecutive onsets ``(onset_times[k], onset_x[k])``.
    A position inside segment ``k`` maps to the time at which the ground truth passes through it;
    positions left of (right of) every onset map to the first (last) onset time, as the ground truth
    is held constant outside the onsets.

    If the ground truth passes through ``x`` more than once (a score whose x goes back, e.g. an
    unrolled repeat), the passage closest to ``reference_times`` (the true time of each query) is
    taken; without ``reference_times`` the earliest.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    onset_x = np.asarray(onset_x, dtype=np.float64)
    onset_times = np.asarray(onset_times, dtype=np.float64)
    if len(onset_x) == 1:
        return np.full(len(x), onset_times[0])
    if np.all(np.diff(onset_x) > 0):  # the usual case: x strictly increases with time
        return np.interp(x, onset_x, onset_times)
    if len(x) > _QUERY_CHUNK:  # bound the (queries x segments) arrays below
        chunks = range(0, len(x), _QUERY_CHUNK)
        return np.concatenate([
            x_to_time(x[i:i + _QUERY_CHUNK], onset_x, onset_times,
                      None if reference_times is None else np.asarray(reference_times).reshape(-1)[i:i + _QUERY_CHUNK])
            for i in chunks
        ])
    x0, x1 = onset_x[:-1], onset_x[1:]
    t0, t1 = onset_times[:-1], onset_times[1:]
    lo, hi = np.minimum(x0, x1), np.maximum(x0, x1)
    # (queries, segments): where each query crosses each segment, if it does
    inside = (x[:, None] >= lo[None]) & (x[:, None] <= hi[None])
    span = x1 - x0
    fraction = np.divide(x[:, None] - x0[None], span[None], out=np.zeros((len(x), len(span))),
                         where=span[None] != 0)
    times = t0[None] + fraction * (t1 - t0)[None]
    if reference_times is not None:
        reference = np.asarray(reference_times, dtype=np.float64).reshape(-1, 1)
        # a flat segment (same x at both ends) covers every time between its ends: take the closest
        flat = span[None] == 0
        times = np.where(flat, np.clip(reference, t0[None], t1[None]), times)
        cost = np.where(inside, np.abs(times - reference), np.inf)
    else:
        cost = np.where(inside, np.arange(len(span))[None], np.inf)
    best = np.argmin(cost, axis=1)
    result = times[np.arange(len(x)), best]
    # outside every segment: clamp to the nearer end of the score
    outside = ~inside.any(axis=1)
    first_is_left = onset_x[0] <= onset_x[-1]
    left_time, right_time = (onset_times[0], onset_times[-1]) if first_is_left else (onset_times[-1], onset_times[0])
    result[outside] = np.where(x[outside] < onset_x.min(), left_time, right_time)
    return result


def error_stats(errors_px: np.ndarray) -> dict[str, float]:
    """Mean / median / std of absolute errors in px and cm (NaN when there are none)."""
    errors_px = np.abs(np.asarray(errors_px, dtype=np.float64))
    if len(errors_px) == 0:
        mean = median = std = float("nan")
    else:
        mean, median, std = float(errors_px.mean()), float(np.median(errors_px)), float(errors_px.std())
    return {"error_mean_px": mean, "error_median_px": median, "error_std_px": std,
            "error_mean_cm": mean * PX_TO_CM, "error_median_cm": median * PX_TO_CM,
            "error_std_cm": std * PX_TO_CM}


def tolerance_shares(time_errors_s: np.ndarray, tolerances_s: Sequence[float] = TIME_TOLERANCES_S) -> dict[str, float]:
    """Share of onsets whose time error is within each tolerance (``inf`` = missed)."""
    time_errors_s = np.asarray(time_errors_s, dtype=np.float64)
    n = max(len(time_errors_s), 1)
    return {tolerance_key(t): float(np.sum(time_errors_s <= t)) / n for t in tolerances_s}


# ---------------------------------------------------------------------------- metrics
def piece_metrics(trajectory: Trajectory, piece: Piece) -> PieceMetrics:
    """The metrics of one run on ``piece`` (see the module docstring for the definitions)."""
    if trajectory.piece != piece.name:
        raise ValueError(f"trajectory of piece {trajectory.piece!r} scored against piece {piece.name!r}")
    onset_frames = np.asarray(piece.onset_frames, dtype=np.int64)
    reached = trajectory.reached_onsets(onset_frames)
    reached_frames = onset_frames[reached]
    predicted_x = trajectory.x_at(reached_frames)
    true_x = np.asarray(piece.true_x, dtype=np.float64)[reached_frames]
    onset_times = onset_frames / piece.fps
    time_errors = np.full(len(onset_frames), np.inf)
    if reached.any():
        predicted_times = x_to_time(predicted_x, piece.onset_x, onset_times, reference_times=onset_times[reached])
        time_errors[reached] = np.abs(predicted_times - onset_times[reached])
    return PieceMetrics(
        agent=trajectory.agent, piece=piece.name, seed=trajectory.seed, n_onsets=len(onset_frames),
        reached=reached, onset_errors_px=np.abs(predicted_x - true_x), onset_time_errors_s=time_errors,
        lost_frame=trajectory.lost_frame, n_steps=trajectory.n_steps, act_seconds=trajectory.act_seconds,
        reset_seconds=trajectory.reset_seconds,
    )


def aggregate(runs: Sequence[PieceMetrics]) -> dict[str, float | int]:
    """Pool the metrics of many runs (pieces × seeds) of one follower.

    TR is global (reached onsets summed over runs / all onsets summed over runs), TUE the share of
    runs tracked to the end, errors and time-tolerance shares pooled over all onsets, and
    ``ms_per_frame`` the total ``act`` time over all steps.
    """
    if not runs:
        raise ValueError("aggregate() needs at least one run")
    n_onsets = sum(run.n_onsets for run in runs)
    n_reached = sum(run.n_reached for run in runs)
    n_steps = sum(run.n_steps for run in runs)
    summary: dict = {"runs": len(runs), "pieces": len({run.piece for run in runs}),
                     "tr": n_reached / n_onsets, "tue": float(np.mean([run.tue for run in runs])),
                     "onsets": n_onsets, "onsets_reached": n_reached}
    summary.update(error_stats(np.concatenate([run.onset_errors_px for run in runs])))
    summary.update(tolerance_shares(np.concatenate([run.onset_time_errors_s for run in runs])))
    summary["ms_per_frame"] = 1000.0 * sum(run.act_seconds for run in runs) / n_steps if n_steps else float("nan")
    summary["reset_s"] = float(np.mean([run.reset_seconds for run in runs]))
    return summary


__all__ = ["DEFAULT_THRESHOLD_PX", "PX_TO_CM", "PieceMetrics", "TIME_TOLERANCES_S", "Trajectory", "aggregate",
           "error_stats", "piece_metrics", "tolerance_key", "tolerance_shares", "x_to_time"]
