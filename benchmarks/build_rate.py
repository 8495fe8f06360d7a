"""Dataset build rate: pieces (scores) per minute and performances per minute.

    python benchmarks/build_rate.py [--pieces 12] [--workers 2] [--tempo-ratios 0.9,1.0,1.1] [--timing human] [--augment N]
                                    [--corpus piano-v2]

Builds the first N scores of the default corpus (or of ``--corpus``) into a temporary directory with every step of the real
build (music21 reduction, verovio engraving, skia rasterization, midirenderer synthesis, spectrograms).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sfgym.data.corpus import CORPORA, corpus_pieces
from sfgym.data.dataset import BuildConfig, build_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pieces", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tempo-ratios", default="0.9,1.0,1.1")
    parser.add_argument("--timing", default="smooth", choices=("smooth", "human"))
    parser.add_argument("--augment", type=int, default=0, help="augmented takes per train score")
    parser.add_argument("--corpus", default="default", choices=CORPORA, help="built-in corpus (piano-v2: songs first)")
    args = parser.parse_args()
    config = BuildConfig(tempo_ratios=tuple(float(t) for t in args.tempo_ratios.split(",")), max_pieces=args.pieces,
                         timing=args.timing, augment=args.augment, corpus=args.corpus)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        build_dataset(Path(tmp), corpus_pieces(args.corpus), config, workers=args.workers, progress=True)
        elapsed = time.perf_counter() - started
        manifest = json.loads((Path(tmp) / "manifest.json").read_text())
    scores = len(manifest["scores"])
    performances = sum(len(entry["performances"]) for entry in manifest["scores"])
    print(f"built {scores} scores ({performances} performances, {len(manifest['failed'])} failed) "
          f"with {args.workers} workers in {elapsed:.1f} s")
    print(f"build rate: {scores / elapsed * 60:.1f} pieces/min, {performances / elapsed * 60:.1f} performances/min")


if __name__ == "__main__":
    main()
