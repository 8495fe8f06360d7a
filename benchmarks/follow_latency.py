"""Per-frame latency of live following: spectrogram frame extraction + follower step, in ms per frame.

    python benchmarks/follow_latency.py [--agents online_dtw,constant_tempo,oracle] [--piece NAME --data DIR]
                                        [--block 512] [--realtime] [--torch-threads 1]

Follows a performance the way ``sfgym follow`` does (:class:`sfgym.live.LiveFollowing`): the audio
arrives in blocks of ``--block`` samples (512 at 22.05 kHz = 23 ms, a usual sound-card buffer), each
spectrogram frame is computed as soon as its samples are in, and the follower steps as soon as its
observation is complete. Printed per follower:

- ``features``: streaming spectrogram cost per frame (all blocks' extraction time / frames);
- ``step``: follower ``act`` + environment ``step`` per frame (the latency minus the features);
- ``latency``: wall clock from the arrival of the audio block that completed a frame to the follower's new
  position (mean / median / 95th percentile / max): what a page-turner would wait for on top of the
  46 ms the frame's own window reaches past its centre.

By default the audio is fed as fast as possible (the latency is then pure computation; ``--realtime`` feeds it
at its own pace, which only adds idle time between blocks). The default piece is the real MSMD sample in
``tests/fixtures`` (42 s), synthesized from its MIDI; its score has no notated timing, so the score-side
baselines get a stand-in speed of 70 px/s (roughly the sample's own).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sfgym.threads import add_torch_threads_argument, torch_threads

REPO = Path(__file__).resolve().parent.parent
SAMPLE_SPLIT = REPO / "tests" / "fixtures" / "msmd_sample"
SAMPLE_PIECE = "Anonymous__lesgraces__lesgraces"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", default="online_dtw,constant_tempo,oracle")
    parser.add_argument("--piece", default=SAMPLE_PIECE)
    parser.add_argument("--data", type=Path, default=SAMPLE_SPLIT)
    parser.add_argument("--split", default=None)
    parser.add_argument("--block", type=int, default=512, help="samples per audio block")
    parser.add_argument("--score-speed", type=float, default=70.0, help="stand-in px/s for scores without timing")
    parser.add_argument("--realtime", action="store_true", help="feed the audio at its own pace")
    add_torch_threads_argument(parser)  # as `sfgym follow`: one thread unless told
    args = parser.parse_args()
    with torch_threads(args.torch_threads):
        run(args)


def run(args: argparse.Namespace) -> None:

    from agents.registry import make_follower
    from sfgym.data.audio import performance_audio
    from sfgym.data.lookup import find_piece_files
    from sfgym.data.msmd import load_piece
    from sfgym.data.systems import detect_system_bounds
    from sfgym.live import LiveFollowing, live_piece
    from sfgym.score.timing import stand_in_tempo

    files = find_piece_files(args.piece, args.data, args.split)
    piece = load_piece(files, cache_spectrogram=False)
    audio, rate, source = performance_audio(files)
    bounds = detect_system_bounds(piece.sheet)
    timeline = live_piece(piece.name, piece.sheet, piece.coords, piece.coord2onset, piece.n_frames,
                          notes=piece.notes, score_notes=piece.score_notes)
    print(f"{piece.name}: {len(audio) / rate:.1f} s ({source}), {len(bounds)} systems, blocks of {args.block} "
          f"samples ({1000 * args.block / rate:.1f} ms), {'real time' if args.realtime else 'as fast as possible'}")
    print(f"{'follower':<16} {'frames':>6} {'features':>9} {'step':>8} {'latency mean':>13} {'median':>7} "
          f"{'p95':>7} {'max':>7}   (ms per frame)")
    specs = [s.strip() for s in args.agents.split(",") if s.strip()]
    tempo = stand_in_tempo([(spec, spec) for spec in specs], timing_missing=piece.score_notes is None,
                           score_speed=args.score_speed, score_name=piece.name)
    for spec in specs:
        follower = make_follower(spec, **tempo.get(spec, {}))
        live = LiveFollowing(follower, timeline, bounds, truth_known=True)
        report = live.run(audio, rate, speed=1.0 if args.realtime else 0.0, block_size=args.block)
        live.close()
        n_frames = len(report.steps)
        feature_per_frame = float(np.sum(report.feature_ms)) / max(live.frames_computed, 1)
        latency = report.latency_summary()
        step_ms = latency["mean_ms"] - feature_per_frame
        print(f"{spec:<16} {n_frames:>6} {feature_per_frame:>9.2f} {step_ms:>8.2f} {latency['mean_ms']:>13.2f} "
              f"{latency['median_ms']:>7.2f} {latency['p95_ms']:>7.2f} {latency['max_ms']:>7.2f}")
        turns = ", ".join(f"{e.to_system + 1}@{e.frame / piece.fps:.2f}s ({e.delay_s:+.2f})" for e in report.events)
        print(f"{'':<16} page turns (system@time (delay vs truth)): {turns or 'none'}")


if __name__ == "__main__":
    main()
