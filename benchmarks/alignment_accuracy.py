"""How accurately automatic alignment (``sfgym data import`` without ``--alignment``) finds each note's onset.

Usage::

    python benchmarks/alignment_accuracy.py                          # default dataset, test split, all performances
    python benchmarks/alignment_accuracy.py --limit 6 --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2
    python benchmarks/alignment_accuracy.py --conditions same,other --no-refine   # the DTW path alone

Every performance of the split (score + tempo-curved performance MIDI, the truth) is aligned three ways:

- ``midi``: the performance MIDI itself (the note-level path of :func:`sfgym.data.alignment.align_midi`);
- ``same piano``: the performance MIDI synthesized with TimGM6mb, the soundfont the dataset's score audio uses;
- ``other piano + room``: synthesized with ``--soundfont`` (a piano the data never uses) and played in a seeded
  synthetic room of RT60 ``--rt60`` — the unseen-piano evaluation's rendering
  (:func:`sfgym.data.variant.render_performance`; defaults: MuseScore General, 0.4 s, as in docs/data.md).

The truth of a score note is the onset of the same note in the performance MIDI (the dataset writes the two
note lists in one order; ``coord2onset`` points into both). Printed per condition: median and 95th percentile
of |onset error|, the share of notes within 50 / 100 ms, and the alignment's runtime (features + DTW, not
the synthesis) per minute of performance.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sfgym.data.alignment import align_audio, align_midi  # noqa: E402
from sfgym.data.msmd import find_split_dir, list_pieces, read_midi_notes  # noqa: E402
from sfgym.data.synth import synthesize_midi  # noqa: E402
from sfgym.data.variant import render_performance  # noqa: E402

SAMPLE_RATE = 22050
OTHER_SOUNDFONT = Path("/usr/share/sounds/sf2/MuseScore_General_Full.sf2")  # musescore-general-soundfont-lossless


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="dataset root or split directory (default: the default dataset)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, help="only the first N performances (for a quick look)")
    parser.add_argument("--soundfont", type=Path, default=OTHER_SOUNDFONT, help=".sf2 of the 'other piano'")
    parser.add_argument("--rt60", type=float, default=0.4, help="reverberation time of the synthetic room (s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the room impulse responses")
    parser.add_argument("--no-refine", action="store_true",
                        help="keep the DTW path's onsets (no refinement at each chord's pitch onsets)")
    parser.add_argument("--conditions", default="midi,same,other", help="comma-separated subset of midi,same,other")
    args = parser.parse_args(argv)

    from tqdm import tqdm

    if args.data is None:
        from sfgym.data.dataset import default_dataset_dir

        args.data = default_dataset_dir(build=False)
    split_dir = find_split_dir(args.data, args.split)
    pieces = [files for files in list_pieces(split_dir) if files.score_midi is not None][: args.limit]
    conditions = args.conditions.split(",")
    errors: dict[str, list[np.ndarray]] = {c: [] for c in conditions}
    seconds: dict[str, float] = {c: 0.0 for c in conditions}
    audio_minutes = 0.0
    for index, files in enumerate(tqdm(pieces, desc="aligning", unit="performance")):
        score_notes, performed = read_midi_notes(files.score_midi), read_midi_notes(files.midi)
        audio_minutes += performed[:, 0].max() / 60  # onset of the last note, about the performance's length
        for condition in conditions:
            if condition == "midi":
                start = time.perf_counter()
                onsets = align_midi(score_notes, performed).onsets_s
            else:
                if condition == "same":
                    audio = synthesize_midi(files.midi, soundfont="TimGM6mb", sample_rate=SAMPLE_RATE)
                else:  # the unseen-piano evaluation's piano and room (sfgym data variant)
                    audio = render_performance(files.midi, str(args.soundfont), args.rt60, seed=args.seed + index)
                start = time.perf_counter()
                onsets = align_audio(score_notes, audio, SAMPLE_RATE, refine=not args.no_refine).onsets_s
            seconds[condition] += time.perf_counter() - start
            errors[condition].append(np.abs(onsets - performed[:, 0]))

    labels = {"midi": "performance MIDI", "same": "audio, same piano (TimGM6mb)",
              "other": f"audio, other piano ({args.soundfont.name}) + room RT60 {args.rt60:g} s"}
    print(f"\n{len(pieces)} performances of {split_dir} ({audio_minutes:.1f} min, "
          f"{sum(len(e) for e in errors[conditions[0]])} notes)")
    print("| condition | median error (ms) | 95th percentile (ms) | within 50 ms | within 100 ms | s per min of audio |")
    print("|---|---|---|---|---|---|")
    for condition in conditions:
        error = np.concatenate(errors[condition]) * 1000
        print(f"| {labels[condition]} | {np.median(error):.1f} | {np.percentile(error, 95):.0f} | "
              f"{np.mean(error <= 50):.1%} | {np.mean(error <= 100):.1%} | {seconds[condition] / audio_minutes:.1f} |")
    for condition in conditions:
        within = [float(np.mean(e <= 0.1)) for e in errors[condition]]
        worst = int(np.argmin(within))
        print(f"{labels[condition]}: hardest performance {pieces[worst].name} ({within[worst]:.1%} within 100 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
