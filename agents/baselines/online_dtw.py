"""The classical audio-to-score follower: on-line time warping against a synthesized score.

Before the performance starts, the score's own notes at the notated tempo (``piece.score_notes``) are
synthesized (:func:`sfgym.data.synth.synthesize_midi`) and turned into the same 78-bin spectrogram the
performance has (:func:`sfgym.data.spectrogram.spectrogram_from_audio`). During the performance, each
new spectrogram frame is aligned on line to that reference with on-line time warping
(:mod:`agents.baselines.oltw`; Arzt's windowed form by default) on features that do not depend on the
piano or the room (:mod:`sfgym.score.features`: chroma and onset chroma); the aligned reference
frame is a notated time, which the noteheads map to a sheet x (:class:`~sfgym.score.timing.ScoreMap`).

This is the non-learned anchor that learned followers must beat. It uses the score side only.

Why not ``pymatchmaker`` (CPJKU's real-time alignment package, which has this algorithm as
``OnlineTimeWarpingDixonFrame`` and ``OnlineTimeWarpingArzt``): its release 0.3.0 requires ``numpy<2`` and would downgrade the
project's numpy 2.x (and pandas) under torch, and its frame loop evaluates one matrix cell at a time
through ``scipy.spatial.distance.cdist`` in Python; the ~150 lines of :mod:`~agents.baselines.oltw`
do the same vectorized (the Arzt loop follows pymatchmaker's ``oltw_arzt_loop``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from agents.baselines.oltw import ArztTimeWarping, OnlineTimeWarping, unit_features
from sfgym.data.piece import Piece
from sfgym.followers import Follower
from sfgym.score.features import ChromaOnsetFeatures, newest_frame_features, reference_features
from sfgym.score.timing import ScoreMap, notated_notes

LOOK_AHEAD = 2
"""Frames between the newest observed spectrogram frame and the frame the action is applied to."""

ReferenceSpectrogram = Callable[[np.ndarray], np.ndarray]
"""``(score notes (M, 3)) -> (78, N)`` spectrogram of the score at ``piece.fps``."""


class OnlineDTWFollower(Follower):
    """On-line time warping of the incoming spectrogram against the synthesized score.

    Per frame it takes the newest spectrogram column of the observation (``spectrogram[0, :, -1]``, the
    frame just before the current one; the column before it gives the onset feature), advances the
    alignment, and asks the ``position`` action for the x of the frame after the current one,
    extrapolated with the tempo ratio of the last ``tempo_frames`` aligned frames.

    The defaults follow a piano the score synthesis does not use, in a reverberant room: chroma and
    onset-chroma features (:class:`~sfgym.score.features.ChromaOnsetFeatures`) aligned with
    Arzt's windowed on-line time warping (:class:`~agents.baselines.oltw.ArztTimeWarping`).
    ``features="spectrum", method="dixon", onset_weight=1, max_step=3`` is the earlier follower
    (Dixon's algorithm on the raw spectrum), which needs the score's own piano.

    Args:
        window: search reach in frames (100 = 5 s).
        max_step: bound on the local tempo ratio: the most reference frames per input frame (Arzt), or the
            most consecutive one-sided steps (Dixon: tempo ratios 1/max_step..max_step); 2 allows up to twice the
            notated tempo.
        soundfont: soundfont of the score synthesis.
        px_per_second: stand-in speed for pieces without notated timing (see
            :func:`~sfgym.score.timing.notated_notes`).
        reference_spectrogram: replaces the synthesis (tests use a toy renderer).
        onset_weight: weight of the onset (spectral difference) part of the features.
        tempo_frames: frames over which the local tempo ratio is measured for the one-frame look-ahead.
        features: ``"chroma"`` (timbre-independent) or ``"spectrum"`` (the raw 78-bin spectrum).
        method: ``"arzt"`` or ``"dixon"`` (:class:`~agents.baselines.oltw.OnlineTimeWarping`).
    """

    name = "online_dtw"
    action_type = "position"
    stochastic = False
    needs_notated_tempo = True

    def __init__(self, window: int = 100, max_step: int = 2, soundfont: str = "TimGM6mb",
                 px_per_second: float | None = None, reference_spectrogram: ReferenceSpectrogram | None = None,
                 onset_weight: float = 10.0, tempo_frames: int = 20, features: str = "chroma",
                 method: str = "arzt"):
        if features not in ("chroma", "spectrum") or method not in ("arzt", "dixon"):
            raise ValueError(f"online_dtw: features must be 'chroma' or 'spectrum' and method 'arzt' or 'dixon', "
                             f"got {features!r}, {method!r}")
        self.window = window
        self.max_step = max_step
        self.soundfont = soundfont
        self.px_per_second = px_per_second
        self.reference_spectrogram = reference_spectrogram
        self.onset_weight = onset_weight
        self.tempo_frames = tempo_frames
        self.features = features
        self.method = method
        self._chroma = ChromaOnsetFeatures(onset_weight=onset_weight)

    def _features(self, spectrogram: np.ndarray) -> np.ndarray:
        if self.features == "spectrum":
            return unit_features(spectrogram, onset_weight=self.onset_weight)
        return self._chroma(spectrogram)

    # ------------------------------------------------------------------ per piece
    def _reference_features(self, score_notes: np.ndarray) -> np.ndarray:
        if self.reference_spectrogram is not None:  # a custom renderer (tests): cheap, not cached
            return self._features(self.reference_spectrogram(score_notes))
        features_key = f"spectrum:{self.onset_weight}" if self.features == "spectrum" else repr(self._chroma)
        return reference_features(score_notes, self._features, features_key, self.soundfont)

    def reset(self, piece: Piece, seed: int | None = None) -> None:
        score_notes = notated_notes(piece, self.px_per_second)
        self._map = ScoreMap.of(piece, score_notes)
        self._fps = float(piece.fps)
        self._width = float(piece.sheet_width)
        reference = self._reference_features(score_notes)
        self._dtw = (ArztTimeWarping(reference, window=self.window, max_step=self.max_step) if self.method == "arzt"
                     else OnlineTimeWarping(reference, window=self.window, max_run_count=self.max_step))
        self._path: list[int] = []

    # ------------------------------------------------------------------ per frame
    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        # The newest column of the observation is the frame *before* the current one (the environment
        # shows frames frame-40 .. frame-1), and the returned position applies to the frame after the
        # current one: the alignment of the newest heard frame is extrapolated LOOK_AHEAD frames.
        feature = newest_frame_features(self._features, observation)
        if not self._path:  # the episode starts at the first onset: anchor the path just before it
            start = int(round(self._map.first_onset_time * self._fps)) - 1
            position = self._dtw.start(max(start, 0), feature)
        else:
            position = self._dtw.step(feature)
        self._path.append(position)
        look_back = min(self.tempo_frames, len(self._path) - 1)
        tempo = (self._path[-1] - self._path[-1 - look_back]) / look_back if look_back else 1.0
        next_reference_frame = position + LOOK_AHEAD * float(np.clip(tempo, 0.0, self.max_step))
        x = float(self._map.x_at(next_reference_frame / self._fps))
        return np.array([x / self._width])


class SpectrumDTWFollower(OnlineDTWFollower):
    """The earlier ``online_dtw``: Dixon's on-line time warping on the raw spectrum (and its onsets).

    Near-perfect when score and performance are synthesized by the same piano; kept for comparison.
    """

    name = "online_dtw_spectrum"

    def __init__(self, **kwargs):
        super().__init__(**({"features": "spectrum", "method": "dixon", "onset_weight": 1.0, "max_step": 3} | kwargs))


__all__ = ["OnlineDTWFollower", "SpectrumDTWFollower"]
