"""Per-frame inference time of a supervised regressor following a piece, on one CPU core.

    python benchmarks/supervised_inference.py [--cell lstm --hidden 1024 --layers 2 --trunk-width 1.0]
                                              [--checkpoint RUN_DIR_OR_PT] [--threads 1] [--frames 400]

Drives ``MSMDFollow-v0`` (``action_type="position"``) over the real MSMD sample in ``tests/fixtures`` with a
:class:`~agents.supervised.follower.RegressorFollower` and times its ``act`` (observation → tensor, trunk,
recurrent step, head, action) frame by frame; the environment's own step is not counted. The default is the
seed paper's size: the Figure-3 trunk and a 2 × 1024 LSTM, with random weights (the time does not depend on
them; ``--checkpoint`` times a trained model instead). Also printed: the trunk alone and the recurrent core
alone on the same inputs, so one sees where the time goes. The goal is ≤ 10 ms per frame on one core.
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
    parser.add_argument("--checkpoint", type=Path, help="time this trained model instead (file or run dir)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core)")
    parser.add_argument("--frames", type=int, default=400, help="frames to time (after 20 warm-up frames)")
    parser.add_argument("--data", type=Path, default=SAMPLE_SPLIT, help="split directory of the piece to follow")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from agents.supervised.config import ModelConfig
    from agents.supervised.follower import RegressorFollower, load_follower
    from agents.supervised.model import PositionRegressor
    from sfgym.data.msmd import load_split
    from sfgym.envs import MSMDFollowEnv

    if args.checkpoint:
        follower = load_follower(args.checkpoint)
    else:
        torch.manual_seed(0)
        config = ModelConfig(cell=args.cell, hidden_size=args.hidden, num_layers=args.layers,
                             trunk_width=args.trunk_width, target=args.target)
        follower = RegressorFollower(PositionRegressor(config), name="benchmark")
    model = follower.model
    piece = load_split(args.data, progress=False)[0]
    env = MSMDFollowEnv(data=[piece], action_type="position", reward_threshold=1e9)  # never stop early

    warmup = 20
    act_ms: list[float] = []
    observations = []
    while len(act_ms) < warmup + args.frames:
        observation, info = env.reset(options={"piece": piece.name})
        follower.reset(piece)
        done = False
        while not done and len(act_ms) < warmup + args.frames:
            started = time.perf_counter()
            action = follower.act(observation, info)
            act_ms.append(1000 * (time.perf_counter() - started))
            if len(observations) < 64:
                observations.append(observation)
            observation, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
    act = np.array(act_ms[warmup:])

    # the parts, on the same observations, one frame at a time
    spectrograms = [torch.from_numpy(o["spectrogram"]).unsqueeze(0) for o in observations]
    scores = [torch.from_numpy(o["score"]).unsqueeze(0) for o in observations]
    trunk_ms, core_ms = [], []
    with torch.inference_mode():
        state = model.initial_state(1)
        for i in range(len(spectrograms) * 3):
            started = time.perf_counter()
            features = model.trunk(spectrograms[i % 64], scores[i % 64])
            middle = time.perf_counter()
            _, state = model.advance(features, state)
            ended = time.perf_counter()
            if i >= warmup:
                trunk_ms.append(1000 * (middle - started))
                core_ms.append(1000 * (ended - middle))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{model.describe()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"load average {load:.2f} on {os.cpu_count()} CPUs")
    print(f"piece {piece.name}: {len(act)} frames timed")
    print(f"act (whole frame)   {summary(act)}")
    print(f"  trunk             {summary(np.array(trunk_ms))}")
    print(f"  recurrent + head  {summary(np.array(core_ms))}")
    verdict = "meets" if np.median(act) <= 10.0 else "misses"
    print(f"per-frame inference: {np.median(act):.2f} ms median ({verdict} the 10 ms goal)")


if __name__ == "__main__":
    main()
