"""Build ``rough``: a development set with rougher, more real-like timing than the training data, on scores and a
piano no follower here was trained on.

The valid scores of the default and ``piano-v2`` corpora (split seed 0, as every build here splits them; scores in
both corpora once, and none that is in the train or test split of the other corpus: 19 scores), played at 0.75
and 1.3 of their notated tempo with human timing made rougher than the training data's (``--timing-set``: strong
rubato, a fermata at half the phrase ends, 20 % of the chords late by 50-200 ms, 30 ms onset jitter, more rolled
chords), synthesized with FluidR3 (``apt-get install fluid-soundfont-gm``), never a training piano. All
performances go to the ``valid`` split but one score's (split fractions 0 / 1 / 0 leave one score in ``test``).
The tracker's settings were compared on it (docs/model-card.md).

``--pedal DIR`` then writes ``rough-pedal``, a copy in which every performance is sustain-pedalled, as real
performances are (:func:`sfgym.data.augment.augment_notes` with the pedal always down between changes 0.8-3 s
apart; velocities as played): the same notes and ground truth, only the spectrograms differ.

    python scripts/build_rough_dev.py --out data/rough [--soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2] [--pedal data/rough-pedal]
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROUGH_TIMING = (
    ("rubato", 0.3),
    ("fermata_probability", 0.5),
    ("fermata_s", (0.5, 2.0)),
    ("agogic_probability", 0.2),
    ("agogic_s", (0.05, 0.2)),
    ("jitter_s", 0.03),
    ("tempo_bounds", (0.4, 2.0)),
    ("roll_probability", 0.3),
)
"""``BuildConfig.timing_settings`` of ``rough``: the fields of :class:`sfgym.data.performance.HumanTiming` it changes."""


def held_out_scores() -> list:
    """The valid scores of the default and piano-v2 corpora (default split, seed 0), each once, except those in the
    train or test split of the other corpus (the two share scores, split apart)."""
    from sfgym.data.corpus import corpus_pieces
    from sfgym.data.dataset import assign_splits

    corpora = {corpus: corpus_pieces(corpus) for corpus in ("default", "piano-v2")}
    splits = {corpus: assign_splits([piece.name for piece in pieces]) for corpus, pieces in corpora.items()}
    chosen, names = [], set()
    for corpus, pieces in corpora.items():
        for piece in pieces:
            elsewhere = {split.get(piece.name) for split in splits.values()}
            if splits[corpus][piece.name] == "valid" and not elsewhere & {"train", "test"} and piece.name not in names:
                names.add(piece.name)
                chosen.append(piece)
    return chosen


def pedalled_copy(root: Path, out: Path, soundfont: str) -> None:
    """Copy the dataset ``root`` to ``out`` with every valid performance re-synthesized sustain-pedalled (seeded by
    its place in name order); its spectrograms are replaced, at their old length (the ground truth is unchanged)."""
    import shutil

    import numpy as np
    from tqdm.auto import tqdm

    from sfgym.data.augment import AugmentSettings, augment_notes
    from sfgym.data.dataset import SAMPLE_RATE
    from sfgym.data.midi import parse_midi
    from sfgym.data.msmd import midi_bytes, notes_to_midi
    from sfgym.data.spectrogram import spectrogram_from_audio
    from sfgym.data.synth import synthesize_midi

    if out.exists():
        raise SystemExit(f"{out} exists: remove it first")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(root, staging)
    settings = AugmentSettings(pedal_probability=1.0, velocity_scale=(1.0, 1.0), velocity_jitter=0.0)
    performances = sorted((staging / "valid" / "performance").glob("*.mid"))
    for index, midi in enumerate(tqdm(performances, desc="pedalling")):
        played = sorted(parse_midi(str(midi)).instruments[0].notes, key=lambda note: (note.start, note.pitch))
        notes = np.array([[note.start, note.pitch, note.end - note.start] for note in played])
        velocities = np.array([note.velocity for note in played])
        sounding, velocities = augment_notes(notes, velocities, np.random.default_rng(index), settings)
        audio = synthesize_midi(midi_bytes(notes_to_midi(sounding, velocities=velocities)), soundfont=soundfont,
                                sample_rate=SAMPLE_RATE)
        target = staging / "valid" / "spectrogram" / f"{midi.stem}.spec78.npy"
        old = np.load(target)
        spectrogram = spectrogram_from_audio(audio, SAMPLE_RATE)[:, : old.shape[1]]
        kept = np.zeros_like(old)
        kept[:, : spectrogram.shape[1]] = spectrogram
        np.save(target, kept)
    staging.rename(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="dataset root to write")
    parser.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2", help="the piano (.sf2)")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: number of CPUs)")
    parser.add_argument("--pedal", type=Path, default=None, help="then write a sustain-pedalled copy here")
    args = parser.parse_args()

    from sfgym.data.dataset import BuildConfig, build_dataset

    config = BuildConfig(tempo_ratios=(0.75, 1.3), soundfonts=(args.soundfont,), timing="human",
                         timing_settings=ROUGH_TIMING, split_fractions=(0.0, 1.0, 0.0), seed=0)
    build_dataset(args.out, held_out_scores(), config, workers=args.workers)
    if args.pedal is not None:
        pedalled_copy(args.out, args.pedal, args.soundfont)


if __name__ == "__main__":
    main()
