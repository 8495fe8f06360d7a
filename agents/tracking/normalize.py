"""Hear another piano, or the same one louder or darker, as the trunk heard its training data: a causal
level and spectral-tilt normalization of the spectrogram.

A matching trunk learns from sfgym's builds, where one soundfont plays at one level. A recording comes at
any level and through any piano and room: MuseScore General's grand in a room (the unseen-piano variant)
arrives 17 dB quieter than TimGM6mb and about 27 dB darker from the lowest band to the highest. On the
``log10(1 + magnitude)`` spectrogram that is not a shift the trunk could ignore, and it lost almost every
piece. This normalizer undoes both, using only what has been heard so far:

- the **tilt**: an exponential moving average of the log-magnitude profile over the bands of the loud frames
  heard (those above a tenth of the loudest so far, each at the reference level), whose least-squares slope
  is turned into :data:`REFERENCE_TILT` by a gain that is linear in log magnitude across the bands;
- the **level**: an exponential moving average of the summed magnitude of those frames with that tilt
  corrected, scaled to :data:`REFERENCE_LEVEL`.

Both references were measured on the default dataset's train split (TimGM6mb, the builder's level): there
the normalizer changes little. Silence before the first loud frame passes through unchanged.
"""

from __future__ import annotations

import math

import numpy as np

REFERENCE_LEVEL = 40.0
"""Median summed magnitude (78 bands, ``10 ** s - 1``) of the loud frames of default-v1's train split."""

REFERENCE_TILT = -0.04
"""Mean least-squares slope (natural log of magnitude per band) of the loud frames' profile of default-v1's
train split: about 27 dB less from the lowest band to the highest."""

LOUD_SHARE = 0.1
"""A frame counts for the estimates when its summed magnitude exceeds this share of the loudest so far."""

FLOOR = 1e-3
"""Added to the magnitudes before the log of the tilt's profile: bands far below the music do not count."""

_LN10 = math.log(10.0)


class SpectrumNormalizer:
    """Causal level and tilt normalization of ``log10(1 + magnitude)`` spectrogram frames (module docstring).

    Args:
        smoothing: weight of the newest loud frame in the moving averages (0.05: about a second at 20 fps).
        reference_level, reference_tilt: what the level and the tilt are brought to.

    Per performed frame, :meth:`hear` the newest frame; :meth:`normalize` then maps any frames (the ones
    the follower reads) with the estimates so far.
    """

    def __init__(self, smoothing: float = 0.05, reference_level: float = REFERENCE_LEVEL,
                 reference_tilt: float = REFERENCE_TILT):
        if not 0 < smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        if not reference_level > 0:
            raise ValueError(f"reference_level must be positive, got {reference_level}")
        self.smoothing = float(smoothing)
        self.reference_level = float(reference_level)
        self.reference_tilt = float(reference_tilt)
        self.reset()

    def reset(self) -> None:
        """Forget what was heard (a new performance)."""
        self.level: float | None = None
        self.profile: np.ndarray | None = None
        self.loudest = 0.0
        self._gain: np.ndarray | None = None

    def hear(self, frame: np.ndarray) -> None:
        """Update the estimates with the newest frame, ``(bands,)`` of ``log10(1 + magnitude)``."""
        magnitude = np.expm1(np.asarray(frame, dtype=np.float64) * _LN10)
        total = float(magnitude.sum())
        self.loudest = max(self.loudest, total)
        if not (total > LOUD_SHARE * self.loudest and total > 1e-3):
            return
        rate = self.smoothing
        # the tilt first, from the frame's shape (its own level taken out), then the level of the frame
        # with the tilt corrected: a darker piano is not also heard as a louder one through its bass
        profile = np.log(magnitude * (self.reference_level / total) + FLOOR)
        self.profile = profile if self.profile is None else self.profile + rate * (profile - self.profile)
        bands = np.arange(len(profile)) - (len(profile) - 1) / 2.0
        tilt = float(bands @ (self.profile - self.profile.mean()) / (bands @ bands))
        tilt_gain = np.exp((self.reference_tilt - tilt) * bands)
        level = float(magnitude @ tilt_gain)
        self.level = level if self.level is None else self.level + rate * (level - self.level)
        self._gain = (self.reference_level / self.level) * tilt_gain

    def normalize(self, frames: np.ndarray) -> np.ndarray:
        """float32 ``frames`` (``(bands, T)`` of ``log10(1 + magnitude)``) at the reference level and tilt."""
        frames = np.asarray(frames)
        if self._gain is None:
            return frames.astype(np.float32, copy=False)
        magnitude = np.expm1(frames.astype(np.float64) * _LN10) * self._gain[:, None]
        return (np.log1p(magnitude) / _LN10).astype(np.float32)


__all__ = ["REFERENCE_LEVEL", "REFERENCE_TILT", "SpectrumNormalizer"]
