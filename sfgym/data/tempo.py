"""A stand-in for the notated tempo: the typical speed through the sheet, measured on a training split.

Followers that move by the score's notated timing (:attr:`sfgym.followers.Follower.needs_notated_tempo`:
a metronome, on-line DTW against a synthesized score) read it from ``score/<score>.mid``. Real MSMD
splits ship no score MIDI; on their pieces such a follower moves at a stand-in speed in sheet px per
second instead, by default the median speed of the training split (:func:`stand_in_speed`), which is
the one piece of outside knowledge a metronome without a tempo marking needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sfgym.data.piece import FPS, merge_onsets, note_onset_frames


def _speed_px_per_s(onset_times: np.ndarray, onset_x: np.ndarray) -> float | None:
    duration = float(onset_times[-1] - onset_times[0])
    return float(onset_x[-1] - onset_x[0]) / duration if duration > 0 and len(onset_x) > 1 else None


def median_speed_px_per_s(split_dir: str | Path) -> float:
    """The median speed (sheet px per second) of the pieces of a (training) split.

    Uses the notated timing where a score MIDI exists and the performance otherwise (learning a
    typical speed from *training* performances is fair). Reads only the score files and MIDI, not
    the audio, so it is quick even on a split without cached spectrograms.
    """
    from sfgym.data.msmd import list_pieces, read_midi_notes, read_score_npz

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
    from sfgym.data.msmd import find_split_dir

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


__all__ = ["median_speed_px_per_s", "stand_in_speed"]
