"""What a follower may know of the score's timing before the performance starts, and stand-ins where the
score has none.

The score-side followers (a metronome, on-line DTW against a synthesized score, the tempo tracker, the
notated regressors) need the piece's notes at the *notated* tempo (``Piece.score_notes``, from
``score/<score>.mid``) and the map from notated time to sheet x through the noteheads (:class:`ScoreMap`).
Real MSMD splits ship no score MIDI; for them :func:`notated_notes` builds a stand-in from the sheet alone at
a given speed in sheet px per second, by default the median speed of the training split
(:func:`median_speed_px_per_s`, chosen by :func:`stand_in_speed`), which is the one piece of outside
knowledge a metronome without a tempo marking needs. :func:`stand_in_tempo` is the one place the commands
decide which followers get that speed (the ``px_per_second`` keyword of their constructors).

Live following of a user's recording has no performance timing at all: :func:`stand_in_notes` spreads the
score's notes over the recording so that the environment's episode spans it (no fair follower reads them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfgym.data.msmd import find_split_dir, list_pieces, read_midi_notes, read_score_npz
from sfgym.data.piece import FPS, Piece, merge_onsets, note_onset_frames
from sfgym.followers import needs_notated_tempo

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
            "(e.g. the training set's median, sfgym.score.timing.median_speed_px_per_s)"
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



# ---------------------------------------------------------------------------- stand-ins for the notated tempo
def _speed_px_per_s(onset_times: np.ndarray, onset_x: np.ndarray) -> float | None:
    duration = float(onset_times[-1] - onset_times[0])
    return float(onset_x[-1] - onset_x[0]) / duration if duration > 0 and len(onset_x) > 1 else None


def median_speed_px_per_s(split_dir: str | Path) -> float:
    """The median speed (sheet px per second) of the pieces of a (training) split.

    Uses the notated timing where a score MIDI exists and the performance otherwise (learning a
    typical speed from *training* performances is fair). Reads only the score files and MIDI, not
    the audio, so it is quick even on a split without cached spectrograms.
    """

    def speed_of(score: Path, timing_midi: Path) -> float | None:
        _, coords, coord2onset = read_score_npz(score)
        notes = read_midi_notes(timing_midi)
        coord2onset = {int(c): int(n) for c, n in coord2onset.items() if int(n) < len(notes)}
        if not coord2onset:
            return None
        frames = note_onset_frames(notes)
        onset_frames, onset_coords = merge_onsets(frames, np.asarray(coords, dtype=np.float32), coord2onset)
        return _speed_px_per_s(onset_frames / FPS, onset_coords[:, 1])

    # The performances of one score share its score files: measure each (score, timing) pair once, but count
    # it once per performance, as before.
    measured: dict[tuple[Path, Path], float | None] = {}
    speeds = []
    for files in list_pieces(split_dir):
        key = (files.score, files.score_midi if files.score_midi is not None else files.midi)
        if key not in measured:
            measured[key] = speed_of(*key)
        speed = measured[key]
        if speed is not None and speed > 0:
            speeds.append(speed)
    if not speeds:
        raise ValueError(f"{split_dir}: no piece to measure a speed on")
    return float(np.median(speeds))


def stand_in_speed(split_dir: str | Path, data: str | Path | None = None, score_speed: float | None = None,
                   followers: Sequence[str] = ()) -> float:
    """The speed for followers that need a notated tempo, on pieces without notated timing.

    ``score_speed`` if given, else the median speed of a train split found in ``data`` (a dataset root) or
    next to ``split_dir``, as long as it is not ``split_dir`` itself (never measure on the pieces followed).
    ``followers`` (their names) are only named in the messages.
    """
    if score_speed is not None:
        return float(score_speed)
    who = ", ".join(followers) or "followers that need a notated tempo"
    split_dir = Path(split_dir)
    for root in dict.fromkeys(p for p in (data, split_dir.parent) if p is not None):
        try:
            train = find_split_dir(root, "train")
        except ValueError:
            continue
        if train.resolve() != split_dir.resolve():
            speed = median_speed_px_per_s(train)
            print(f"pieces without a score MIDI: {who} move at the train split's "
                  f"median speed, {speed:.1f} px/s ({train})")
            return speed
    raise ValueError(f"{split_dir}: some pieces have no score MIDI (score/<score>.mid), so {who} "
                     "need a stand-in tempo and no train split was found next to it to measure one; "
                     "pass --score-speed PX_PER_S")


def stand_in_tempo(followers: Iterable[tuple[str, str]], *, timing_missing: bool, score_speed: float | None,
                   split_dir: str | Path | None = None, data: str | Path | None = None,
                   score_name: str = "the score") -> dict[str, dict[str, float]]:
    """The constructor keywords that give a stand-in tempo to the followers that need one, by label.

    The commands' one handshake with :attr:`sfgym.followers.Follower.needs_notated_tempo`: a follower that
    moves by the notated timing gets ``{"px_per_second": speed}`` when some score it follows has none
    (``timing_missing``); every other follower gets nothing (it is absent from the result).

    Args:
        followers: ``(label, spec)`` of each follower, the spec as :func:`sfgym.followers.make_follower` takes it.
        timing_missing: whether some piece to follow has no notated timing (``Piece.score_notes is None``).
        score_speed: the speed given on the command line (``--score-speed``); it always wins.
        split_dir, data: where the followed pieces come from; without ``score_speed`` the speed is measured on
            a train split there (:func:`stand_in_speed`). Without ``split_dir`` (a lone score file) there is
            nothing to measure on and ``score_speed`` is required.
        score_name: names the score in the error message when ``split_dir`` is not given.

    Raises:
        ValueError: a speed is needed and there is neither ``score_speed`` nor a train split to measure it on.
    """
    needing = [label for label, spec in followers if needs_notated_tempo(spec)]
    if not needing or not timing_missing:
        return {}
    if split_dir is None and score_speed is None:
        raise ValueError(f"{score_name}: the score has no notated timing (no score MIDI), so {', '.join(needing)} "
                         "needs --score-speed PX_PER_S (or give a score file / a built piece)")
    speed = (float(score_speed) if split_dir is None
             else stand_in_speed(split_dir, data, score_speed, followers=needing))
    return {label: {"px_per_second": speed} for label in needing}


# ---------------------------------------------------------------------------- stand-in performance timing
def stand_in_notes(score_notes: np.ndarray | None, n_notes: int, n_frames: int, fps: int = FPS,
                   pitches: np.ndarray | None = None) -> np.ndarray:
    """Performance notes spread over ``n_frames``: first onset at 0 s, last onset in the last frame.

    The score's own notes (rescaled in time) if given; else ``n_notes`` evenly spaced notes with
    ``pitches`` (e.g. from a performance MIDI: pitches are written in the score, only the timing is off
    limits) or pitch 60. The environment's episode length depends on the timing, and score-side
    followers without notated timing read the pitches (:func:`notated_notes`).
    """
    if n_frames < 2:
        raise ValueError("the recording is too short to follow (fewer than 2 spectrogram frames)")
    end_s = (n_frames - 0.5) / fps  # floor(end_s * fps) == n_frames - 1
    if score_notes is not None and len(score_notes):
        notes = np.array(score_notes, dtype=np.float64)[:, :3]
        first, last = notes[:, 0].min(), notes[:, 0].max()
        span = last - first
        notes[:, 0] = (notes[:, 0] - first) * (end_s / span) if span > 0 else np.linspace(0, end_s, len(notes))
        if np.any(np.diff(notes[:, 0]) < 0):
            raise ValueError("score notes must be sorted by onset")
        return notes
    if pitches is not None and len(pitches) != n_notes:
        raise ValueError(f"{len(pitches)} pitches for {n_notes} notes")
    onsets = np.linspace(0.0, end_s, n_notes)
    pitch = np.full(n_notes, 60.0) if pitches is None else np.asarray(pitches, dtype=np.float64)
    return np.stack([onsets, pitch, np.full(n_notes, 0.25)], axis=1)


__all__ = ["STAND_IN_DURATION_S", "MissingScoreTiming", "ScoreMap", "median_speed_px_per_s", "notated_notes",
           "notated_truth", "stand_in_notes", "stand_in_speed", "stand_in_tempo"]
