"""Where the staff systems of an unrolled sheet begin and end.

An MSMD sheet is every system of the score cut out of its page and concatenated left to right, and
the score file stores no trace of where one system stops and the next starts. Page turns (a
follower crossing into the next system) need those bounds, so they are read back from the image:

1. *Staff lines only*: a grey-level opening of the ink with a long horizontal line (41 px, about six
   staff spaces at MSMD's resolution) keeps staff lines (and long horizontal beams) and erases
   noteheads, stems, text and barlines.
2. *Staff rows*: the rows that carry staff-line ink in at least 30 % of the inked columns (plus one
   row either side, where anti-aliasing of a slightly shifted staff lands).
3. *Column signature*: each column's line ink at those rows, quantized to 8 levels. Within one
   system every column shows the same staff lines, so the signature is constant apart from short
   stretches of beams or slurs crossing the lines.
4. A new system starts
   - after a *gap*: 3 or more consecutive columns with no staff-line ink (sfgym's engraver keeps a few
     white columns left and right of every system), or
   - where the staff lines *move*: a long run (>= 16 columns) of constant signature lacks line ink
     that the current system's base signature (the element-wise minimum of its runs so far) has. A
     beam only ever adds ink to a column, so losing ink means the lines themselves moved, as they do
     by a pixel or a sub-pixel anti-aliasing shift between the systems of a real MSMD sheet (which
     are cut edge to edge, without a gap).

Known limits: two consecutive systems whose staff lines sit on exactly the same rows with the same
anti-aliasing and no gap between them are not told apart (they merge into one); a system whose staves
are a superset of its predecessor's is merged too. Sheets without staff lines are one system.
When the bounds are known (sfgym's engraver returns them as ``EngravedScore.system_bounds``, and a
:class:`~sfgym.data.piece.Piece` may carry them as ``system_bounds``), :func:`system_bounds_of` uses
those instead of detecting.
"""

from __future__ import annotations

import cv2
import numpy as np

_LINE_KERNEL_PX = 41
_STAFF_ROW_COVERAGE = 0.3
_INK_THRESHOLD = 64
_QUANTIZATION_SHIFT = 5  # 256 grey levels -> 8 signature levels
_MIN_GAP_COLUMNS = 3
_MIN_RUN_COLUMNS = 16
_MIN_SYSTEM_COLUMNS = 48
_LOST_INK_LEVELS = 2  # a drop of >= 2 of the 8 levels at some staff row counts as lost line ink


def detect_system_bounds(sheet: np.ndarray) -> np.ndarray:
    """Detect the staff systems of an unrolled sheet (see the module docstring for the method).

    Args:
        sheet: uint8 ``(rows, W)`` image, white = 255.

    Returns:
        int64 ``(S, 2)`` array of ``[first column, one past the last column)`` per system, covering
        ``[0, W)`` without gaps or overlaps, in order. A sheet without staff lines is one system.
    """
    sheet = np.asarray(sheet)
    if sheet.ndim != 2 or sheet.dtype != np.uint8 or sheet.shape[1] == 0:
        raise ValueError(f"sheet must be a non-empty 2-D uint8 image, got {sheet.dtype} {sheet.shape}")
    width = sheet.shape[1]
    ink = 255 - sheet
    lines = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((1, _LINE_KERNEL_PX), np.uint8))
    inked_columns = (lines > _INK_THRESHOLD).any(axis=0)
    if not inked_columns.any():
        return np.array([[0, width]], dtype=np.int64)
    coverage = (lines[:, inked_columns] > _INK_THRESHOLD).mean(axis=1)
    line_rows = np.flatnonzero(coverage >= _STAFF_ROW_COVERAGE)
    if len(line_rows) == 0:
        return np.array([[0, width]], dtype=np.int64)
    rows = np.unique(np.clip(np.concatenate([line_rows - 1, line_rows, line_rows + 1]), 0, sheet.shape[0] - 1))
    signatures = (lines[rows] >> _QUANTIZATION_SHIFT).T.astype(np.int16)  # (W, n_rows)
    blank = signatures.max(axis=1) == 0

    starts: list[int] = []
    column = 0
    while column < width:
        # skip blank columns; a long enough blank stretch between inked columns starts a new system
        gap_start = column
        while column < width and blank[column]:
            column += 1
        if column >= width:
            break
        if not starts or column - gap_start >= _MIN_GAP_COLUMNS:
            starts.append(gap_start if not starts else _gap_midpoint(gap_start, column))
        # inked segment up to the next blank stretch of the minimum gap width
        segment_end = column
        while segment_end < width:
            if blank[segment_end] and blank[segment_end : segment_end + _MIN_GAP_COLUMNS].all():
                break
            segment_end += 1
        starts.extend(_line_shifts(signatures, column, segment_end))
        column = segment_end
    if not starts:
        starts = [0]
    starts[0] = 0
    bounds = _drop_narrow_systems(starts, width)
    return np.array(bounds, dtype=np.int64)


def _gap_midpoint(gap_start: int, gap_end: int) -> int:
    return (gap_start + gap_end) // 2


def _line_shifts(signatures: np.ndarray, start: int, stop: int) -> list[int]:
    """First columns of the systems that begin inside ``[start, stop)`` because the staff lines moved."""
    segment = signatures[start:stop]
    changes = np.flatnonzero(np.any(segment[1:] != segment[:-1], axis=1)) + 1
    edges = np.concatenate([[0], changes, [len(segment)]]) + start
    runs = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b - a >= _MIN_RUN_COLUMNS]
    new_starts: list[int] = []
    base: np.ndarray | None = None
    for first, last in runs:
        signature = signatures[first]
        if base is not None and np.any(base - signature >= _LOST_INK_LEVELS):
            new_starts.append(first)
            base = signature.copy()
        else:
            base = signature.copy() if base is None else np.minimum(base, signature)
    return new_starts


def _drop_narrow_systems(starts: list[int], width: int) -> list[list[int]]:
    """Turn system starts into bounds, merging any system too narrow to be one into its predecessor."""
    starts = sorted(set(starts))
    kept = [starts[0]]
    for start in starts[1:]:
        if start - kept[-1] >= _MIN_SYSTEM_COLUMNS and width - start >= _MIN_SYSTEM_COLUMNS:
            kept.append(start)
    return [[a, b] for a, b in zip(kept, kept[1:] + [width])]


def system_bounds_of(piece) -> np.ndarray:
    """The system bounds of a piece: its own ``system_bounds`` if it carries them, else detected."""
    known = getattr(piece, "system_bounds", None)
    if known is not None:
        known = np.asarray(known, dtype=np.int64).reshape(-1, 2)
        if len(known):
            return known
    return detect_system_bounds(piece.sheet)


def system_index(bounds: np.ndarray, x: float) -> int:
    """Index of the system containing sheet column ``x`` (clamped to the first / last system)."""
    index = int(np.searchsorted(bounds[:, 0], x, side="right")) - 1
    return int(np.clip(index, 0, len(bounds) - 1))


__all__ = ["detect_system_bounds", "system_bounds_of", "system_index"]
