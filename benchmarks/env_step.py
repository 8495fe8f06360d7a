"""How much does one ``MSMDFollow-v0`` step cost, compared with one CartPole step in the same run?

Both environments take seeded random actions; only the ``step()`` calls are timed (resets, which
follow every lost target, are timed separately). Each environment is measured bare
(``env.unwrapped``) and as ``gym.make`` returns it (with Gymnasium's checker and order wrappers).
The measurements are interleaved in rounds and the best round counts (as ``timeit`` does), so that
other jobs on a shared machine disturb the ratio as little as possible.
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
    parser.add_argument("--steps", type=int, default=10_000, help="timed steps per environment and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best one counts")
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
    print(f"MSMDFollow-v0 on {what}; best of {args.rounds} rounds of {args.steps} random-action steps\n")

    best: dict[tuple[str, str], tuple[float, float]] = {}
    configurations = [
        ("CartPole-v1", lambda: gym.make("CartPole-v1")),
        ("MSMDFollow-v0", lambda: gym.make("MSMDFollow-v0", data=data, split=args.split)),
        ("MSMDFollow-v0 (difference_channels)",
         lambda: gym.make("MSMDFollow-v0", data=data, split=args.split, difference_channels=True)),
    ]
    environments = {(label, kind): make() for label, make in configurations for kind in ("bare", "gym.make")}
    for round_index in range(args.rounds):
        for (label, kind), env in environments.items():
            rate, reset_ms = time_steps(env.unwrapped if kind == "bare" else env, args.steps, args.seed + round_index)
            if rate > best.get((label, kind), (0.0, 0.0))[0]:
                best[label, kind] = (rate, reset_ms)
    for env in environments.values():
        env.close()

    print(f"{'environment':38s} {'wrappers':9s} {'steps/s':>9s} {'reset ms':>9s} {'cost in CartPole steps':>23s}")
    for (label, kind), (rate, reset_ms) in best.items():
        cartpole_rate = best["CartPole-v1", kind][0]
        print(f"{label:38s} {kind:9s} {rate:9.0f} {reset_ms:9.3f} {cartpole_rate / rate:23.2f}")


if __name__ == "__main__":
    main()
