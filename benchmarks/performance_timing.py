"""What the builder's performances look like: the smooth tempo curve vs the human timing model, and what each
costs per performance (with and without sound augmentation).

    python benchmarks/performance_timing.py [--pieces 6] [--seeds 3]

Engraves the first N scores of the default corpus, performs each at tempo ratio 1.0 with both timing models
and several seeds, and prints distributions over all chords: the local tempo (notated / performed time between
consecutive chords), the deviation of each inter-onset interval from the notated one, the spread of chords
(last − first note) and the velocities. Then times one performance of the first score end to end (timing, MIDI,
synthesis, optional augmentation, spectrogram).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from sfgym.data.augment import augment_audio, augment_notes
from sfgym.data.corpus import default_corpus
from sfgym.data.reduction import load_score_musicxml
from sfgym.data.dataset import expressive_timing
from sfgym.data.engrave import engrave
from sfgym.data.msmd import midi_bytes, notes_to_midi
from sfgym.data.performance import human_performance
from sfgym.data.spectrogram import spectrogram_from_audio
from sfgym.data.synth import synthesize_midi


def chord_statistics(score: np.ndarray, played: np.ndarray) -> dict[str, np.ndarray]:
    """Per-chord local tempo, inter-onset deviation and spread of one performance (rows in score order)."""
    chord_times, chord_of_note = np.unique(score[:, 0], return_inverse=True)
    first = np.full(len(chord_times), np.inf)
    last = np.full(len(chord_times), -np.inf)
    np.minimum.at(first, chord_of_note, played[:, 0])
    np.maximum.at(last, chord_of_note, played[:, 0])
    middle = np.array([np.median(played[chord_of_note == c, 0]) for c in range(len(chord_times))])
    notated, performed = np.diff(chord_times), np.diff(middle)
    return {"tempo": notated / performed, "ioi_deviation": performed / notated - 1,
            "spread_ms": 1000 * (last - first)[np.bincount(chord_of_note) > 1]}


def percentiles(values: np.ndarray) -> list[str]:
    return [f"{v:.3f}" for v in np.percentile(values, [1, 10, 50, 90, 99])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pieces", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    scores = [engrave(load_score_musicxml(piece)).notes for piece in default_corpus()[:args.pieces]]

    collected: dict[str, dict[str, list]] = {"smooth": {}, "human": {}}
    for score in scores:
        for seed in range(args.seeds):
            human = human_performance(score, 1.0, seed)
            runs = {"smooth": (expressive_timing(score, 1.0, 0.1, seed), None), "human": (human.notes, human.velocities)}
            for model, (played, velocities) in runs.items():
                for key, values in chord_statistics(score, played).items():
                    collected[model].setdefault(key, []).append(values)
                collected[model].setdefault("velocity", []).append(
                    np.full(len(played), 80) if velocities is None else velocities)

    table = Table(title=f"{len(scores)} scores x {args.seeds} seeds, tempo ratio 1.0: percentiles 1/10/50/90/99")
    for column in ("measure", "model", "p1", "p10", "p50", "p90", "p99"):
        table.add_column(column, justify="left" if column in ("measure", "model") else "right")
    for key in ("tempo", "ioi_deviation", "spread_ms", "velocity"):
        for model in ("smooth", "human"):
            table.add_row(key, model, *percentiles(np.concatenate(collected[model][key]).astype(float)))
    console = Console()
    console.print(table)

    score = scores[0]
    costs = Table(title=f"cost of one performance of a {score[:, 0].max():.0f} s score (median of 3)")
    for column in ("step", "seconds"):
        costs.add_column(column, justify="left" if column == "step" else "right")
    for label, timing, augmented in (("smooth timing", "smooth", False), ("human timing", "human", False),
                                     ("human timing + augmentation", "human", True)):
        elapsed = []
        for seed in range(3):
            started = time.perf_counter()
            if timing == "human":
                human = human_performance(score, 1.0, seed)
                played, velocities = human.notes, human.velocities
            else:
                played, velocities = expressive_timing(score, 1.0, 0.1, seed), None
            rng = np.random.default_rng(seed)
            if augmented:
                played, velocities = augment_notes(played, velocities, rng)
            audio = synthesize_midi(midi_bytes(notes_to_midi(played, velocities=velocities)), sample_rate=22050)
            if augmented:
                audio = augment_audio(audio, 22050, rng)
            spectrogram_from_audio(audio, 22050)
            elapsed.append(time.perf_counter() - started)
        costs.add_row(label, f"{np.median(elapsed):.2f}")
    console.print(costs)


if __name__ == "__main__":
    main()
