"""RL training throughput: environment steps per second of PPO, image trunk against frozen tabled trunk.

    python benchmarks/rl_train_rate.py [--steps 4096] [--threads 1] [--data DATASET_ROOT_OR_SPLIT]

Times ``model.learn`` (rollouts and updates, no evaluation) for two setups on the same pieces:

- ``image trunk``: the shipped ``ppo`` as docs/results.md's CPU run sized it (quarter-width trunk,
  128 features, difference channels, 8 envs, 15-step rollouts): every step runs the convolutional
  trunk forward, every update backward.
- ``frozen trunk``: the shipped ``ppo_frozen`` (half-width trunk of 256 features, frozen, its
  features looked up per piece, :mod:`agents.rl.frozen_trunk`; 16 envs, 128-step rollouts). The
  trunk's weights do not change the time, so a freshly initialized one stands in for a trained one;
  building the per-piece tables is timed apart (it happens once per piece in a run).
- ``matching trunk``: the shipped ``ppo_matching`` (a frozen :class:`~agents.networks.MatchingTrunk`,
  column and sound embeddings looked up, the softmax over the window's columns computed per step).

The pieces default to a few toy pieces of realistic length; ``--data`` takes a built dataset's split.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4096, help="environment steps timed per setup")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core)")
    parser.add_argument("--data", type=Path, help="a dataset root or split directory (default: toy pieces)")
    args = parser.parse_args()

    import torch
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.rl.config import load_config
    from agents.rl.train import build_model
    from agents.networks import TrunkConfig
    from agents.pretraining.train import load_config as load_trunk_config
    from agents.pretraining.train import pretraining_model
    from agents.runs import save_checkpoint
    from agents.supervised.config import ModelConfig, SupervisedConfig
    from agents.supervised.model import PositionRegressor
    from sfgym.data.synthetic import synthetic_piece
    from sfgym.envs import MSMDFollowEnv

    torch.set_num_threads(args.threads)
    if args.data:
        from sfgym.data.msmd import find_split_dir, load_split

        pieces = load_split(find_split_dir(args.data, "valid"), progress=False)[:8]
    else:
        pieces = [synthetic_piece(f"toy_{i}", n_onsets=200, frames_per_onset=8, seed=i) for i in range(4)]
    print(f"{len(pieces)} pieces, {sum(p.n_frames for p in pieces)} frames; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)")

    image = load_config("ppo",
                        ["device=cpu", "n_envs=8", "trunk.width=0.25", "trunk.features=128"])
    image_env = DummyVecEnv([lambda: MSMDFollowEnv(data=pieces, **image.env)] * image.n_envs)
    rate = time_learn(build_model(image, image_env), args.steps)
    print(f"image trunk (ppo.yaml, quarter width):  {rate:8.0f} steps/s")

    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "trunk.pt"
        supervised = SupervisedConfig(model=ModelConfig(hidden_size=8, num_layers=1),
                                      trunk=TrunkConfig(width=0.5, features=256, dropout=0.0))
        save_checkpoint(checkpoint, "supervised", PositionRegressor(supervised.model, supervised.trunk),
                        supervised.to_dict(), supervised.trunk)
        frozen = load_config("ppo_frozen", [f"init_from={checkpoint}", "device=cpu"])
        rate, table_seconds = time_tabled(frozen, pieces, args.steps)
        print(f"frozen trunk (ppo_frozen.yaml, tables): {rate:8.0f} steps/s  "
              f"(+ {1000 * table_seconds / len(pieces):.0f} ms per piece to build its tables, once)")

        matching_checkpoint = Path(folder) / "matching.pt"
        pretraining = load_trunk_config("trunk_matching")
        save_checkpoint(matching_checkpoint, "trunk", pretraining_model(pretraining.trunk), pretraining.to_dict(),
                        pretraining.trunk)
        matching = load_config("ppo_matching",
                               [f"init_from={matching_checkpoint}", "device=cpu"])
        rate, table_seconds = time_tabled(matching, pieces, args.steps)
        print(f"matching trunk (ppo_matching.yaml):     {rate:8.0f} steps/s  "
              f"(+ {1000 * table_seconds / len(pieces):.0f} ms per piece to build its tables, once)")


def time_tabled(config, pieces, steps: int) -> tuple[float, float]:
    """``(steps/s, seconds to build the tables of all pieces)`` of PPO on a frozen trunk's tables."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.rl.extractor import load_supervised_trunk, policy_trunks
    from agents.rl.frozen_trunk import FrozenTrunkObservations, TrunkFeatureTables
    from agents.rl.train import build_model
    from sfgym.envs import MSMDFollowEnv

    with warnings.catch_warnings():  # a model only to hold the trunk: SB3's batch-size remark is moot
        warnings.simplefilter("ignore", UserWarning)
        probe = build_model(config, DummyVecEnv([lambda: MSMDFollowEnv(data=pieces[:1], **config.env)]))
    load_supervised_trunk(probe.policy, config.init_from)
    tables = TrunkFeatureTables(next(policy_trunks(probe.policy)))
    started = time.perf_counter()
    for piece in pieces:
        tables.tables(piece)
    table_seconds = time.perf_counter() - started
    env = DummyVecEnv([lambda: FrozenTrunkObservations(MSMDFollowEnv(data=pieces, **config.env), tables)]
                      * config.n_envs)
    return time_learn(build_model(config, env, tabled_trunk=True), steps), table_seconds


def time_learn(model, steps: int) -> float:
    """Environment steps per second of ``model.learn`` over ``steps`` steps (after one warm-up rollout)."""
    model.learn(total_timesteps=model.n_steps * model.n_envs)
    started = time.perf_counter()
    model.learn(total_timesteps=steps, reset_num_timesteps=False)
    return (model.num_timesteps - model.n_steps * model.n_envs) / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
