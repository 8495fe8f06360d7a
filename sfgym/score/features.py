"""The score's side of the audio comparison: frame features that do not depend on the piano or the room, and
the features of the score itself, synthesized.

On-line time warping (:mod:`agents.baselines.online_dtw`), the tracker (:mod:`agents.tracking`) and the notated
regressors compare what they hear with what the score sounds like; this module is what they share.

The follower compares the performance with the score synthesized by *one* piano (TimGM6mb); the
performance may be played by another piano in a reverberant room. Comparing raw spectra then compares
timbres as much as notes. :class:`ChromaOnsetFeatures` keeps what the notes decide:

- **chroma**: the 78-bin log spectrum folded onto the 12 pitch classes (each band by the pitch of its
  centre frequency), unit-normalized per frame — loudness, spectral tilt and most of the instrument's
  harmonic balance drop out;
- **onset chroma**: the half-wave rectified difference of the log spectrum to the previous frame
  (energy that just *appeared*, which reverberation does not smear forward), folded the same way
  (Dixon 2005, Arzt 2016 use such spectral-difference features);
- a small constant so that silent frames resemble each other.

Every frame's feature depends only on that frame and the one before, so the same numbers come from a
whole spectrogram (:meth:`ChromaOnsetFeatures.__call__`) and from a live stream of columns
(:meth:`ChromaOnsetFeatures.stream`).

:func:`reference_features`: the features of the score's own notes, synthesized by one piano
(:func:`synthesized_spectrogram`), cached in memory per score.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sfgym.data.spectrogram import band_center_frequencies

SAMPLE_RATE = 22050
"""Of the score's synthesis (:func:`synthesized_spectrogram`)."""


@functools.lru_cache(maxsize=8)
def pitch_class_map(min_pitch: float = 0.0, max_pitch: float = 200.0) -> np.ndarray:
    """``(78, 12)`` weights folding the spectrogram's bands onto pitch classes (C = 0); read-only.

    A band centred at MIDI pitch ``p`` (fractional) goes to the pitch classes around ``p`` with a
    triangular weight one semitone wide; bands below ``min_pitch`` or above ``max_pitch`` are left out.
    """
    pitches = 69.0 + 12.0 * np.log2(band_center_frequencies() / 440.0)
    distance = (pitches[:, None] - np.arange(12)[None, :]) % 12.0
    distance = np.minimum(distance, 12.0 - distance)
    weights = np.maximum(0.0, 1.0 - distance)
    weights[(pitches < min_pitch) | (pitches > max_pitch)] = 0.0
    weights.flags.writeable = False
    return weights


@dataclass(frozen=True)
class ChromaOnsetFeatures:
    """Chroma + onset-chroma features of a 78-bin log spectrogram, unit length per frame.

    Args:
        onset_weight: weight of the onset chroma against the chroma.
        silence: the constant component (relative to a unit chroma).
        min_pitch, max_pitch: bands centred outside these MIDI pitches are left out of the chroma.
    """

    onset_weight: float = 10.0
    silence: float = 0.05
    min_pitch: float = 0.0
    max_pitch: float = 200.0

    @property
    def size(self) -> int:
        return 25

    def _map(self) -> np.ndarray:
        return pitch_class_map(self.min_pitch, self.max_pitch)

    def _combine(self, spectrum: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """Features of frames ``spectrum`` (T, 78) whose previous frames are ``previous`` (T, 78)."""
        folding = self._map()
        chroma = spectrum @ folding
        onsets = np.maximum(0.0, spectrum - previous) @ folding
        scale = np.linalg.norm(chroma, axis=1, keepdims=True) + 1e-9
        features = np.concatenate(
            [chroma / scale, self.onset_weight * onsets / scale, np.full((len(chroma), 1), self.silence)], axis=1)
        return features / np.linalg.norm(features, axis=1, keepdims=True)

    def __call__(self, spectrogram: np.ndarray) -> np.ndarray:
        """``(T, 25)`` features of a ``(78, T)`` spectrogram (frame 0's previous frame is itself)."""
        spectrum = np.asarray(spectrogram, dtype=np.float64).T
        previous = np.concatenate([spectrum[:1], spectrum[:-1]])
        return self._combine(spectrum, previous)

    def stream(self) -> FeatureStream:
        """A live feature extractor: push spectrogram columns one by one."""
        return FeatureStream(self)


class FeatureStream:
    """Features of spectrogram columns arriving one at a time (equal to the offline ones)."""

    def __init__(self, features: ChromaOnsetFeatures):
        self.features = features
        self._previous: np.ndarray | None = None

    def push(self, column: np.ndarray) -> np.ndarray:
        """The feature of the next frame, from its ``(78,)`` spectrum."""
        column = np.asarray(column, dtype=np.float64)
        previous = column if self._previous is None else self._previous
        self._previous = column
        return self.features._combine(column[None], previous[None])[0]


def newest_frame_features(features, observation: dict[str, np.ndarray]) -> np.ndarray:
    """``features`` (a callable on ``(78, T)`` spectrograms, e.g. :class:`ChromaOnsetFeatures`) of the newest frame
    of an environment observation: its onset part needs the frame before it, and no other."""
    spectrogram = np.asarray(observation["spectrogram"])[0]  # channel 0: the spectrogram itself
    return features(spectrogram[:, -2:])[-1]


# ---------------------------------------------------------------------------- the score, synthesized
def synthesized_spectrogram(score_notes: np.ndarray, soundfont: str = "TimGM6mb") -> np.ndarray:
    """The 78-bin spectrogram of ``score_notes`` synthesized with ``soundfont`` (the default reference)."""
    # imported on first use: the synthesizer and the MIDI writer cost start-up time that the features do not need
    from sfgym.data.msmd import notes_to_midi
    from sfgym.data.spectrogram import spectrogram_from_audio
    from sfgym.data.synth import synthesize_midi

    audio = synthesize_midi(notes_to_midi(score_notes), soundfont=soundfont, sample_rate=SAMPLE_RATE)
    return spectrogram_from_audio(audio, SAMPLE_RATE)


class _ReferenceCache:
    """Reference features per score, kept in memory (synthesis costs ~0.5 s per minute of music).

    Keyed by the score's notes (and the synthesis), so the performances of one score (``score@variant``)
    share one entry.
    """

    def __init__(self, max_entries: int = 64):
        self.max_entries = max_entries
        self._entries: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = compute()
        self._entries[key] = value
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value


_REFERENCE_CACHE = _ReferenceCache()


def reference_features(score_notes: np.ndarray, features: Callable[[np.ndarray], np.ndarray], features_key: str,
                       soundfont: str = "TimGM6mb") -> np.ndarray:
    """``features`` of the score's notes synthesized with ``soundfont`` (a frame per notated frame), cached in
    memory under the notes, the soundfont and ``features_key`` (which must name the features' settings)."""
    digest = hashlib.sha1(np.ascontiguousarray(score_notes, dtype=np.float64).tobytes()).hexdigest()
    return _REFERENCE_CACHE.get(f"{soundfont}:{features_key}:{digest}",
                                lambda: features(synthesized_spectrogram(score_notes, soundfont)))


__all__ = ["ChromaOnsetFeatures", "FeatureStream", "newest_frame_features", "pitch_class_map", "reference_features",
           "synthesized_spectrogram"]
