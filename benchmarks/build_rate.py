"""Dataset build rate: pieces (scores) per minute and performances per minute.

    python benchmarks/build_rate.py [--pieces 12] [--workers 2] [--tempo-ratios 0.9,1.0,1.1] [--timing human] [--augment N]
                                    [--corpus piano-v2] [--ray]

Builds the first N scores of the default corpus (or of ``--corpus``) into a temporary directory with every step of the real
build (music21 reduction, verovio engraving, skia rasterization, midirenderer synthesis, spectrograms).
With ``--ray`` it builds them twice on one local Ray session of ``--workers`` CPUs, one score at a time and
then ``--workers`` at a time, and prints the two rates and their ratio (the same scores, in the same run).
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
    parser.add_argument("--ray", action="store_true", help="on local Ray: 1 worker, then --workers, in one run")
    args = parser.parse_args()
    config = BuildConfig(tempo_ratios=tuple(float(t) for t in args.tempo_ratios.split(",")), max_pieces=args.pieces,
                         timing=args.timing, augment=args.augment, corpus=args.corpus)
    if args.ray:
        import ray  # the ray extra: pip install -e ".[ray]"

        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
        rates = [timed_build(args, config, workers=1, ray=True), timed_build(args, config, workers=args.workers, ray=True)]
        ray.shutdown()
        print(f"{args.workers} Ray workers: {rates[1] / rates[0]:.2f}x the rate of one")
    else:
        timed_build(args, config, workers=args.workers)


def timed_build(args: argparse.Namespace, config: BuildConfig, workers: int, ray: bool = False) -> float:
    """Build into a temporary directory and print the rate; returns the pieces per minute."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        build_dataset(Path(tmp), corpus_pieces(args.corpus), config, workers=workers, progress=True, ray=ray)
        elapsed = time.perf_counter() - started
        manifest = json.loads((Path(tmp) / "manifest.json").read_text())
    scores = len(manifest["scores"])
    performances = sum(len(entry["performances"]) for entry in manifest["scores"])
    print(f"built {scores} scores ({performances} performances, {len(manifest['failed'])} failed) "
          f"with {workers} {'Ray ' if ray else ''}workers in {elapsed:.1f} s")
    print(f"build rate: {scores / elapsed * 60:.1f} pieces/min, {performances / elapsed * 60:.1f} performances/min")
    return scores / elapsed * 60


if __name__ == "__main__":
    main()
