"""The in-memory score-following piece that everything downstream uses.

A :class:`Piece` is one *performance* of one *score*, in the MSMD score-following layout
(see ``docs`` in the README and section 1 of the reference notes):

- ``sheet``: the unrolled sheet, uint8 ``(200, W)``, all staff systems cut ±100 px around their
  vertical centre and concatenated left to right (white = 255).
- ``coords``: float32 ``(N, 2)``, (row, col) of every notehead centre in ``sheet``.
- ``coord2onset``: ``{coord index: note index}``, the note index pointing into ``notes``.
- ``notes``: float64 ``(M, 3)`` rows of (onset seconds, MIDI pitch, duration seconds) of the
  performance, sorted by onset then pitch (the order of the MIDI's note list in MSMD).
- ``spectrogram``: float32 ``(78, T)`` log-frequency spectrogram at 20 frames per second.
- ``score_notes`` (optional): the same notes at the score's *notated* tempo (``<split>/score/<score>.mid``),
  in the same order, so ``coord2onset`` applies to them too. Score-side followers (a metronome, on-line
  DTW against a synthesized score) use it; it is never the performance's timing.

Derived on construction, exactly as the reference code of Dorfer et al. does it:

- ``onset_frames`` / ``onset_coords``: note onsets (s × fps, floored) merged per frame — several noteheads
  (a chord) share one onset; walking the coords in key order, the first coordinate of each unique onset
  frame is kept.
- ``true_x``: the ground-truth score x for every spectrogram frame: linear interpolation of the notehead
  x between consecutive merged onsets, held constant before the first and after the last.

Frames and columns here are *unpadded*; the environment adds its own padding.
"""

from __future__ import annotations

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
        self.onset_frames, self.onset_coords = merge_onsets(
            note_onset_frames(self.notes, self.fps), self.coords, self.coord2onset
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
            self.score_notes = score_notes[:, :3]

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
