"""``sfgym train rl``: train a PPO / A2C / RecurrentPPO velocity agent on MSMDFollow-v0.

One YAML config per run (:mod:`agents.rl.config`); a run directory receives::

    config.yaml               the resolved config (after command-line overrides)
    best_model.zip            the model with the best validation TR (model selection)
    best.json                 its step and validation metrics
    final_model.zip           the model after the last step
    learning_curve.csv/.png   validation TR (and TUE, error) against environment steps
    checkpoints/step_N.zip    periodic checkpoints (checkpoint_every_steps)
    tensorboard/              TensorBoard logs, when tensorboard is installed

Every model file loads as a follower with :func:`agents.rl.load_follower`.

Hybrid training: ``--init-from SUPERVISED_CHECKPOINT`` copies a supervised follower's trunk into the
policy's features extractor before the first step, and ``--freeze-trunk-steps N`` keeps it fixed
for the first N steps, so that the freshly initialized heads do not wreck it with their first,
noisy gradients. ``frozen_trunk: true`` keeps it fixed for the whole run and trains the heads on
its features looked up per piece (:mod:`agents.rl.frozen_trunk`); the saved models are ordinary
image-observation models all the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from agents.rl.callbacks import (AtomicCheckpointCallback, FreezeTrunkCallback, TimeBudgetCallback,
                                 TrackingEvalCallback)
from agents.rl.config import RLConfig, algorithm_class, policy_name
from agents.rl.extractor import TrunkExtractor, check_trunk_settings, load_supervised_trunk
from agents.rl.follower import save_model
from sfgym.data.msmd import load_canonical_first
from sfgym.files import atomic_write_bytes
from sfgym.data.piece import Piece

FINAL_MODEL = "final_model.zip"


# ---------------------------------------------------------------------------- building blocks
def resolve_data(config: RLConfig) -> Path:
    """The dataset root (or split dir) of a config; the default dataset (built once) when unset."""
    if config.data is not None:
        path = Path(config.data).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{config.source}: data directory {path} does not exist")
        return path
    from sfgym.data.dataset import default_dataset_dir

    return default_dataset_dir()


def make_training_env(config: RLConfig, data: Path, tables=None):
    """``n_envs`` seeded, Monitor-wrapped copies of the environment on the train split.

    ``dummy``: all envs in this process, sharing one list of pieces. ``subproc``: one process per
    env, each loading the split itself (pieces are not shipped through pipes). With ``tables`` (a
    :class:`~agents.rl.frozen_trunk.TrunkFeatureTables`), every env observes the frozen trunk's features.
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    from sfgym.envs import MSMDFollowEnv

    if config.vec_env == "dummy":
        env_kwargs = {**config.env, "data": load_canonical_first(data, "train")}
        vec_env_cls = DummyVecEnv
    else:
        env_kwargs = {**config.env, "data": str(data), "split": "train"}
        vec_env_cls = SubprocVecEnv
    wrapper = {}
    if tables is not None:
        from agents.rl.frozen_trunk import FrozenTrunkObservations

        wrapper = {"wrapper_class": FrozenTrunkObservations, "wrapper_kwargs": {"tables": tables}}
    return make_vec_env(MSMDFollowEnv, n_envs=config.n_envs, seed=config.seed, env_kwargs=env_kwargs,
                        vec_env_cls=vec_env_cls, **wrapper)


def build_model(config: RLConfig, env, tensorboard_log: str | None = None, tabled_trunk: bool = False):
    """The SB3 model of ``config`` on ``env``, its features extractor the shared trunk (or, with
    ``tabled_trunk``, the pass-through extractor on a frozen trunk's looked-up features)."""
    kwargs = config.algorithm_kwargs()
    if tabled_trunk:
        from agents.rl.frozen_trunk import TrunkFeaturesExtractor

        kwargs["policy_kwargs"].update(features_extractor_class=TrunkFeaturesExtractor)
    else:
        kwargs["policy_kwargs"].update(features_extractor_class=TrunkExtractor,
                                       features_extractor_kwargs=dataclasses.asdict(config.trunk))
    cls = algorithm_class(config.algorithm)
    return cls(policy_name(config.algorithm), env, seed=config.seed, device=config.device,
               tensorboard_log=tensorboard_log, verbose=0, **kwargs)


def model_metadata(config: RLConfig) -> dict[str, Any]:
    """What :func:`agents.rl.follower.load_follower` needs besides the weights."""
    return {"algorithm": config.algorithm, "env": config.env, "trunk": dataclasses.asdict(config.trunk),
            "init_from": config.init_from, "frozen_trunk": config.frozen_trunk, "seed": config.seed}


def default_run_dir(config: RLConfig) -> Path:
    stem = Path(config.source).stem if config.source != "<memory>" else config.algorithm
    return Path("runs") / "rl" / f"{stem}-{datetime.now():%Y%m%d-%H%M%S}"


def _write_yaml(path: Path, data: dict) -> None:
    plain = json.loads(json.dumps(data))  # tuples → lists: plain YAML
    atomic_write_bytes(path, yaml.safe_dump(plain, sort_keys=False).encode())


# ---------------------------------------------------------------------------- training
def train(config: RLConfig, run_dir: str | Path) -> dict[str, Any]:
    """Train per ``config`` into ``run_dir``; returns a summary (best and final validation metrics)."""
    run_dir = Path(run_dir)
    if config.freeze_trunk_steps and not config.init_from:
        raise ValueError(f"{config.source}: freeze_trunk_steps needs init_from (a supervised checkpoint to freeze)")
    if config.init_from:  # fail now, before any data is loaded, if the trunks cannot match
        check_trunk_settings(config.init_from, dataclasses.asdict(config.trunk), config.source)
    if (run_dir / FINAL_MODEL).exists():
        raise ValueError(f"{run_dir}: already holds a finished run; choose another --out")
    if config.torch_threads is not None:
        # On a small shared CPU, torch's default (one thread per core) oversubscribes it badly.
        import torch

        torch.set_num_threads(config.torch_threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_yaml(run_dir / "config.yaml", config.to_dict())

    data = resolve_data(config)
    evaluation = config.evaluation
    eval_pieces = load_canonical_first(data, evaluation.split, evaluation.max_pieces)
    tensorboard_log = str(run_dir / "tensorboard") if importlib.util.find_spec("tensorboard") else None
    deployable, tables = None, None
    if config.frozen_trunk:
        deployable, tables = _frozen_trunk_setup(config, eval_pieces)
    env = make_training_env(config, data, tables)
    try:
        model = build_model(config, env, tensorboard_log, tabled_trunk=config.frozen_trunk)
        if config.init_from and not config.frozen_trunk:
            load_supervised_trunk(model.policy, config.init_from)
        metadata = model_metadata(config)
        callbacks = [
            TrackingEvalCallback(eval_pieces, run_dir, every_steps=evaluation.every_steps, env_kwargs=config.env,
                                 metadata=metadata, deterministic=evaluation.deterministic, seed=config.seed,
                                 deployable=deployable, verbose=1),
        ]
        if config.checkpoint_every_steps:
            callbacks.append(AtomicCheckpointCallback(run_dir, config.checkpoint_every_steps, metadata,
                                                      deployable=deployable))
        if config.freeze_trunk_steps:
            callbacks.append(FreezeTrunkCallback(config.freeze_trunk_steps, verbose=1))
        if config.max_minutes:
            callbacks.append(TimeBudgetCallback(config.max_minutes, verbose=1))

        start = time.time()
        model.learn(total_timesteps=config.total_timesteps, callback=callbacks, progress_bar=config.progress_bar,
                    tb_log_name="run")
        save_model(model if deployable is None else deployable(model), run_dir / FINAL_MODEL, metadata)
    finally:
        env.close()

    evaluator = callbacks[0]
    summary = {"steps": int(model.num_timesteps), "seconds": round(time.time() - start, 1),
               "best": evaluator.best, "final": evaluator.rows[-1]}
    atomic_write_bytes(run_dir / "summary.json", (json.dumps(summary, indent=2, default=float) + "\n").encode())
    return summary


def _frozen_trunk_setup(config: RLConfig, pieces: list[Piece]):
    """For ``frozen_trunk``: the function that turns the tabled model into an image model, and the tables.

    The image model (built on an environment of one evaluation piece, with the supervised trunk
    loaded) is made once; each export copies the current heads into it.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.rl.extractor import policy_trunks
    from agents.rl.frozen_trunk import TrunkFeatureTables, export_image_model
    from sfgym.envs import MSMDFollowEnv

    image_env = DummyVecEnv([lambda: MSMDFollowEnv(data=pieces[:1], **config.env)])
    with warnings.catch_warnings():  # its rollout buffer is never used: SB3's batch-size remark is moot
        warnings.simplefilter("ignore", UserWarning)
        image_model = build_model(config, image_env)
    load_supervised_trunk(image_model.policy, config.init_from)
    trunk = next(policy_trunks(image_model.policy))
    env = image_env.envs[0].unwrapped
    tables = TrunkFeatureTables(trunk, score_window=env.score_window, score_factor=env.score_factor)
    return (lambda model: export_image_model(model, image_model)), tables


# ---------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sfgym train rl``."""
    parser.add_argument("--config", required=True, help="RL config YAML (configs/rl/ppo.yaml, a2c.yaml, "
                                                        "recurrent_ppo.yaml, tiny.yaml)")
    parser.add_argument("--out", help="run directory (default: runs/rl/<config>-<date-time>)")
    parser.add_argument("--init-from", metavar="SUPERVISED_CHECKPOINT",
                        help="initialize the policy's trunk from a supervised follower's checkpoint")
    parser.add_argument("--freeze-trunk-steps", type=int, metavar="N",
                        help="with --init-from: keep the loaded trunk frozen for the first N steps")
    parser.add_argument("--total-timesteps", type=int, metavar="N", help="override the config's total_timesteps")
    parser.add_argument("--max-minutes", type=float, metavar="M",
                        help="stop after M minutes of wall-clock time (override the config's max_minutes)")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument("--device", help="override the config's device (auto, cpu, cuda)")
    parser.add_argument("--data", help="override the config's dataset root / split directory")
    parser.add_argument("--n-envs", type=int, help="override the config's number of parallel environments")
    parser.add_argument("--torch-threads", type=int, metavar="N", help="override the config's torch_threads")
    parser.add_argument("--vec-env", choices=("subproc", "dummy"),
                        help="override the config's vec_env (dummy: all envs in this process)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override any config value (repeatable), e.g. --set trunk.width=0.5 "
                             "--set hyperparameters.n_steps=32")


def config_from_arguments(args: argparse.Namespace) -> RLConfig:
    """The config file with the ``--set`` overrides and the options of :func:`add_arguments` applied,
    validated once, as a whole (an option may satisfy what another needs, e.g. ``--init-from`` for
    ``--set frozen_trunk=true``)."""
    from agents.config_files import apply_overrides, read_yaml_config
    from agents.rl.config import config_from_dict

    set_overrides = getattr(args, "overrides", None) or []
    raw = apply_overrides(read_yaml_config(args.config, "RL config"), set_overrides)
    options = {name: getattr(args, name, None) for name in
               ("init_from", "freeze_trunk_steps", "total_timesteps", "seed", "device", "data", "n_envs",
                "vec_env", "torch_threads", "max_minutes")}
    raw.update({name: value for name, value in options.items() if value is not None})
    if getattr(args, "no_progress", False):
        raw["progress_bar"] = False
    return config_from_dict(raw, source=f"{args.config} with --set" if set_overrides else str(args.config))


def main(args: argparse.Namespace) -> int:
    """Run ``sfgym train rl`` with parsed ``args``."""
    config = config_from_arguments(args)
    run_dir = Path(args.out) if getattr(args, "out", None) else default_run_dir(config)
    print(f"training {config.algorithm} for {config.total_timesteps} steps into {run_dir}")
    summary = train(config, run_dir)
    best = summary["best"]
    print(f"done in {summary['seconds']:.0f} s: best valid TR {best['tr']:.3f} at step {best['step']} "
          f"({run_dir / 'best_model.zip'}); learning curve in {run_dir / 'learning_curve.png'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m agents.rl.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    raise SystemExit(main(parser.parse_args()))
