"""Build ``rough``: a development set with rougher, more real-like timing than the training data, on scores and a
piano no follower here was trained on.

The valid scores of the default and ``piano-v2`` corpora (split seed 0, as every build here splits them; scores in
both corpora once), played at 0.75 and 1.3 of their notated tempo with human timing made rougher than the
training data's (``--timing-set``: strong rubato, a fermata at half the phrase ends, 20 % of the chords late by
50-200 ms, 30 ms onset jitter, more rolled chords), synthesized with FluidR3 (``apt-get install
fluid-soundfont-gm``), never a training piano. All 42 performances go to the ``valid`` split but one score's
(split fractions 0 / 1 / 0 leave one score in ``test``). The README's tracker settings were compared on it.

    python scripts/build_rough_dev.py --out data/rough [--soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2]
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
    """The valid scores of the default and piano-v2 corpora (default split, seed 0), each once."""
    from sfgym.data.corpus import corpus_pieces
    from sfgym.data.dataset import assign_splits

    chosen, names = [], set()
    for corpus in ("default", "piano-v2"):
        pieces = corpus_pieces(corpus)
        splits = assign_splits([piece.name for piece in pieces])
        for piece in pieces:
            if splits[piece.name] == "valid" and piece.name not in names:
                names.add(piece.name)
                chosen.append(piece)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="dataset root to write")
    parser.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2", help="the piano (.sf2)")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: number of CPUs)")
    args = parser.parse_args()

    from sfgym.data.dataset import BuildConfig, build_dataset

    config = BuildConfig(tempo_ratios=(0.75, 1.3), soundfonts=(args.soundfont,), timing="human",
                         timing_settings=ROUGH_TIMING, split_fractions=(0.0, 1.0, 0.0), seed=0)
    build_dataset(args.out, held_out_scores(), config, workers=args.workers)


if __name__ == "__main__":
    main()
