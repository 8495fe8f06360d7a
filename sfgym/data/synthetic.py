"""Small, deterministic toy pieces for tests and examples.

A toy piece looks like a score-following task without any engraving or synthesis: noteheads are
black discs on a white strip, each onset lights up the spectrogram bin of its pitch for a few
frames, and the onsets come at a steady tempo with a little seeded jitter. It is a real
:class:`~sfgym.data.piece.Piece`, so everything downstream (environment, metrics, agents) runs on it
in milliseconds. Use the dataset builder for realistic data.
"""

from __future__ import annotations

import numpy as np

from sfgym.data.piece import FPS, N_SPEC_BINS, SHEET_HEIGHT, Piece


def synthetic_piece(
    name: str = "toy",
    *,
    n_onsets: int = 24,
    frames_per_onset: float = 8.0,
    px_per_onset: float = 40.0,
    seed: int = 0,
    tail_frames: int = 20,
) -> Piece:
    """Build a toy piece with ``n_onsets`` single-note onsets.

    Args:
        name: the piece's name.
        n_onsets: number of notes (one notehead each).
        frames_per_onset: mean spacing of onsets in spectrogram frames (8 frames = 0.4 s).
        px_per_onset: spacing of noteheads in sheet pixels.
        seed: seeds the tempo jitter, pitches and vertical notehead positions.
        tail_frames: frames of audio after the last onset.
    """
    rng = np.random.default_rng(seed)
    gaps = np.maximum(2.0, frames_per_onset * rng.uniform(0.7, 1.3, size=n_onsets - 1))
    onset_frames = np.concatenate([[10.0], 10.0 + np.cumsum(np.round(gaps))]).astype(int)
    onsets_s = onset_frames / FPS + 0.01
    pitches = rng.integers(48, 84, size=n_onsets)
    notes = np.stack([onsets_s, pitches, np.full(n_onsets, 0.3)], axis=1)

    width = int(px_per_onset * (n_onsets + 2))
    cols = px_per_onset * (1 + np.arange(n_onsets)) + rng.uniform(-3, 3, size=n_onsets)
    rows = SHEET_HEIGHT / 2 + (pitches - 66) * 2.0
    coords = np.stack([rows, cols], axis=1).astype(np.float32)

    sheet = np.full((SHEET_HEIGHT, width), 255, dtype=np.uint8)
    yy, xx = np.mgrid[0:SHEET_HEIGHT, 0:width]
    for staff_line in range(5):  # a few horizontal lines so the score branch sees structure
        sheet[80 + 10 * staff_line, :] = 0
    for row, col in coords:
        sheet[(yy - row) ** 2 + (xx - col) ** 2 <= 16] = 0

    n_frames = int(onset_frames[-1] + tail_frames)
    spectrogram = np.zeros((N_SPEC_BINS, n_frames), dtype=np.float32)
    for frame, pitch in zip(onset_frames, pitches):
        band = int(np.clip(pitch - 35, 0, N_SPEC_BINS - 1))  # 60 Hz ~ MIDI 35; 12 bands per octave
        decay = np.exp(-np.arange(6) / 2.0).astype(np.float32)
        end = min(n_frames, frame + 6)
        spectrogram[band, frame:end] += decay[: end - frame]
    spectrogram = np.log10(1.0 + 10.0 * spectrogram).astype(np.float32)

    coord2onset = {i: i for i in range(n_onsets)}
    return Piece(name=name, sheet=sheet, coords=coords, coord2onset=coord2onset, notes=notes,
                 spectrogram=spectrogram, source=f"synthetic:{name}", score_notes=notes.copy())
