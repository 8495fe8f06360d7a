"""The in-memory score-following piece that everything downstream uses.

A :class:`Piece` is one *performance* of one *score*, in the MSMD score-following layout
(see docs/data.md and section 1 of the reference notes):

- ``sheet``: the unrolled sheet, uint8 ``(200, W)``, all staff systems cut ±100 px around their
  vertical centre and concatenated left to right (white = 255).
- ``coords``: float32 ``(N, 2)``, (row, col) of every notehead centre in ``sheet``.
- ``coord2onset``: ``{coord index: note index}``, the note index pointing into ``notes``.
- ``notes``: float64 ``(M, 3)`` rows of (onset seconds, MIDI pitch, duration seconds) of the
  performance, sorted by onset then pitch (the order of the MIDI's note list in MSMD).
- ``spectrogram``: float32 ``(78, T)`` log-frequency spectrogram at 20 frames per second.
- ``score_notes`` (optional): the same notes at the score's *notated* tempo (``<split>/score/<score>.mid``),
  put in the order of ``notes`` (:func:`pair_score_notes`), so ``coord2onset`` applies to them too. Score-side followers (a metronome, on-line
  DTW against a synthesized score) use it; it is never the performance's timing.

Derived on construction, exactly as the reference code of Dorfer et al. does it:

- ``onset_frames`` / ``onset_coords``: note onsets (s × fps, floored) merged per frame — several noteheads
  (a chord) share one onset; walking the coords in key order, the first coordinate of each unique onset
  frame is kept.
- ``true_x``: the ground-truth score x for every spectrogram frame: linear interpolation of the notehead
  x between consecutive merged onsets, held constant before the first and after the last.

A piece with ``score_notes`` whose performance plays notes out of score order or spreads a chord (real
performances: grace notes before the beat, rolled chords, ornaments, alignment noise) takes its onsets for the
ground truth from :func:`reconcile_onsets` (one time per score chord, monotone in score order), so ``true_x``
never steps backwards; ``notes`` keep every note's onset as performed. Pieces played in score order with
simultaneous chords (built data, real MSMD) are unaffected.

Frames and columns here are *unpadded*; the environment adds its own padding.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FPS = 20
"""Spectrogram frames per second (MSMD / Dorfer et al.)."""

SHEET_HEIGHT = 200
"""Rows of an unrolled MSMD sheet (±100 px around each system's centre)."""

N_SPEC_BINS = 78
"""Bins of the reference log-frequency spectrogram."""


class PieceFormatError(ValueError):
    """A piece's files are unreadable or inconsistent.

    The message always names the offending file (or piece) and what is wrong with it.
    """

    def __init__(self, source: str | Path, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{source}: {problem}")


def note_onset_frames(notes: np.ndarray, fps: int = FPS) -> np.ndarray:
    """The spectrogram frame of each note's onset: ``floor(onset s × fps)``, as the reference does.

    A tiny epsilon keeps onsets that sit exactly on a frame boundary (0.25 s at 20 fps) from falling one
    frame early after a float round trip through MIDI ticks.
    """
    return np.floor(np.asarray(notes, dtype=np.float64)[:, 0] * fps + 1e-9).astype(np.int64)


OUTLIER_S = 0.1
"""A note this far (seconds) from the local tempo line *and* beyond a neighbouring chord is dropped as an
anchor (played out of order: an ornament, a misaligned note), not pulled into a monotone fit."""

_TEMPO_WINDOW = 3
"""Chords each side whose times fit the local tempo line a note is checked against."""


@dataclass
class ReconciledOnsets:
    """Onsets for the ground truth, reconciled from performed onsets (see :func:`reconcile_onsets`).

    Attributes:
        onsets: ``(M,)`` one time per note: its score chord's reconciled time.
        chord_times: ``(C,)`` the distinct score times (sorted) and ``chord_onsets`` their reconciled times.
        reconciled: indices of the notes whose chord time was corrected (out of order), in score order.
        outliers: indices of the notes dropped as anchors (far out of order).
        largest_correction: the largest |reconciled − performed| over ``reconciled`` (seconds).
        inconsistent_chords: how many chords needed a correction, of ``len(chord_times)``.
    """

    onsets: np.ndarray
    chord_times: np.ndarray
    chord_onsets: np.ndarray
    reconciled: np.ndarray
    outliers: np.ndarray
    largest_correction: float
    inconsistent_chords: int


def _local_tempo_line(score: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every chord c, a robust line through its neighbours' times (Theil–Sen over ±_TEMPO_WINDOW chords,
    c itself left out): its slope and its value at the score time of c (so ``value + slope·(s − s_c)``)."""
    n = len(score)
    slopes, values = np.zeros(n), times.astype(np.float64).copy()

    def fit(chords: np.ndarray, neighbours: np.ndarray) -> None:  # neighbours: (len(chords), k) indices
        first, second = np.triu_indices(neighbours.shape[1], k=1)
        s, t = score[neighbours], times[neighbours]
        slopes[chords] = np.median((t[:, second] - t[:, first]) / (s[:, second] - s[:, first]), axis=1)
        values[chords] = np.median(t + (score[chords, None] - s) * slopes[chords, None], axis=1)

    offsets = np.array([o for o in range(-_TEMPO_WINDOW, _TEMPO_WINDOW + 1) if o])
    interior = np.arange(_TEMPO_WINDOW, n - _TEMPO_WINDOW)
    if len(interior):
        fit(interior, interior[:, None] + offsets)
    for c in sorted(set(range(n)) - set(interior.tolist())):  # near the ends: the neighbours there are
        window = [j for j in range(max(0, c - _TEMPO_WINDOW), min(n, c + _TEMPO_WINDOW + 1)) if j != c]
        if len(window) >= 2:
            fit(np.array([c]), np.array([window]))
    return slopes, values


def _median_per_group(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """The median of ``values`` in each group ``0..n_groups-1`` (NaN for an empty group)."""
    order = np.lexsort((values, groups))
    counts = np.bincount(groups, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ordered = np.append(values[order], np.nan)  # empty groups point past the end
    low, high = starts + (counts - 1) // 2, starts + counts // 2
    low[counts == 0] = high[counts == 0] = len(values)
    return 0.5 * (ordered[low] + ordered[high])


def reconcile_onsets(score_times: np.ndarray, performed: np.ndarray) -> ReconciledOnsets:
    """One onset per score chord for the ground truth, monotone in score order, from performed note onsets.

    Notes sharing a score time form a chord; its time is the median of its notes' performed onsets (a
    rolled chord counts at its middle). A note played before the neighbouring chord before it, or after the
    one after it, and more than :data:`OUTLIER_S` off the local tempo line, is left out of its chord's time
    (its chord is interpolated if no note is left). Chord times still out of order (small reversals of fast
    notes) are made monotone by isotonic regression weighted by the chord's notes. Notes played in score order
    with simultaneous chords come back unchanged.
    """
    from scipy.optimize import isotonic_regression

    score_times = np.asarray(score_times, dtype=np.float64)
    performed = np.asarray(performed, dtype=np.float64)
    chord_times, chord_of_note = np.unique(score_times, return_inverse=True)
    order = np.lexsort((performed, score_times))
    chord_min = np.full(len(chord_times), np.inf)
    chord_max = np.full(len(chord_times), -np.inf)
    np.minimum.at(chord_min, chord_of_note, performed)
    np.maximum.at(chord_max, chord_of_note, performed)
    nothing = np.zeros(0, dtype=np.int64)
    if np.all(np.diff(performed[order]) >= 0) and np.array_equal(chord_min, chord_max):
        return ReconciledOnsets(performed.copy(), chord_times, chord_min, nothing, nothing, 0.0, 0)

    raw = _median_per_group(performed, chord_of_note, len(chord_times))
    outliers = nothing
    if len(chord_times) >= 3:
        slopes, line = _local_tempo_line(chord_times, raw)

        def on_the_line(at_score_times: np.ndarray) -> np.ndarray:  # each note's chord's local tempo line
            return line[chord_of_note] + (at_score_times - score_times) * slopes[chord_of_note]

        last = len(chord_times) - 1
        previous, following = np.maximum(chord_of_note - 1, 0), np.minimum(chord_of_note + 1, last)
        # Out of order against both the local tempo line and the neighbouring chords as played: a hold (a
        # fermata, a breath) bends the line, and the chords around it, played in order, must not be dropped.
        before_previous = ((performed < on_the_line(chord_times[previous])) & (performed < raw[previous])
                           & (chord_of_note > 0))
        after_next = ((performed > on_the_line(chord_times[following])) & (performed > raw[following])
                      & (chord_of_note < last))
        far_off = np.abs(performed - line[chord_of_note]) > OUTLIER_S
        outliers = np.flatnonzero((before_previous | after_next) & far_off)
        if len(outliers) == len(performed):
            outliers = nothing  # nothing would be left to anchor the chords
    kept = np.ones(len(performed), dtype=bool)
    kept[outliers] = False
    counts = np.bincount(chord_of_note[kept], minlength=len(chord_times))
    present = counts > 0
    anchors = _median_per_group(performed[kept], chord_of_note[kept], len(chord_times))
    fitted = isotonic_regression(anchors[present], weights=counts[present]).x
    chord_onsets = np.interp(chord_times, chord_times[present], fitted)

    moved = np.zeros(len(chord_times), dtype=bool)
    moved[present] = np.abs(fitted - anchors[present]) > 1e-3
    moved |= ~present
    reconciled_mask = moved[chord_of_note]
    reconciled_mask[outliers] = True
    onsets = chord_onsets[chord_of_note]
    reconciled = order[reconciled_mask[order]]
    largest = float(np.max(np.abs(onsets[reconciled] - performed[reconciled]))) if len(reconciled) else 0.0
    moved[chord_of_note[outliers]] = True
    inconsistent = int(np.count_nonzero(moved))
    return ReconciledOnsets(onsets, chord_times, chord_onsets, reconciled, outliers, largest, inconsistent)


def pair_score_notes(notes: np.ndarray, score_notes: np.ndarray) -> np.ndarray:
    """For each performed note, the index of its score note: the k-th performed note of a pitch plays the
    k-th score note of that pitch.

    Both files list notes by onset, so a performance that plays notes out of score order (a grace note before
    the beat, a rolled chord) lists them in another order than the score; pairing per pitch recovers which
    score note each one plays. Where the pitches do not match, the notes pair in file order.
    """
    by_pitch_performed = np.lexsort((notes[:, 0], notes[:, 1]))
    by_pitch_score = np.lexsort((score_notes[:, 0], score_notes[:, 1]))
    if not np.array_equal(notes[by_pitch_performed, 1], score_notes[by_pitch_score, 1]):
        return np.arange(len(notes))
    pairing = np.empty(len(notes), dtype=np.int64)
    pairing[by_pitch_performed] = by_pitch_score
    return pairing


def merge_onsets(
    onset_frames_of_notes: np.ndarray, coords: np.ndarray, coord2onset: dict[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Merge noteheads whose notes start in the same frame into one onset.

    Follows the reference ``merge_onsets``: walk the coordinates in the key order of
    ``coord2onset`` and keep the first coordinate of every onset frame not seen before.
    The result is then sorted by frame so that repeats or odd key orders cannot produce a
    time-reversed ground truth.

    Returns:
        ``(onset_frames, onset_coords)``: int64 ``(K,)`` strictly increasing frames and
        float32 ``(K, 2)`` the (row, col) of the notehead kept for each.
    """
    seen: dict[int, int] = {}
    for coord_index, note_index in coord2onset.items():
        frame = int(onset_frames_of_notes[note_index])
        if frame not in seen:
            seen[frame] = int(coord_index)
    frames = np.array(sorted(seen), dtype=np.int64)
    kept_coords = np.array([coords[seen[f]] for f in frames], dtype=np.float32).reshape(-1, 2)
    return frames, kept_coords


def ground_truth_x(n_frames: int, onset_frames: np.ndarray, onset_x: np.ndarray) -> np.ndarray:
    """Score x at every frame: linear between merged onsets, constant outside them."""
    return np.interp(np.arange(n_frames), onset_frames, onset_x).astype(np.float32)


@dataclass
class Piece:
    """One performance of one score, validated, with its ground truth.

    Construct it directly (validation runs in ``__post_init__``) or with
    :func:`sfgym.data.msmd.load_piece`. ``source`` names the file(s) it came from and is used in
    every error message.
    """

    name: str
    sheet: np.ndarray
    coords: np.ndarray
    coord2onset: dict[int, int]
    notes: np.ndarray
    spectrogram: np.ndarray
    source: str = "<memory>"
    fps: int = FPS
    score_notes: np.ndarray | None = None
    onset_frames: np.ndarray = field(init=False, repr=False)
    onset_coords: np.ndarray = field(init=False, repr=False)
    true_x: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._validate()
        onsets = self.notes if self.score_notes is None else np.column_stack(
            [reconcile_onsets(self.score_notes[:, 0], self.notes[:, 0]).onsets, self.notes[:, 1:]])
        self.onset_frames, self.onset_coords = merge_onsets(
            note_onset_frames(onsets, self.fps), self.coords, self.coord2onset
        )
        if self.onset_frames[-1] >= self.n_frames:
            raise PieceFormatError(
                self.source,
                f"mismatched lengths: the last onset is at frame {self.onset_frames[-1]} "
                f"({self.onset_frames[-1] / self.fps:.2f} s) but the spectrogram has only "
                f"{self.n_frames} frames ({self.n_frames / self.fps:.2f} s)",
            )
        self.true_x = ground_truth_x(self.n_frames, self.onset_frames, self.onset_x)

    # ------------------------------------------------------------------ derived views
    @property
    def onset_x(self) -> np.ndarray:
        """Column (x) of each merged onset's notehead in the unrolled sheet."""
        return self.onset_coords[:, 1]

    @property
    def n_frames(self) -> int:
        """Number of spectrogram frames (the performance's length in frames)."""
        return int(self.spectrogram.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    @property
    def sheet_width(self) -> int:
        return int(self.sheet.shape[1])

    @property
    def first_onset_frame(self) -> int:
        return int(self.onset_frames[0])

    @property
    def last_onset_frame(self) -> int:
        return int(self.onset_frames[-1])

    @property
    def score_name(self) -> str:
        """The score this performance plays (pieces named ``score@variant`` share one score)."""
        return self.name.split("@", 1)[0]

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        fail = lambda problem: PieceFormatError(self.source, problem)  # noqa: E731

        sheet = np.asarray(self.sheet)
        if sheet.ndim != 2 or sheet.shape[0] < 1 or sheet.shape[1] < 1:
            raise fail(f"'sheet' must be a 2-D image, got shape {sheet.shape}")
        if sheet.dtype != np.uint8:
            raise fail(f"'sheet' must be uint8, got {sheet.dtype}")
        self.sheet = sheet

        coords = np.asarray(self.coords, dtype=np.float32)
        if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) == 0:
            raise fail(f"'coords' must have shape (N>0, 2), got {np.shape(self.coords)}")
        if not np.all(np.isfinite(coords)):
            raise fail("'coords' contains NaN or inf")
        rows, cols = coords[:, 0], coords[:, 1]
        outside = (rows < 0) | (rows >= sheet.shape[0]) | (cols < 0) | (cols >= sheet.shape[1])
        if outside.any():
            i = int(np.argmax(outside))
            raise fail(
                f"{int(outside.sum())} notehead coords lie outside the {sheet.shape[0]}x{sheet.shape[1]} "
                f"sheet (first: coord {i} at row {rows[i]:.1f}, col {cols[i]:.1f})"
            )
        self.coords = coords

        notes = np.asarray(self.notes, dtype=np.float64)
        if notes.ndim != 2 or notes.shape[1] < 3 or len(notes) == 0:
            raise fail(f"the performance has no notes (note array of shape {np.shape(self.notes)})")
        if not np.all(np.isfinite(notes[:, :3])):
            raise fail("the performance's note events contain NaN or inf")
        if np.any(np.diff(notes[:, 0]) < 0):
            raise fail("note events must be sorted by onset time")
        self.notes = notes[:, :3]

        if self.score_notes is not None:
            score_notes = np.asarray(self.score_notes, dtype=np.float64)
            if score_notes.shape[0] != len(notes) or score_notes.ndim != 2 or score_notes.shape[1] < 3:
                raise fail(
                    f"the score MIDI has {score_notes.shape[0]} notes but the performance has {len(notes)}; "
                    "they must be the same notes in the same order"
                )
            if not np.all(np.isfinite(score_notes[:, :3])):
                raise fail("the score MIDI's note events contain NaN or inf")
            self.score_notes = score_notes[pair_score_notes(notes, score_notes), :3]

        if not isinstance(self.coord2onset, dict) or not self.coord2onset:
            raise fail("'coord2onset' must be a non-empty dict {coord index: note index}")
        mapping: dict[int, int] = {}
        for coord_index, note_index in self.coord2onset.items():
            coord_index, note_index = int(coord_index), int(note_index)
            if not 0 <= coord_index < len(coords):
                raise fail(f"coord2onset refers to coord {coord_index}, but there are {len(coords)} coords")
            if not 0 <= note_index < len(notes):
                raise fail(
                    f"coord2onset maps coord {coord_index} to note {note_index}, past the "
                    f"performance's {len(notes)} notes"
                )
            mapping[coord_index] = note_index
        self.coord2onset = mapping

        spec = np.asarray(self.spectrogram)
        if spec.ndim == 3 and spec.shape[0] == 1:  # (1, bins, frames) as the reference stores it
            spec = spec[0]
        if spec.ndim != 2 or spec.shape[0] != N_SPEC_BINS or spec.shape[1] == 0:
            raise fail(f"spectrogram must have shape ({N_SPEC_BINS}, T>0), got {spec.shape}")
        if not np.all(np.isfinite(spec)):
            raise fail(f"spectrogram contains {int((~np.isfinite(spec)).sum())} NaN/inf values")
        self.spectrogram = spec.astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return (
            f"Piece({self.name!r}, sheet={self.sheet.shape}, noteheads={len(self.coords)}, "
            f"onsets={len(self.onset_frames)}, frames={self.n_frames}, {self.duration_s:.1f} s)"
        )


def check_tempo_mark_factor(factor: float) -> float:
    """``factor`` if it can scale notated times (a positive number), else a ValueError saying so."""
    if not factor > 0:
        raise ValueError(f"tempo mark error: the factor must be positive, got {factor}")
    return factor


def with_wrong_tempo_mark(piece: Piece, factor: float) -> Piece:
    """The piece as a score with a wrong tempo mark would present it: its notated times (``score_notes`` onsets and
    durations) multiplied by ``factor``, the performance and its ground truth unchanged.

    ``factor`` 3 is a mark three times too slow (the performance then runs at three times its written tempo, as
    a score without a mark, read at a default tempo, often does); 0.33 one three times too fast. A robustness
    check for score-side followers, which must find the tempo from the sound (``sfgym evaluate --tempo-mark-error``).

    Raises:
        ValueError: ``factor`` is not positive, or the piece has no notated timing (``score_notes``).
    """
    check_tempo_mark_factor(factor)
    if piece.score_notes is None:
        raise ValueError(f"{piece.source}: piece {piece.name!r} has no notated timing (score_notes) to scale")
    scaled = copy.copy(piece)  # not dataclasses.replace: the ground truth must not be derived again
    scaled.score_notes = piece.score_notes * np.array([factor, 1.0, factor])
    return scaled
