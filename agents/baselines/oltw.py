"""On-line time warping (Dixon 2005), compact and vectorized.

Dixon, S. (2005). "Live tracking of musical performances using on-line time warping." DAFx.

The algorithm aligns a live input sequence (the performance, one feature vector per frame, arriving
one at a time) to a reference sequence known in advance (the score, synthesized), in linear time:
the accumulated-cost matrix is only evaluated in a band of ``window`` cells behind the current
end of the path. After each cell row/column, the path end is moved by comparing the
length-normalized accumulated cost on the frontier (the newest row and the newest column): if the
best cell lies on the newest *row* but at an older input frame, the input is ahead and the reference
is advanced; if it lies on the newest *column* at an older reference frame, the reference is ahead
and only the input advances; if it is the corner, both advance. ``max_run_count`` bounds runs of
the same direction (i.e. the local tempo ratio to [1/max_run_count, max_run_count]).

Only the ``window × window`` block of the cost matrix ending at the path end is kept; a new column
(or row) is computed at once with the cumulative-minimum form of the DTW recursion::

    D[r] = min(X[r], D[r-1] + d[r])   with   X[r] = d[r] + min(D_prev[r], D_prev[r-1] + d[r])
    =>  D = C + cummin(X - C),  C = cumsum(d)

(the diagonal step weighs the local distance twice, so all paths between two cells have the same
total weight and costs normalized by path length are comparable).

This is written here rather than taken from ``pymatchmaker`` because its current release pins
``numpy<2`` (which would downgrade this project's numpy 2 / torch / pandas stack) and evaluates one
cell at a time in Python; see the report in ``agents/baselines/online_dtw.py``.
"""

from __future__ import annotations

from enum import Enum

import numpy as np


class Direction(Enum):
    REFERENCE = "reference"  # advance the reference only (the input is ahead)
    INPUT = "input"  # advance the input only (the reference is ahead)
    BOTH = "both"


def _accumulate(from_previous: np.ndarray, local: np.ndarray) -> np.ndarray:
    """``D[r] = min(from_previous[r], D[r-1] + local[r])`` for all ``r`` at once: a cumulative minimum."""
    cumulative = np.cumsum(local)
    with np.errstate(invalid="ignore"):  # inf - finite is fine; inf - inf cannot happen (local is finite)
        return cumulative + np.minimum.accumulate(from_previous - cumulative)


def _extend(previous: np.ndarray, local: np.ndarray, diagonal_weight: float = 2.0,
            before: float = np.inf) -> np.ndarray:
    """A new column (or row) of accumulated costs from the previous one and the local distances.

    Steps into a cell: from ``previous[r]`` (cost ``d``), from ``previous[r-1]`` (diagonal,
    ``diagonal_weight * d``; ``before`` stands for ``previous[-1]``) and from the new line's own ``r-1``
    (cost ``d``).
    """
    diagonal = np.concatenate([[before], previous[:-1]])
    return _accumulate(np.minimum(previous + local, diagonal + diagonal_weight * local), local)


def _checked_reference(reference: np.ndarray) -> np.ndarray:
    reference = np.asarray(reference, dtype=np.float64)
    if reference.ndim != 2 or len(reference) == 0:
        raise ValueError(f"reference features must be a non-empty (N, F) array, got shape {reference.shape}")
    return reference


class OnlineTimeWarping:
    """Dixon's on-line time warping of a live input against a fixed reference.

    Args:
        reference: ``(N, F)`` reference feature vectors, unit-normalized (the distance is
            ``1 - cosine similarity``).
        window: the band width ``c`` in frames (the search reaches this far back).
        max_run_count: the most consecutive advances in one direction.
    """

    def __init__(self, reference: np.ndarray, window: int = 100, max_run_count: int = 3):
        if window < 2 or max_run_count < 1:
            raise ValueError(f"need window >= 2 and max_run_count >= 1, got {window}, {max_run_count}")
        self.reference = _checked_reference(reference)
        self.window = int(window)
        self.max_run_count = int(max_run_count)
        self._started = False

    # ------------------------------------------------------------------ public API
    def start(self, reference_index: int, feature: np.ndarray) -> int:
        """Anchor the path: the first input frame ``feature`` is at ``reference_index``."""
        c = self.window
        self.anchor = int(np.clip(reference_index, 0, len(self.reference) - 1))
        self.ref_end = self.anchor  # reference index of the newest row
        self.input_end = 0  # input index of the newest column
        self.cost = np.full((c, c), np.inf)  # cost[r, k]: ref ref_end-c+1+r, input input_end-c+1+k
        # Input features, newest last; a buffer of 4 windows, compacted when full (no shift per frame).
        self._inputs = np.zeros((4 * c, self.reference.shape[1]))
        self._inputs[0] = feature
        self._n_inputs = 1
        self._offsets = np.arange(c)
        self.cost[-1, -1] = max(0.0, 1.0 - float(self.reference[self.anchor] @ feature))
        self.ref_run = self.input_run = 0
        self.position = self.anchor
        self._started = True
        return self.position

    def step(self, feature: np.ndarray) -> int:
        """Take the next input frame; return the reference index it is aligned to."""
        if not self._started:
            raise RuntimeError("call start() before step()")
        direction = self._direction()
        while direction is Direction.REFERENCE:  # catch up with the input first
            self._advance_reference()
            self.ref_run, self.input_run = self.ref_run + 1, 0
            direction = self._direction()
        self._advance_input(feature)
        if direction is Direction.BOTH and self._can_advance_reference():
            self._advance_reference()
            self.ref_run = self.input_run = 0
        else:
            self.input_run, self.ref_run = self.input_run + 1, 0
        # the current input frame's best reference frame: the cheapest cell of the newest column
        column = self.cost[:, -1] / self._path_lengths_of_column()
        self.position = self.ref_end - (self.window - 1) + int(np.argmin(column))
        return self.position

    # ------------------------------------------------------------------ internals
    def _can_advance_reference(self) -> bool:
        return self.ref_end < len(self.reference) - 1

    def _path_lengths_of_column(self) -> np.ndarray:
        refs = self.ref_end - (self.window - 1) + self._offsets
        return np.maximum(1.0, 1.0 + (refs - self.anchor) + self.input_end)  # >= 1 also outside the path

    def _path_lengths_of_row(self) -> np.ndarray:
        inputs = self.input_end - (self.window - 1) + self._offsets
        return np.maximum(1.0, 1.0 + (self.ref_end - self.anchor) + inputs)

    def _direction(self) -> Direction:
        if not self._can_advance_reference():
            return Direction.INPUT
        if self.ref_run >= self.max_run_count:
            return Direction.INPUT
        if self.input_run >= self.max_run_count:
            return Direction.REFERENCE
        column = self.cost[:, -1] / self._path_lengths_of_column()
        row = self.cost[-1, :] / self._path_lengths_of_row()
        best_in_column, best_in_row = int(np.argmin(column)), int(np.argmin(row))
        corner = self.window - 1
        if column[best_in_column] < row[best_in_row]:
            return Direction.BOTH if best_in_column == corner else Direction.INPUT
        return Direction.BOTH if best_in_row == corner else Direction.REFERENCE

    def _recent_inputs(self) -> np.ndarray:
        """The inputs of the window's columns that exist (up to ``window``), oldest first."""
        return self._inputs[max(0, self._n_inputs - self.window) : self._n_inputs]

    def _advance_input(self, feature: np.ndarray) -> None:
        if self._n_inputs == len(self._inputs):  # compact: keep the last window - 1 inputs
            keep = self.window - 1
            self._inputs[:keep] = self._inputs[self._n_inputs - keep : self._n_inputs]
            self._n_inputs = keep
        self._inputs[self._n_inputs] = feature
        self._n_inputs += 1
        self.input_end += 1
        self.cost[:, :-1] = self.cost[:, 1:]
        # rows of the window that exist: reference frames from the anchor on
        first = max(self.anchor, self.ref_end - self.window + 1)
        n_valid = self.ref_end + 1 - first
        local = np.zeros(self.window)
        local[-n_valid:] = np.maximum(0.0, 1.0 - self.reference[first : self.ref_end + 1] @ feature)
        new_column = _extend(self.cost[:, -2], local)
        new_column[: self.window - n_valid] = np.inf
        self.cost[:, -1] = new_column

    def _advance_reference(self) -> None:
        self.ref_end += 1
        self.cost[:-1] = self.cost[1:]
        inputs = self._recent_inputs()
        local = np.zeros(self.window)
        local[-len(inputs):] = np.maximum(0.0, 1.0 - inputs @ self.reference[self.ref_end])
        new_row = _extend(self.cost[-2], local)
        new_row[: self.window - len(inputs)] = np.inf
        self.cost[-1] = new_row


class ArztTimeWarping:
    """Arzt's on-line time warping: one input frame at a time, a window of the reference around the position.

    Arzt, A. (2016). *Flexible and robust music tracking.* PhD thesis, JKU Linz (as in pymatchmaker's
    ``OnlineTimeWarpingArzt``). Each input frame adds one column of accumulated costs over the
    reference frames within ``window`` of the current position (steps: reference only, input only,
    diagonal; each weighs the local distance once, costs normalized by the path length ``i + j``);
    the new position is the cheapest cell of that column, but never behind the current position and
    at most ``max_step`` reference frames ahead of it (the step / tempo constraint). A follower that
    fell behind is pulled forward as soon as the music ahead matches better, ``max_step`` frames per
    frame at most, which is the recovery when lost.

    Args:
        reference: ``(N, F)`` unit-length reference features (distance ``1 - cosine``).
        window: reference frames searched on either side of the position.
        max_step: the most reference frames the position may advance per input frame.
    """

    def __init__(self, reference: np.ndarray, window: int = 100, max_step: int = 3):
        if window < 1 or max_step < 1:
            raise ValueError(f"need window >= 1 and max_step >= 1, got {window}, {max_step}")
        self.reference = _checked_reference(reference)
        self.window = int(window)
        self.max_step = int(max_step)
        self._started = False

    def start(self, reference_index: int, feature: np.ndarray) -> int:
        """Anchor the path: the first input frame ``feature`` is at ``reference_index``."""
        self.anchor = self.position = int(np.clip(reference_index, 0, len(self.reference) - 1))
        self.n_inputs = 0
        self._costs = np.full(len(self.reference), np.inf)  # accumulated cost of the newest column
        self._span = (self.position, self.position + 1)  # where _costs is finite
        self._started = True
        self._column(feature, first=True)
        return self.position

    def step(self, feature: np.ndarray) -> int:
        """Take the next input frame; return the reference index it is aligned to."""
        if not self._started:
            raise RuntimeError("call start() before step()")
        self._column(feature, first=False)
        return self.position

    def _column(self, feature: np.ndarray, first: bool) -> None:
        low = max(self.anchor, self.position - self.window)
        high = min(len(self.reference), self.position + self.window + 1)
        local = np.maximum(0.0, 1.0 - self.reference[low:high] @ feature)
        if first:
            from_previous = np.full(high - low, np.inf)
            from_previous[self.position - low] = local[self.position - low]
            column = _accumulate(from_previous, local)
        else:  # each step weighs the local distance once, as in pymatchmaker's oltw_arzt_loop
            before = self._costs[low - 1] if low > self.anchor else np.inf
            column = _extend(self._costs[low:high], local, diagonal_weight=1.0, before=before)
        self._costs[self._span[0] : self._span[1]] = np.inf
        self._costs[low:high] = column
        self._span = (low, high)
        self.n_inputs += 1
        lengths = self.n_inputs + np.arange(low, high) - self.anchor + 1.0
        best = low + int(np.argmin(column / lengths))
        self.position = int(np.clip(best, self.position, self.position + self.max_step))


def unit_features(spectrogram: np.ndarray, onset_weight: float = 1.0, silence: float = 0.02) -> np.ndarray:
    """Per-frame DTW features of a ``(bins, T)`` log spectrogram: ``(T, 2 * bins + 1)``, unit length.

    Each frame is its spectrum, its half-wave rectified difference to the previous frame (note
    onsets, as Dixon uses) weighted by ``onset_weight``, and a small constant ``silence`` term so
    that silent frames resemble each other rather than nothing.
    """
    spectrogram = np.asarray(spectrogram, dtype=np.float64)
    previous = np.concatenate([spectrogram[:, :1], spectrogram[:, :-1]], axis=1)
    onsets = np.maximum(0.0, spectrogram - previous) * onset_weight
    features = np.concatenate([spectrogram, onsets, np.full((1, spectrogram.shape[1]), silence)], axis=0).T
    return features / np.linalg.norm(features, axis=1, keepdims=True)


__all__ = ["ArztTimeWarping", "Direction", "OnlineTimeWarping", "unit_features"]
