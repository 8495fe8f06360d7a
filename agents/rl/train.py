"""``sfgym train rl``: train a PPO / A2C / RecurrentPPO velocity agent on MSMDFollow-v0.

One YAML config per run (:mod:`agents.rl.config`); a run directory receives::

    config.yaml               the resolved config (after command-line overrides), written first
    status.json               running, interrupted (Ctrl-C: --resume continues it) or complete
    best_model.zip            the model with the best validation TR (model selection)
    best.json                 its step and validation metrics
    final_model.zip           the model after the last step (also when interrupted)
    last_model.zip            the training model itself (at every checkpoint and at the end): --resume
    learning_curve.csv/.png   validation TR (and TUE, error) against environment steps
    checkpoints/step_N.zip    periodic checkpoints (checkpoint_every_steps)
    tensorboard/              TensorBoard logs, when tensorboard is installed

Every model file loads as a follower with :func:`agents.rl.load_follower`.

Hybrid training: ``--init-from CHECKPOINT`` copies the trunk of a supervised follower or a trunk
pre-training run into the policy's features extractor before the first step (the trunk's settings
come from the checkpoint; the config's ``trunk`` section only overrides ``dropout`` or checks), and
``--freeze-trunk-steps N`` keeps it fixed for the first N steps, so that the freshly initialized
heads do not wreck it with their first, noisy gradients. ``frozen_trunk: true`` keeps it fixed for the whole run and trains the heads on
its features looked up per piece (:mod:`agents.rl.frozen_trunk`); the saved models are ordinary
image-observation models all the same.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import multiprocessing
import signal
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any


from agents import runs
from agents.config_files import find_config, load_yaml_with_overrides, mapping, read_yaml_config
from agents.rl.callbacks import (AtomicCheckpointCallback, FreezeTrunkCallback, PolicyAverageCallback, ProgressCallback,
                                 StopRequestCallback, TimeBudgetCallback, TrackingEvalCallback, BEST_JSON, BEST_MODEL)
from agents.rl.config import RLConfig, algorithm_class, config_from_dict, policy_name, with_checkpoint_trunk
from agents.rl.curves import read_curve_csv
from agents.rl.extractor import TrunkExtractor, load_supervised_trunk, policy_trunks
from agents.rl.follower import save_model
from agents.rl.frozen_trunk import FrozenTrunkObservations, TrunkFeaturesExtractor, TrunkFeatureTables, export_image_model
from agents.runs import Budget, RunDirectory, StopRequest
from sfgym.data.msmd import load_canonical_first
from sfgym.data.piece import Piece
from sfgym.envs import MSMDFollowEnv

TRAINER = "rl"
FINAL_MODEL = "final_model.zip"
LAST_MODEL = "last_model.zip"
"""The training model itself (for a frozen-trunk run: the one on looked-up features): what --resume loads."""
SEED_KEY = "seed"
"""The config key of the run's seed (what ``sfgym sweep --seeds`` sets)."""
RESUME_FILE = LAST_MODEL
"""The file ``--resume`` continues from: a sweep resumes a trial that has it, and starts one without it again."""
SELECTION_FIGURE = "valid_tr"
"""The figure ``best_model.zip`` is chosen on (higher is better), first of :func:`selection_figures`."""
RESUMABLE_KEYS = ("total_timesteps", "max_minutes", "device", "torch_threads", "data", "vec_env", "progress_bar",
                  "checkpoint_every_steps")
"""Config keys a resumed run may change (budgets and where it runs); any other difference is an error."""


# ---------------------------------------------------------------------------- building blocks
def make_training_env(config: RLConfig, data: Path, tables=None):
    """``n_envs`` seeded, Monitor-wrapped copies of the environment on the train split of ``data`` and of the
    config's ``extra_train_dirs``.

    ``dummy``: all envs in this process, sharing one list of pieces. ``subproc``: one process per
    env, each loading the splits itself (pieces are not shipped through pipes). With ``tables`` (a
    :class:`~agents.rl.frozen_trunk.TrunkFeatureTables`), every env observes the frozen trunk's features.
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    roots = [str(root) for root in (data, *extra_train_roots(config))]
    if config.vec_env == "dummy":
        env_kwargs = {**config.env, "data": _train_pieces(roots)}
        vec_env_cls = DummyVecEnv
    else:
        env_kwargs = {**config.env, "train_roots": roots}
        vec_env_cls = SubprocVecEnv
    wrapper = {}
    if tables is not None:
        wrapper = {"wrapper_class": FrozenTrunkObservations, "wrapper_kwargs": {"tables": tables}}
    return make_vec_env(_environment, n_envs=config.n_envs, seed=config.seed, env_kwargs=env_kwargs,
                        vec_env_cls=vec_env_cls, **wrapper)


def extra_train_roots(config: RLConfig) -> list[Path]:
    """The dataset roots of the config's ``extra_train_dirs`` (an error names one that does not exist)."""
    return [runs.data_root(extra, f"{config.source}: extra_train_dirs") for extra in config.extra_train_dirs]


def _train_pieces(roots: list[str]) -> list[Piece]:
    """The train splits of ``roots`` in one list. A name an earlier root already has (the same score in two
    datasets, played otherwise) gets the root's folder name: ``name#folder`` (episodes and the frozen trunk's
    tables are keyed by name)."""
    pieces, names = [], set()
    for root in roots:
        for piece in load_canonical_first(root, "train"):
            if piece.name in names:
                piece = copy.copy(piece)  # not dataclasses.replace: nothing is derived again
                piece.name = f"{piece.name}#{Path(root).name}"
            names.add(piece.name)
            pieces.append(piece)
    return pieces


def _environment(train_roots: list[str] | None = None, **kwargs):
    """An ``MSMDFollowEnv`` (on the train splits of ``train_roots``, loaded here, when given); in a worker process
    of a ``subproc`` run, one that ignores Ctrl-C (the main process stops the run and saves it; the workers must
    live until it has)."""
    if multiprocessing.current_process().name != "MainProcess":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if train_roots is not None:
        kwargs["data"] = _train_pieces(train_roots)
    return MSMDFollowEnv(**kwargs)


def build_model(config: RLConfig, env, tensorboard_log: str | None = None, tabled_trunk: bool = False):
    """The SB3 model of ``config`` on ``env``, its features extractor the shared trunk (or, with
    ``tabled_trunk``, the pass-through extractor on a frozen trunk's looked-up features)."""
    kwargs = config.algorithm_kwargs()
    if tabled_trunk:
        kwargs["policy_kwargs"].update(features_extractor_class=TrunkFeaturesExtractor)
    else:
        kwargs["policy_kwargs"].update(features_extractor_class=TrunkExtractor,
                                       features_extractor_kwargs=config.trunk.settings())
    cls = algorithm_class(config.algorithm)
    return cls(policy_name(config.algorithm), env, seed=config.seed, device=config.device,
               tensorboard_log=tensorboard_log, verbose=0, **kwargs)


def model_metadata(config: RLConfig) -> dict[str, Any]:
    """What :func:`agents.rl.follower.load_follower` needs besides the weights."""
    return {"algorithm": config.algorithm, "env": config.env, "trunk": config.trunk.settings(),
            "init_from": config.init_from, "frozen_trunk": config.frozen_trunk, "seed": config.seed}


def default_run_dir(config: RLConfig) -> Path:
    stem = Path(config.source).stem if config.source != "<memory>" else config.algorithm
    return Path("runs") / "rl" / f"{stem}-{datetime.now():%Y%m%d-%H%M%S}"


# ---------------------------------------------------------------------------- training
def train(config: RLConfig, run_dir: str | Path, *, resume: bool = False) -> dict[str, Any]:
    """Train per ``config`` into ``run_dir`` (``resume``: continue the run there); returns a summary (best
    and final validation metrics).

    Ctrl-C stops the run at the next step; it is then evaluated and saved like a finished one (final
    model, ``last_model.zip``) and marked interrupted."""
    run = RunDirectory(run_dir, TRAINER, finished_markers=(FINAL_MODEL,))
    config = with_checkpoint_trunk(config)  # fail now, before anything is written, if the trunks cannot match
    previous = _resumed_run(run, config) if resume else {}
    extra_train_roots(config)  # a missing one fails now, before anything is written
    runs.setup_torch(None, config.device, config.torch_threads)  # threads; and a GPU asked for must be there
    run.start(config.to_dict(), resume, resume_from=LAST_MODEL)

    data = runs.data_root(config.data, config.source)
    evaluation = config.evaluation
    eval_pieces = load_canonical_first(data, evaluation.split, evaluation.max_pieces)
    tensorboard_log = str(run / "tensorboard") if importlib.util.find_spec("tensorboard") else None
    deployable, tables = None, None
    if config.frozen_trunk:
        deployable, tables = _frozen_trunk_setup(config, eval_pieces)
    env = make_training_env(config, data, tables)
    try:
        if resume:
            model = algorithm_class(config.algorithm).load(run / LAST_MODEL, env=env, device=config.device,
                                                           tensorboard_log=tensorboard_log)
        else:
            model = build_model(config, env, tensorboard_log, tabled_trunk=config.frozen_trunk)
            if config.init_from and not config.frozen_trunk:
                load_supervised_trunk(model.policy, config.init_from)
        metadata = model_metadata(config)
        budget = Budget(config.max_minutes, spent_s=previous.get("elapsed_s", 0.0))
        callbacks = []
        if config.policy_average is not None:  # first: the others evaluate and save its average
            averager = PolicyAverageCallback(config.policy_average)
            deployable = averager.deployable(deployable)
            callbacks.append(averager)
        with StopRequest() as stop:
            evaluator = TrackingEvalCallback(
                eval_pieces, run.path, every_steps=evaluation.every_steps, env_kwargs=config.env, metadata=metadata,
                deterministic=evaluation.deterministic, seed=config.seed, deployable=deployable, verbose=1,
                rows=previous.get("rows", ()), best=previous.get("best"), spent_s=budget.elapsed_s)
            time_budget, interruption = TimeBudgetCallback(budget, verbose=1), StopRequestCallback(stop)
            callbacks += [evaluator, time_budget, interruption]
            if config.checkpoint_every_steps:
                callbacks.append(AtomicCheckpointCallback(run.path, config.checkpoint_every_steps, metadata,
                                                          deployable=deployable, resume_path=run / LAST_MODEL))
            if config.freeze_trunk_steps:
                callbacks.append(FreezeTrunkCallback(config.freeze_trunk_steps, verbose=1))
            if config.progress_bar:
                callbacks.append(ProgressCallback(config.total_timesteps, budget))
            start = time.time()
            model.learn(total_timesteps=max(config.total_timesteps - model.num_timesteps, 0), callback=callbacks,
                        tb_log_name="run", reset_num_timesteps=not resume)
        save_model(model if deployable is None else deployable(model), run / FINAL_MODEL, metadata)
        save_model(model, run / LAST_MODEL, metadata)
    finally:
        env.close()

    summary = {"steps": int(model.num_timesteps), "seconds": round(time.time() - start, 1),
               "best": evaluator.best, "final": evaluator.rows[-1]}
    run.write_json("summary.json", summary)
    if interruption.stopped_at is not None:
        run.mark(runs.INTERRUPTED, steps=summary["steps"], elapsed_s=budget.elapsed_s)
        print(f"interrupted at step {summary['steps']}; continue with --resume --out {run.path}")
    else:
        stopped = "time budget" if time_budget.stopped_at is not None else "total_timesteps"
        run.mark(runs.COMPLETE, stopped=stopped, steps=summary["steps"], elapsed_s=budget.elapsed_s)
    return summary


def _resumed_run(run: RunDirectory, config: RLConfig) -> dict[str, Any]:
    """What the run in ``run`` left for ``--resume``: its evaluations, best row and time spent; an error
    when there is nothing to resume or ``config`` differs from the run's beyond :data:`RESUMABLE_KEYS`."""
    if not (run / LAST_MODEL).is_file():
        raise FileNotFoundError(f"{run.path}: nothing to resume (no {LAST_MODEL}); start the run without --resume")
    saved = with_checkpoint_trunk(config_from_dict(read_yaml_config(run / runs.CONFIG), str(run / runs.CONFIG)))
    runs.check_resumable(run / runs.CONFIG, saved.to_dict(), config.to_dict(), RESUMABLE_KEYS)
    status = run.status() or {}
    best = json.loads((run / BEST_JSON).read_text()) if (run / BEST_JSON).is_file() else None
    counts = ("step", "onsets", "onsets_reached", "runs")  # read back as floats: written as they were
    rows = [{key: int(value) if key in counts else value for key, value in row.items()} for row in read_curve_csv(run.path)]
    return {"rows": rows, "best": best, "elapsed_s": float(status.get("elapsed_s") or 0.0)}


def _frozen_trunk_setup(config: RLConfig, pieces: list[Piece]):
    """For ``frozen_trunk``: the function that turns the tabled model into an image model, and the tables.

    The image model (built on an environment of one evaluation piece, with the supervised trunk
    loaded) is made once; each export copies the current heads into it.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    image_env = DummyVecEnv([lambda: MSMDFollowEnv(data=pieces[:1], **config.env)])
    with warnings.catch_warnings():  # its rollout buffer is never used: SB3's batch-size remark is moot
        warnings.simplefilter("ignore", UserWarning)
        image_model = build_model(config, image_env)
    load_supervised_trunk(image_model.policy, config.init_from)
    trunk = next(policy_trunks(image_model.policy))
    env = image_env.envs[0].unwrapped
    tables = TrunkFeatureTables(trunk, score_window=env.score_window, score_factor=env.score_factor)
    return (lambda model: export_image_model(model, image_model)), tables


def selection_figures(run_dir: str | Path) -> dict[str, Any]:
    """The best evaluation's valid TR and TUE (``summary.json``), ``best_model.zip`` and the dataset: what a
    sweep tabulates (:func:`agents.runs.selection`)."""
    best = json.loads((Path(run_dir) / "summary.json").read_text()).get("best") or {}
    return runs.selection(run_dir, {"valid_tr": best.get("tr"), "valid_tue": best.get("tue")}, BEST_MODEL, "data")


# ---------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sfgym train rl``."""
    runs.add_run_arguments(parser, TRAINER, out_help="run directory (default: runs/rl/<config>-<date-time>)",
                           resume_help="continue the run in --out (interrupted, or with a raised budget) from its "
                                       "last_model.zip",
                           set_example="trunk.dropout=0.0 --set hyperparameters.n_steps=32")
    parser.add_argument("--init-from", metavar="CHECKPOINT",
                        help="initialize the policy's trunk from a supervised or trunk pre-training checkpoint "
                             "(a best.pt or its run directory); the trunk's settings come with it")
    parser.add_argument("--freeze-trunk-steps", type=int, metavar="N",
                        help="with --init-from: keep the loaded trunk frozen for the first N steps")
    parser.add_argument("--total-timesteps", type=int, metavar="N", help="override the config's total_timesteps")
    parser.add_argument("--max-minutes", type=float, metavar="M",
                        help="stop after M minutes of wall-clock time (override the config's max_minutes)")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument("--device", help="override the config's device (auto, cpu, cuda)")
    parser.add_argument("--n-envs", type=int, help="override the config's number of parallel environments")
    parser.add_argument("--torch-threads", type=int, metavar="N", help="override the config's torch_threads")
    parser.add_argument("--vec-env", choices=("subproc", "dummy"),
                        help="override the config's vec_env (dummy: all envs in this process)")


def config_from_arguments(args: argparse.Namespace) -> RLConfig:
    """The config file (with ``--resume`` and no ``--config``: the run's own) with the ``--set`` overrides and
    the options of :func:`add_arguments` applied, validated once, as a whole (an option may satisfy what
    another needs, e.g. ``--init-from`` for ``--set frozen_trunk=true``)."""
    if getattr(args, "config", None) is not None:
        path = find_config(args.config, TRAINER)
    elif getattr(args, "resume", False) and getattr(args, "out", None):
        path = Path(args.out) / runs.CONFIG
    else:
        raise ValueError("--config is required (e.g. --config ppo_frozen)")
    set_overrides = getattr(args, "overrides", None) or []
    raw, source = load_yaml_with_overrides(path, set_overrides, "RL config")
    raw = dict(mapping(raw, "the config", source))  # an empty file: the options alone
    options = {name: getattr(args, name, None) for name in
               ("init_from", "freeze_trunk_steps", "total_timesteps", "seed", "device", "data", "n_envs",
                "vec_env", "torch_threads", "max_minutes")}
    raw.update({name: value for name, value in options.items() if value is not None})
    if getattr(args, "no_progress", False):
        raw["progress_bar"] = False
    return config_from_dict(raw, source=source)


def main(args: argparse.Namespace) -> int:
    """Run ``sfgym train rl`` with parsed ``args``."""
    if getattr(args, "resume", False) and not getattr(args, "out", None):
        raise ValueError("--resume needs --out RUN_DIR (the run to continue)")
    config = config_from_arguments(args)
    run_dir = Path(args.out) if getattr(args, "out", None) else default_run_dir(config)
    print(f"training {config.algorithm} for {config.total_timesteps} steps into {run_dir}")
    summary = train(config, run_dir, resume=getattr(args, "resume", False))
    best = summary["best"]
    print(f"done in {summary['seconds']:.0f} s: best valid TR {best['tr']:.3f} at step {best['step']} "
          f"({run_dir / 'best_model.zip'}); learning curve in {run_dir / 'learning_curve.png'}")
    return 0


if __name__ == "__main__":
    runs.run_as_script("agents.rl.train", __doc__, add_arguments, main)
