"""Per-frame cost (ms/frame) of each follower, and how well the baselines follow a tempo-varied performance.

Usage::

    python benchmarks/follower_cost.py                      # the baselines on the real MSMD sample
    python benchmarks/follower_cost.py --agents oracle,online_dtw,runs/lstm/best.pt --data DIR --split test

Without ``--data`` it uses the real MSMD sample piece shipped with the tests (``tests/fixtures/msmd_sample``)
as the *score* (its MIDI is at the notated tempo) and makes performances of it that the score-side
followers cannot know: played slower / faster by a smooth tempo curve with rubato, synthesized to audio.
Each follower runs alone, in this process, one piece after the other, so ``act`` times are not disturbed
by parallel workers; ``reset`` (e.g. the score synthesis of ``online_dtw``, cached per score) is timed
apart.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sfgym.data.piece import Piece  # noqa: E402

SAMPLE_SPLIT = ROOT / "tests" / "fixtures" / "msmd_sample"
WARP_CURVES = [(1.0, 0.0), (0.8, 0.15), (1.2, 0.15), (0.7, 0.3)]
"""(mean tempo ratio, relative depth of a 12 s sinusoidal tempo wobble) of the warped performances."""


def tempo_warp(times: np.ndarray, mean_ratio: float, rubato: float, period_s: float = 12.0) -> np.ndarray:
    """Performance times of score ``times`` played at ``mean_ratio`` × the notated tempo (>1 faster),
    with a sinusoidal tempo modulation of relative depth ``rubato``."""
    grid = np.linspace(0.0, float(times.max()) + 1.0, 4000)
    tempo = mean_ratio * (1.0 + rubato * np.sin(2 * np.pi * grid / period_s))
    elapsed = np.concatenate([[0.0], np.cumsum(np.diff(grid) / tempo[:-1])])
    return np.interp(times, grid, elapsed)


def warped_performances(score_piece: Piece, curves: list[tuple[float, float]]) -> list[Piece]:
    """Performances of ``score_piece`` at the given (tempo ratio, rubato) curves.

    The notated timing is ``score_piece.score_notes``, or its performance's notes if it has none (an MSMD
    performance MIDI is the score played at its notated tempo).
    """
    from sfgym.data.msmd import notes_to_midi
    from sfgym.data.spectrogram import spectrogram_from_audio
    from sfgym.data.synth import synthesize_midi

    score_notes = (score_piece.notes if score_piece.score_notes is None else score_piece.score_notes).copy()
    pieces = []
    for ratio, rubato in curves:
        notes = score_notes.copy()
        onsets = tempo_warp(score_notes[:, 0], ratio, rubato)
        ends = tempo_warp(score_notes[:, 0] + score_notes[:, 2], ratio, rubato)
        notes[:, 0], notes[:, 2] = onsets, np.maximum(ends - onsets, 0.05)
        order = np.lexsort((notes[:, 1], notes[:, 0]))
        if not np.array_equal(order, np.arange(len(notes))):  # keep the note order that coord2onset uses
            raise RuntimeError("tempo warp changed the note order")
        audio = synthesize_midi(notes_to_midi(notes), sample_rate=22050)
        pieces.append(Piece(
            name=f"{score_piece.name}@x{ratio:.2f}r{rubato:.2f}", sheet=score_piece.sheet, coords=score_piece.coords,
            coord2onset=score_piece.coord2onset, notes=notes, spectrogram=spectrogram_from_audio(audio, 22050),
            source=f"{score_piece.source} (tempo-warped)", score_notes=score_notes,
        ))
    return pieces


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", default="oracle,constant_tempo,online_dtw")
    parser.add_argument("--data", type=Path, help="dataset root or split (default: tempo-warped MSMD sample)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-pieces", type=int, default=5)
    parser.add_argument("--warp", action="store_true",
                        help="follow tempo-warped performances of the --data pieces' scores instead of the pieces")
    args = parser.parse_args(argv)

    from sfgym.data.msmd import find_split_dir, list_pieces, load_piece, load_split
    from sfgym.evaluation import run_evaluation, summary_markdown

    if args.data is None:
        sample = load_piece(list_pieces(SAMPLE_SPLIT)[0], cache_spectrogram=False)
        pieces = warped_performances(sample, WARP_CURVES)
        where = f"the MSMD sample {sample.name} as score, performed at (tempo ratio, rubato) {WARP_CURVES}"
    else:
        split = find_split_dir(args.data, args.split)
        names = [files.name for files in list_pieces(split)][: args.max_pieces]
        pieces = load_split(split, names, progress=False)
        where = f"{split} (first {len(pieces)} pieces)"
        if args.warp:
            pieces = [warped for piece in pieces for warped in warped_performances(piece, WARP_CURVES)]
            where += f", performed at (tempo ratio, rubato) {WARP_CURVES}"

    frames = sum(p.last_onset_frame - p.first_onset_frame for p in pieces)
    print(f"{where}: {len(pieces)} pieces, {frames} frames; {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}")
    for spec in args.agents.split(","):
        started = time.perf_counter()
        evaluation = run_evaluation([spec], pieces, workers=1, progress=False)
        wall = time.perf_counter() - started
        print(f"\n{spec}: {wall:.1f} s in all")
        print(evaluation.results[["piece", "tr", "error_mean_px", "error_median_px", "within_0.5s", "ms_per_frame",
                                  "reset_s"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(summary_markdown(evaluation.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
