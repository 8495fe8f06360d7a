"""What a follower may know before the performance starts: the score's notated timing and layout.

The score-side baselines (a metronome, on-line DTW against a synthesized score) need the piece's notes
at the *notated* tempo (``Piece.score_notes``, from ``score/<score>.mid``) and the map from notated
time to sheet x through the noteheads. Real MSMD splits ship no score MIDI; for them
:func:`notated_notes` builds a stand-in from the sheet alone at a given speed in px/s, e.g. the
median speed of the training set (:func:`sfgym.data.tempo.median_speed_px_per_s`), which is the one
piece of outside knowledge a metronome without a tempo marking needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sfgym.data.piece import Piece, merge_onsets, note_onset_frames

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
            "(e.g. the training set's median, sfgym.data.tempo.median_speed_px_per_s)"
        )
    note_x = np.full(len(piece.notes), np.nan)
    for coord_index, note_index in sorted(piece.coord2onset.items()):
        if np.isnan(note_x[note_index]):
            note_x[note_index] = piece.coords[coord_index, 1]
    known = np.flatnonzero(~np.isnan(note_x))
    note_x = np.interp(np.arange(len(note_x)), known, note_x[known])
    onsets = (note_x - note_x.min()) / fallback_px_per_second
    return np.stack([onsets, piece.notes[:, 1], np.full(len(onsets), STAND_IN_DURATION_S)], axis=1)


def notated_truth(piece: Piece, score_map: ScoreMap) -> np.ndarray:
    """The true notated position (notated frames, float64) at every performed frame ``0 .. n_frames``.

    The performance's merged onsets are paired in order with the score's through their noteheads' x (both
    are merged from the same noteheads), and the position is linear in between, as the ground truth's x.

    Raises:
        ValueError: fewer than two onsets could be paired (the performance does not play this score).
    """
    performed, notated = [], []
    next_onset = 0
    for frame, x in zip(piece.onset_frames, piece.onset_x):
        hits = np.flatnonzero(score_map.onset_x[next_onset:] == x)
        if len(hits):
            next_onset += int(hits[0])
            performed.append(frame)
            notated.append(score_map.onset_times[next_onset] * piece.fps)
    if len(performed) < 2:
        raise ValueError(f"{piece.source}: only {len(performed)} of its {len(piece.onset_frames)} onsets have a "
                         "notehead of the score's notated onsets; cannot place the performance in notated time")
    return np.interp(np.arange(piece.n_frames + 1), performed, notated)


__all__ = ["MissingScoreTiming", "ScoreMap", "notated_notes", "notated_truth"]
