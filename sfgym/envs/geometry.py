"""What ``MSMDFollow-v0`` shows a follower, as numbers and functions that learning code can share.

The environment observes the ``spec_window`` spectrogram frames before the current one and a score
window of ``score_window`` native sheet pixels (rows, columns) centred on the follower's x, cut from a
strip prepared once per sheet (:func:`prepare_score_strip`) and downscaled by ``score_factor``. Code that
precomputes observations (supervised training batches, frozen-trunk feature tables, incremental
followers) takes the same :class:`ObservationGeometry`, so it cannot drift from the environment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPEC_WINDOW = 40
"""Spectrogram frames observed (2 s at 20 fps), the environment's default ``spec_window``."""

SCORE_WINDOW = (160, 512)
"""Sheet rows and columns observed, native px, the environment's default ``score_window``."""

SCORE_FACTOR = 0.5
"""Downscaling of the score observation (to 80 × 256), the environment's default ``score_factor``."""

LOSS_THRESHOLD_PX = 170.0
"""Distance from the truth beyond which the target is lost (512 // 3, the reference value): the
environment's default ``reward_threshold`` and the tracking metrics' threshold."""

NEVER_LOST_PX = 1e12
"""The ``reward_threshold`` of an environment over a recording without a ground truth (its performance timing
a stand-in): no distance from the stand-in truth means anything, so the episode never ends early."""


def prepare_score_strip(
    sheet: np.ndarray, score_window: tuple[int, int] = SCORE_WINDOW, score_factor: float = SCORE_FACTOR
) -> np.ndarray:
    """The strip that score observations are sliced from, computed once per sheet.

    Rows cropped to the window's height around the sheet's centre (rows 20..180 by default), inverted
    (ink = 255), padded with ``score_window[1]`` white columns on both sides (the reference's padding),
    downscaled by ``score_factor``; uint8 of shape ``(rows * factor, (W + 2 * columns) * factor)``. The
    window centred on unpadded column ``x`` starts at strip column ``floor((x + columns / 2) * factor)``.
    Learning code that precomputes training windows uses this too, so they cannot drift from the env.
    """
    import cv2

    rows, columns = score_window
    first_row = (sheet.shape[0] - rows) // 2
    ink = 255 - sheet[first_row : first_row + rows]
    padded = np.pad(ink, ((0, 0), (columns, columns)))  # 0 = white paper once inverted
    out_rows, out_width = round(rows * score_factor), round(padded.shape[1] * score_factor)
    score = cv2.resize(padded, (out_width, out_rows), interpolation=cv2.INTER_AREA)
    return score.reshape(out_rows, out_width)


def score_observation_values(strip: np.ndarray) -> np.ndarray:
    """float32 ``strip / 255`` exactly as score observations are scaled (``strip`` from
    :func:`prepare_score_strip`): followers that precompute the score side compare observations with
    slices of this bit for bit."""
    values = strip.astype(np.float32)
    values *= np.float32(1.0 / 255.0)  # in place: one array per observation, not two
    return values


@dataclass(frozen=True)
class ObservationGeometry:
    """The sizes of the observation and where its windows lie; the defaults are the environment's.

    Positions ``x`` are native, unpadded sheet columns and frames unpadded spectrogram frames, as
    everywhere in :class:`~sfgym.envs.MSMDFollowEnv`; window starts are columns of the downscaled,
    padded strip of :meth:`strip`.
    """

    spec_window: int = SPEC_WINDOW
    score_window: tuple[int, int] = SCORE_WINDOW
    score_factor: float = SCORE_FACTOR
    # Derived sizes, computed once (a step of the environment reads them).
    padding: int = field(init=False, repr=False, compare=False)
    """White native columns padded on each side of the sheet (the window's width, as the reference)."""
    out_rows: int = field(init=False, repr=False, compare=False)
    """Rows of a score observation (80 by default)."""
    out_columns: int = field(init=False, repr=False, compare=False)
    """Columns of a score observation (256 by default)."""
    window_offset: int = field(init=False, repr=False, compare=False)
    """The window centred on ``x`` starts at padded native column ``x + window_offset``."""

    def __post_init__(self) -> None:
        rows, columns = self.score_window
        derived = {"padding": columns, "out_rows": round(rows * self.score_factor),
                   "out_columns": round(columns * self.score_factor), "window_offset": columns - columns // 2}
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @classmethod
    def of(cls, env_kwargs: Mapping[str, Any]) -> ObservationGeometry:
        """The geometry of an environment made with ``env_kwargs`` (its other arguments are ignored)."""
        rows, columns = env_kwargs.get("score_window", SCORE_WINDOW)
        return cls(spec_window=int(env_kwargs.get("spec_window", SPEC_WINDOW)),
                   score_window=(int(rows), int(columns)),
                   score_factor=float(env_kwargs.get("score_factor", SCORE_FACTOR)))

    def strip(self, sheet: np.ndarray) -> np.ndarray:
        """The sheet's uint8 strip that score windows are sliced from (:func:`prepare_score_strip`)."""
        return prepare_score_strip(sheet, self.score_window, self.score_factor)

    def window_start(self, x: float, strip_columns: int | None = None) -> int:
        """The strip column where the score window centred on ``x`` starts: the reference's crop rounded
        down to the downscaled grid; kept within a strip of ``strip_columns`` columns if given."""
        start = math.floor((x + self.window_offset) * self.score_factor)
        if strip_columns is not None:
            start = min(max(start, 0), strip_columns - self.out_columns)
        return start

    def centre_columns(self, x: np.ndarray) -> np.ndarray:
        """int64 strip columns at the centre of the score windows centred on each native ``x``
        (:meth:`window_start` + half a window, unclipped): the column a follower at ``x`` looks at."""
        starts = np.floor((np.asarray(x, dtype=np.float64) + self.window_offset) * self.score_factor)
        return starts.astype(np.int64) + self.out_columns // 2

    def x_range(self, sheet_width: int) -> tuple[float, float]:
        """The follower's x is clipped to this range, which keeps its window on the padded sheet."""
        half = self.score_window[1] // 2
        return float(half - self.padding), float(sheet_width + self.padding - half - 1)

    def spectrogram_window(self, spectrogram: np.ndarray, frame: int) -> np.ndarray:
        """float32 ``(1, bins, spec_window)``: frames ``frame - spec_window .. frame - 1`` of
        ``spectrogram`` ``(bins, T)``, zeros before frame 0 (the reference's padding)."""
        first = frame - self.spec_window
        if first >= 0:
            return spectrogram[np.newaxis, :, first:frame].copy()
        window = np.zeros((1, spectrogram.shape[0], self.spec_window), dtype=np.float32)
        window[0, :, -first:] = spectrogram[:, :frame]
        return window


DEFAULT_GEOMETRY = ObservationGeometry()
"""The environment's default observation geometry."""

__all__ = ["DEFAULT_GEOMETRY", "LOSS_THRESHOLD_PX", "NEVER_LOST_PX", "ObservationGeometry", "SCORE_FACTOR",
           "SCORE_WINDOW", "SPEC_WINDOW", "prepare_score_strip", "score_observation_values"]
