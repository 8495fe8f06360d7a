"""How much does one ``MSMDFollow-v0`` step cost, compared with one CartPole step in the same run?

Both environments take seeded random actions; only the ``step()`` calls are timed (resets, which
follow every lost target, are timed separately). Each environment is measured bare
(``env.unwrapped``) and as ``gym.make`` returns it (with Gymnasium's checker and order wrappers).
The goal of issue 3: one MSMDFollow step costs at most 5 CartPole steps.

Usage::

    python benchmarks/env_step.py                      # toy pieces of realistic length
    python benchmarks/env_step.py --data DATASET_ROOT  # the pieces of a built dataset's split
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym

import sfgym  # noqa: F401  (registers MSMDFollow-v0)
from sfgym.data.synthetic import synthetic_piece


def time_steps(env: gym.Env, n_steps: int, seed: int) -> tuple[float, float]:
    """Steps per second of ``env.step`` with random actions, and the mean reset time in ms."""
    env.action_space.seed(seed)
    start = time.perf_counter()
    env.reset(seed=seed)
    reset_seconds, resets = time.perf_counter() - start, 1
    step_seconds = 0.0
    for _ in range(n_steps):
        action = env.action_space.sample()
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        step_seconds += time.perf_counter() - start
        if terminated or truncated:
            start = time.perf_counter()
            env.reset()
            reset_seconds += time.perf_counter() - start
            resets += 1
    return n_steps / step_seconds, 1000.0 * reset_seconds / resets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="dataset root or split directory (default: toy pieces)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--steps", type=int, default=20_000, help="timed steps per environment")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.data:
        data, what = args.data, f"{args.data} ({args.split})"
    else:
        # Two lengths: 1.5 min / 6,000 px (a typical MSMD piece) and 10 min / 40,000 px. A step must
        # cost the same on both: nothing per step may grow with the piece.
        data = [
            synthetic_piece("typical", n_onsets=240, frames_per_onset=8, px_per_onset=25, seed=args.seed),
            synthetic_piece("long", n_onsets=1500, frames_per_onset=8, px_per_onset=27, seed=args.seed + 1),
        ]
        what = ", ".join(f"{p.name}: {p.duration_s:.0f} s, {p.sheet_width} px" for p in data)
    print(f"MSMDFollow-v0 on {what}; {args.steps} random-action steps each\n")

    rows = []
    for label, make in [
        ("CartPole-v1", lambda: gym.make("CartPole-v1")),
        ("MSMDFollow-v0", lambda: gym.make("MSMDFollow-v0", data=data, split=args.split)),
        ("MSMDFollow-v0 (difference_channels)",
         lambda: gym.make("MSMDFollow-v0", data=data, split=args.split, difference_channels=True)),
    ]:
        for wrapped in (False, True):
            env = make()
            rate, reset_ms = time_steps(env if wrapped else env.unwrapped, args.steps, args.seed)
            env.close()
            rows.append((label, "gym.make" if wrapped else "bare", rate, reset_ms))

    cartpole = {kind: rate for label, kind, rate, _ in rows if label == "CartPole-v1"}
    print(f"{'environment':38s} {'wrappers':9s} {'steps/s':>9s} {'reset ms':>9s} {'cost in CartPole steps':>23s}")
    for label, kind, rate, reset_ms in rows:
        print(f"{label:38s} {kind:9s} {rate:9.0f} {reset_ms:9.3f} {cartpole[kind] / rate:23.2f}")


if __name__ == "__main__":
    main()
