"""Per-frame inference time of a supervised regressor following a piece, on one CPU core.

    python benchmarks/supervised_inference.py [--cell lstm --hidden 1024 --layers 2 --trunk-width 1.0]
                                              [--config lstm_matching] [--checkpoint RUN_DIR_OR_PT]
                                              [--threads 1] [--frames 400]

Drives ``MSMDFollow-v0`` (``action_type="position"``) over the real MSMD sample in ``tests/fixtures`` with a
:class:`~agents.supervised.follower.RegressorFollower` and times its ``act`` (observation → tensor, trunk,
recurrent step, head, action) frame by frame; the environment's own step is not counted. Timed twice:
incrementally (the follower's default: score features precomputed per piece — that is the ``reset`` time —
and the spectrogram branch streamed one column per frame, :mod:`agents.sliding`) and plain. The default model is the seed paper's size: the Figure-3 trunk and a 2 × 1024
LSTM, with random weights (the time does not depend on them; ``--config NAME`` times the model of a shipped
supervised config, any trunk kind, e.g. ``lstm_matching``, or in notated time, ``lstm_notated``, timed with its
:class:`~agents.supervised.notated.NotatedRegressorFollower`; ``--checkpoint`` a trained model). Also printed:
where the plain path's time goes. The goal is ≤ 10 ms per frame on one core for the seed-size model.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SAMPLE_SPLIT = REPO / "tests" / "fixtures" / "msmd_sample"


def summary(ms: np.ndarray) -> str:
    return (f"mean {ms.mean():6.2f}  median {np.median(ms):6.2f}  p95 {np.percentile(ms, 95):6.2f}  "
            f"max {ms.max():6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", default="lstm", choices=("srn", "gru", "lstm"))
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--trunk-width", type=float, default=1.0)
    parser.add_argument("--target", default="relative", choices=("relative", "absolute"))
    parser.add_argument("--config", help="time the model of this supervised config (a shipped name or a YAML file)")
    parser.add_argument("--checkpoint", type=Path, help="time this trained model instead (file or run dir)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core)")
    parser.add_argument("--frames", type=int, default=400, help="frames to time (after 20 warm-up frames)")
    parser.add_argument("--data", type=Path, default=SAMPLE_SPLIT, help="split directory of the piece to follow")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from agents.networks import TrunkConfig
    from agents.supervised.config import ModelConfig
    from agents.supervised.follower import RegressorFollower, load_follower
    from agents.supervised.model import PositionRegressor
    from sfgym.data.msmd import load_split
    from sfgym.envs import MSMDFollowEnv

    if args.checkpoint:
        model = load_follower(args.checkpoint).model
    elif args.config:
        from agents.config_files import find_config
        from agents.supervised.config import load_config

        torch.manual_seed(0)
        config = load_config(find_config(args.config, "supervised"))
        model = PositionRegressor(config.model, config.trunk)
    else:
        torch.manual_seed(0)
        config = ModelConfig(cell=args.cell, hidden_size=args.hidden, num_layers=args.layers, target=args.target)
        model = PositionRegressor(config, TrunkConfig(width=args.trunk_width))
    piece = load_split(args.data, progress=False)[0]
    env = MSMDFollowEnv(data=[piece], action_type="position", reward_threshold=1e9)  # never stop early

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{model.describe()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"load average {load:.2f} on {os.cpu_count()} CPUs; piece {piece.name} ({piece.sheet_width} px)")
    if model.config.space == "notated":  # one path: the trunk embeds the sound of the frame, the window is looked up
        from agents.supervised.notated import NotatedRegressorFollower

        # the sample has no score MIDI: a stand-in speed places its notes (the time does not depend on it)
        follower = NotatedRegressorFollower(model, name="benchmark", px_per_second=100.0)
        act, reset_s, _ = time_follower(follower, env, piece, args.frames)
        print(f"act, {'notated time:':23s}{summary(act)}  (reset {reset_s:.2f} s)")
        print(f"per-frame inference: {np.median(act):.2f} ms median")
        return
    medians = {}
    for incremental in (True, False):
        follower = RegressorFollower(model, name="benchmark", incremental=incremental)
        act, reset_s, observations = time_follower(follower, env, piece, args.frames)
        label = "incremental" if incremental else "plain"
        medians[label] = float(np.median(act))
        print(f"act, {label + ':':23s}{summary(act)}  (reset {reset_s:.2f} s)")
        if follower.plain_frames:
            print(f"  warning: {follower.plain_frames} frames took the plain path")

    # where the plain path's time goes, on the same observations
    spectrograms = [torch.from_numpy(o["spectrogram"]).unsqueeze(0) for o in observations]
    scores = [torch.from_numpy(o["score"]).unsqueeze(0) for o in observations]
    parts: dict[str, list[float]] = {"trunk (plain)": [], "recurrent + head": []}
    with torch.inference_mode():
        state = model.initial_state(1)
        for i in range(WARMUP + len(spectrograms) * 3):
            times = [time.perf_counter()]
            features = model.trunk(spectrograms[i % len(spectrograms)], scores[i % len(scores)])
            times.append(time.perf_counter())
            _, state = model.advance(features, state)
            times.append(time.perf_counter())
            if i >= WARMUP:
                for key, start, end in zip(parts, times, times[1:]):
                    parts[key].append(1000 * (end - start))
    for key, values in parts.items():
        print(f"  {key + ':':27s}{summary(np.array(values))}")
    best = min(medians.values())
    print(f"per-frame inference: {best:.2f} ms median ({'meets' if best <= 10.0 else 'misses'} the 10 ms goal; "
          f"plain path {medians['plain']:.2f} ms)")


WARMUP = 20


def time_follower(follower, env, piece, frames: int):
    """Per-frame ``act`` times (ms, after a warm-up), the reset time, and the first observations seen."""
    act_ms: list[float] = []
    observations = []
    reset_s = 0.0
    while len(act_ms) < WARMUP + frames:
        observation, info = env.reset(options={"piece": piece.name})
        started = time.perf_counter()
        follower.reset(piece)
        reset_s = time.perf_counter() - started
        done = False
        while not done and len(act_ms) < WARMUP + frames:
            started = time.perf_counter()
            action = follower.act(observation, info)
            act_ms.append(1000 * (time.perf_counter() - started))
            if len(observations) < 64:
                observations.append(observation)
            observation, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
    return np.array(act_ms[WARMUP:]), reset_s, observations


if __name__ == "__main__":
    main()
