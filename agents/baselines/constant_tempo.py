"""The metronome baseline: move through the score at its notated tempo, deaf to the performance."""

from __future__ import annotations

from typing import Any

import numpy as np

from sfgym.data.piece import Piece
from sfgym.followers import Follower
from sfgym.score.timing import ScoreMap, notated_notes


class ConstantTempoFollower(Follower):
    """Follows the score at the notated tempo from the first onset on, ignoring the audio.

    At frame ``f`` it is at the notated time ``t0 + (f - f0) / fps``, where ``f0`` is the frame of
    the episode's start (the first onset) and ``t0`` the notated time of the first onset, mapped to
    x through the noteheads (:class:`~sfgym.score.timing.ScoreMap`). This is what a
    metronome set to the score's tempo would do: it is exact for a performance played strictly in
    time and drifts with every tempo change.

    Args:
        px_per_second: only used for pieces without notated timing (no score MIDI, as in real MSMD):
            the speed of the stand-in score (see :func:`~sfgym.score.timing.notated_notes`),
            e.g. the training set's median. Without it such pieces raise ``MissingScoreTiming``.
    """

    name = "constant_tempo"
    action_type = "position"
    stochastic = False
    needs_notated_tempo = True

    def __init__(self, px_per_second: float | None = None):
        self.px_per_second = px_per_second

    def reset(self, piece: Piece, seed: int | None = None) -> None:
        self._map = ScoreMap.of(piece, notated_notes(piece, self.px_per_second))
        self._fps = float(piece.fps)
        self._width = float(piece.sheet_width)
        self._start_frame: int | None = None

    def position_at(self, frame: int) -> float:
        """Sheet x of the metronome at performance frame ``frame``."""
        elapsed_s = (frame - self._start_frame) / self._fps
        return float(self._map.x_at(self._map.first_onset_time + elapsed_s))

    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        frame = int(info["frame"])
        if self._start_frame is None:
            self._start_frame = frame
        # float64: the environment uses Box actions at the precision given
        return np.array([self.position_at(frame + 1) / self._width])
