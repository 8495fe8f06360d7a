"""What a follower may know before the performance starts: the score's notated timing and layout.

The score-side baselines (a metronome, on-line DTW against a synthesized score) need the piece's notes
at the *notated* tempo (``Piece.score_notes``, from ``score/<score>.mid``) and the map from notated
time to sheet x through the noteheads. Real MSMD splits ship no score MIDI; for them
:func:`notated_notes` builds a stand-in from the sheet alone at a given speed in px/s, e.g. the
median speed of the training set (:func:`median_speed_px_per_s`), which is the one piece of outside
knowledge a metronome without a tempo marking needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfgym.data.piece import FPS, Piece, merge_onsets, note_onset_frames

STAND_IN_DURATION_S = 0.5
"""Duration of every note of a stand-in score (a score without notated timing has no durations either)."""


class MissingScoreTiming(ValueError):
    """A score-side follower was asked to follow a piece that has no notated timing."""


@dataclass(frozen=True)
class ScoreMap:
    """Notated time (seconds) → sheet x, linear between the score's merged onsets.

    Built like the ground truth (onsets floored to frames and merged per frame, see
    :func:`sfgym.data.piece.merge_onsets`) but from the notated timing instead of the performance's.
    """

    onset_times: np.ndarray
    onset_x: np.ndarray

    @classmethod
    def of(cls, piece: Piece, score_notes: np.ndarray) -> ScoreMap:
        frames = note_onset_frames(score_notes, piece.fps)
        onset_frames, onset_coords = merge_onsets(frames, piece.coords, piece.coord2onset)
        return cls(onset_times=onset_frames / piece.fps, onset_x=onset_coords[:, 1].astype(np.float64))

    @property
    def first_onset_time(self) -> float:
        return float(self.onset_times[0])

    def x_at(self, time_s: float | np.ndarray) -> float | np.ndarray:
        """Sheet x at notated time ``time_s`` (held at the first / last notehead outside the onsets)."""
        return np.interp(time_s, self.onset_times, self.onset_x)


def notated_notes(piece: Piece, fallback_px_per_second: float | None = None) -> np.ndarray:
    """The piece's notes at the notated tempo, ``(onset s, pitch, duration s)`` rows in note order.

    ``piece.score_notes`` when present. Otherwise, if ``fallback_px_per_second`` is given, a stand-in:
    every note starts when a cursor moving through the sheet at that constant speed reaches its
    notehead (notes without a notehead are placed between their neighbours), with its pitch (the pitch
    is written in the score; only the performance's *timing* is off limits) and a fixed duration.

    Raises:
        MissingScoreTiming: no ``score_notes`` and no fallback speed.
    """
    if piece.score_notes is not None:
        return piece.score_notes
    if fallback_px_per_second is None or not fallback_px_per_second > 0:
        raise MissingScoreTiming(
            f"{piece.source}: piece {piece.name!r} has no notated timing (no score/<score>.mid next to its "
            "score .npz); a score-side follower then needs a speed in px/s to stand in for the tempo "
            "(e.g. the training set's median, agents.baselines.score_side.median_speed_px_per_s)"
        )
    note_x = np.full(len(piece.notes), np.nan)
    for coord_index, note_index in sorted(piece.coord2onset.items()):
        if np.isnan(note_x[note_index]):
            note_x[note_index] = piece.coords[coord_index, 1]
    known = np.flatnonzero(~np.isnan(note_x))
    note_x = np.interp(np.arange(len(note_x)), known, note_x[known])
    onsets = (note_x - note_x.min()) / fallback_px_per_second
    return np.stack([onsets, piece.notes[:, 1], np.full(len(onsets), STAND_IN_DURATION_S)], axis=1)


def _speed_px_per_s(onset_times: np.ndarray, onset_x: np.ndarray) -> float | None:
    duration = float(onset_times[-1] - onset_times[0])
    return float(onset_x[-1] - onset_x[0]) / duration if duration > 0 and len(onset_x) > 1 else None


SCORE_SIDE_BASELINES = ("constant_tempo", "online_dtw", "online_dtw_spectrum")
"""Baselines that need the notated timing (``score/<score>.mid``) or, without it, a stand-in speed."""


def stand_in_speed(split_dir: str | Path, data: str | Path | None = None, score_speed: float | None = None) -> float:
    """The speed for score-side baselines on pieces without notated timing.

    ``score_speed`` if given, else the median speed of a train split found in ``data`` (a dataset root) or
    next to ``split_dir``, as long as it is not ``split_dir`` itself (never measure on the pieces followed).
    """
    from sfgym.data.msmd import find_split_dir

    if score_speed is not None:
        return float(score_speed)
    split_dir = Path(split_dir)
    for root in dict.fromkeys(p for p in (data, split_dir.parent) if p is not None):
        try:
            train = find_split_dir(root, "train")
        except ValueError:
            continue
        if train.resolve() != split_dir.resolve():
            speed = median_speed_px_per_s(train)
            print(f"pieces without a score MIDI: {', '.join(SCORE_SIDE_BASELINES)} move at the train split's "
                  f"median speed, {speed:.1f} px/s ({train})")
            return speed
    raise ValueError(f"{split_dir}: some pieces have no score MIDI (score/<score>.mid), so the score-side "
                     f"baselines ({', '.join(SCORE_SIDE_BASELINES)}) need a stand-in tempo and no train split "
                     "was found next to it to measure one; pass --score-speed PX_PER_S")


def median_speed_px_per_s(split_dir: str | Path) -> float:
    """The median speed (sheet px per second) of the pieces of a (training) split.

    Uses the notated timing where a score MIDI exists and the performance otherwise (learning a
    typical speed from *training* performances is fair). Reads only the score files and MIDI, not
    the audio, so it is quick even on a split without cached spectrograms.
    """
    from sfgym.data.msmd import list_pieces, read_midi_notes, read_score_npz

    speeds = []
    for files in list_pieces(split_dir):
        _, coords, coord2onset = read_score_npz(files.score)
        notes = read_midi_notes(files.score_midi if files.score_midi is not None else files.midi)
        coord2onset = {int(c): int(n) for c, n in coord2onset.items() if int(n) < len(notes)}
        if not coord2onset:
            continue
        frames = note_onset_frames(notes)
        onset_frames, onset_coords = merge_onsets(frames, np.asarray(coords, dtype=np.float32), coord2onset)
        speed = _speed_px_per_s(onset_frames / FPS, onset_coords[:, 1])
        if speed is not None and speed > 0:
            speeds.append(speed)
    if not speeds:
        raise ValueError(f"{split_dir}: no piece to measure a speed on")
    return float(np.median(speeds))


__all__ = ["MissingScoreTiming", "SCORE_SIDE_BASELINES", "ScoreMap", "median_speed_px_per_s", "notated_notes",
           "stand_in_speed"]
