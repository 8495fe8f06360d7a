"""``sfgym train supervised``: train a recurrent position regressor, validating after every epoch.

One epoch:

1. redraw the song cache (``data.cache_size`` train songs in memory) and draw ``data.songs_per_epoch``
   songs from it;
2. follow them in batches of ``training.batch_songs`` (:func:`~agents.supervised.rollout.rollout`),
   training with truncated backprop through time;
3. follow every validation song in full and score it (:func:`~agents.supervised.validation.validate`);
4. append a row to ``history.csv``, redraw ``curves.png``, save ``last.pt`` and — when the validation
   score (tracking ratio, then loss) improved — ``best.pt``.

The run stops after ``training.epochs`` epochs, after ``training.patience`` epochs without
improvement, or when ``training.max_minutes`` are spent; it then writes ``metrics.json`` (the best
epoch's validation metrics next to those of the constant-position follower) and prints one line with
the validation TR and mean error. ``--resume`` continues a stopped run from its ``last.pt``.

``--init-from CHECKPOINT`` (``training.init_from``) starts the model's trunk from a pre-trained one
(``sfgym train trunk``, or another supervised run); its trunk settings must be the config's (checked
before the run directory is made). ``training.freeze_trunk: true`` keeps it fixed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents import runs
from agents.config_files import apply_overrides, find_config
from agents.runs import BEST, LAST, Budget, RunDirectory, StopRequest, check_resumable
from agents.supervised.checkpoint import read_checkpoint, save_checkpoint
from agents.supervised.config import SupervisedConfig, check_init_trunk, load_config
from agents.supervised.data import EpisodeBatch, SongCache, batches, load_songs, training_episode
from agents.supervised.model import PositionRegressor
from agents.supervised.notated import NotatedTables, notated_rollout
from agents.supervised.rollout import FrozenTrunkTables, rollout
from agents.supervised.validation import ValidationResult, constant_position_metrics, validate
from sfgym.data.msmd import find_split_dir

RESUMABLE_KEYS = ("training.epochs", "training.max_minutes", "training.patience", "training.device",
                  "training.num_threads", "training.tensorboard")
"""Config keys a resumed run may change (budgets and where it runs); any other difference is an error."""

SEED_KEY = "training.seed"
"""The config key of the run's seed (what ``sfgym sweep --seeds`` sets)."""
RESUME_FILE = LAST
"""The file ``--resume`` continues from: a sweep resumes a trial that has it, and starts one without it again."""
SELECTION_FIGURE = "valid_tr"
"""The figure the best checkpoint is chosen on (higher is better), first of :func:`selection_figures`."""

HISTORY_COLUMNS = ("epoch", "train_loss", "train_squared_error", "valid_loss", "valid_squared_error", "valid_tr",
                   "valid_tue", "valid_error_mean_px", "valid_error_median_px", "songs", "steps", "seconds")


# ---------------------------------------------------------------------------- run state
@dataclass
class RunState:
    """What ``last.pt`` carries besides the weights, so that a resumed run continues where it stopped."""

    epoch: int = 0  # epochs finished
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: tuple[float, float] | None = None  # (valid TR, -valid loss): higher is better
    best_epoch: int | None = None
    epochs_since_best: int = 0
    elapsed_seconds: float = 0.0
    stopped: str | None = None  # why the run ended ("epochs", "patience", "time budget")


def validation_score(result: ValidationResult) -> tuple[float, float]:
    """What best-checkpoint selection maximizes: the tracking ratio, ties broken by the loss."""
    return (round(result.tr, 9), -result.loss)


# ---------------------------------------------------------------------------- training
def train(config: SupervisedConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True,
          log=print) -> dict[str, Any]:
    """Train (or continue training) a regressor in ``run_dir``; returns the contents of ``metrics.json``.

    Ctrl-C ends the epoch at the next batch and saves ``last.pt`` (the run is then marked interrupted;
    ``--resume`` continues it)."""
    run = RunDirectory(run_dir, "supervised", finished_markers=(LAST,))
    t = config.training
    device = runs.setup_torch(t.seed, t.device, t.num_threads)
    notated = config.model.space == "notated"
    if notated:  # a small core over looked-up tables, one frame at a time: the CPU's work
        device = torch.device("cpu")
    model = PositionRegressor(config.model, config.trunk)
    if not resume:  # (a resumed run's trunk comes with its last.pt)
        check_init_trunk(config)
        if t.init_from:
            trunk_state, _ = runs.read_trunk(t.init_from)
            model.trunk.load_trunk(trunk_state, source=str(t.init_from))
    if t.freeze_trunk:
        model.freeze_trunk()
    model.to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=t.lr,
                                 weight_decay=t.weight_decay)
    rng = np.random.default_rng(t.seed)
    noise_generator = torch.Generator().manual_seed(t.seed + 1)
    state = RunState()
    if resume:
        state = _restore(run.path, config, model, optimizer, rng, noise_generator, device)
        log(f"resuming {run.path} after epoch {state.epoch}")
    run.start(config.to_dict(), resume)

    train_dir, valid_dir = _split_dirs(config)
    cache = SongCache(train_dir, config.data.cache_size)
    valid_songs = load_songs(valid_dir, config.data.valid_max_songs)
    baseline = constant_position_metrics(valid_songs)
    log(f"{model.describe()} on {device}; {len(cache.names)} train songs ({train_dir}), "
        f"{len(valid_songs)} valid songs ({valid_dir}); constant-position baseline: valid TR {baseline['tr']:.3f}")
    writer = _tensorboard_writer(run.path) if t.tensorboard else None
    # a frozen trunk is looked up, not run
    if notated:
        tables = NotatedTables(model.trunk, capacity=max(512, config.data.cache_size))
    else:
        tables = FrozenTrunkTables(model.trunk) if model.trunk_frozen else None
    budget = Budget(t.max_minutes, spent_s=state.elapsed_seconds)

    with StopRequest() as stop:
        while not stop.requested:
            state.stopped = _stop_reason(state, t, budget)
            if state.stopped is not None:
                break
            epoch_started = time.monotonic()
            songs = cache.refresh(rng)
            drawn = rng.choice(len(songs), size=config.data.songs_per_epoch,
                               replace=config.data.songs_per_epoch > len(songs))
            episodes = [training_episode(songs[i], rng, random_start=config.data.random_start,
                                         max_steps=config.data.max_steps_per_song) for i in drawn]
            squared = jump = 0.0
            steps = 0
            model.train()
            bar = _progress(total=sum(e.n_steps for e in episodes), enabled=progress, epoch=state.epoch + 1)
            for group in batches(episodes, t.batch_songs):
                on_chunk = lambda: budget.spent() or stop.requested  # noqa: E731
                if notated:
                    result = notated_rollout(model, group, tables, loss_on=t.loss_on, jump_penalty=t.jump_penalty,
                                             noise_frames=t.estimate_noise_frames,
                                             max_centre_error_frames=t.max_centre_error_frames,
                                             tbptt_steps=t.tbptt_steps, optimizer=optimizer, grad_clip=t.grad_clip,
                                             generator=noise_generator, on_chunk=on_chunk)
                else:
                    result = rollout(model, EpisodeBatch.of(group, device=device), jump_penalty=t.jump_penalty,
                                     noise_px=t.estimate_noise_px, max_centre_error_px=t.max_centre_error_px,
                                     tbptt_steps=t.tbptt_steps, optimizer=optimizer, grad_clip=t.grad_clip,
                                     generator=noise_generator, on_chunk=on_chunk, tables=tables)
                squared, jump, steps = squared + result.squared_error_sum, jump + result.jump_sum, steps + result.n_steps
                if bar is not None:
                    bar.update(result.n_steps)
                    bar.set_postfix(loss=f"{(squared + t.jump_penalty * jump) / max(steps, 1):.4f}")
                if budget.spent() or stop.requested:
                    break
            if bar is not None:
                bar.close()
            if stop.requested:  # keep the weights; the epoch is run again on --resume
                break

            valid = validate(model, valid_songs, jump_penalty=t.jump_penalty, batch_size=max(t.batch_songs, 16),
                             tables=tables, loss_on=t.loss_on)
            state.epoch += 1
            row = {
                "epoch": state.epoch, "train_loss": (squared + t.jump_penalty * jump) / max(steps, 1),
                "train_squared_error": squared / max(steps, 1), "valid_loss": valid.loss,
                "valid_squared_error": valid.squared_error, "valid_tr": valid.tr, "valid_tue": valid.metrics["tue"],
                "valid_error_mean_px": valid.error_mean_px, "valid_error_median_px": valid.metrics["error_median_px"],
                "songs": len(episodes), "steps": steps, "seconds": time.monotonic() - epoch_started,
            }
            state.history.append(row)
            score = validation_score(valid)
            improved = state.best_score is None or score > state.best_score
            if improved:
                state.best_score, state.best_epoch, state.epochs_since_best = score, state.epoch, 0
                save_checkpoint(run / BEST, model, config, epoch=state.epoch, metrics=runs.json_safe(valid.metrics),
                                valid_loss=valid.loss)
            else:
                state.epochs_since_best += 1
            state.elapsed_seconds = budget.elapsed_s
            _save_last(run.path, model, optimizer, config, state, rng, noise_generator)
            run.write_history(state.history, HISTORY_COLUMNS)
            _plot_curves(run, state.history)
            if writer is not None:
                for key, value in row.items():
                    if key != "epoch":
                        writer.add_scalar(key, value, state.epoch)
                writer.flush()
            log(f"epoch {state.epoch}: train loss {row['train_loss']:.4f}, valid loss {valid.loss:.4f}, "
                f"valid TR {valid.tr:.3f}, mean error {valid.error_mean_px:.1f} px"
                + (" (best)" if improved else "") + f" [{row['seconds']:.0f} s]")
        interrupted = stop.requested
    if interrupted:
        state.stopped = "interrupted"

    state.elapsed_seconds = budget.elapsed_s
    _save_last(run.path, model, optimizer, config, state, rng, noise_generator)
    if writer is not None:
        writer.close()
    summary = _summary(run.path, config, state, baseline)
    run.write_json("metrics.json", summary)
    if interrupted:
        run.mark(runs.INTERRUPTED, epoch=state.epoch)
        log(f"interrupted after epoch {state.epoch}; continue with --resume --out {run.path}")
    else:
        run.mark(runs.COMPLETE, stopped=state.stopped, epoch=state.epoch)
    return summary


def _stop_reason(state: RunState, t, budget: Budget) -> str | None:
    """Which budget ends the run now, if any (checked before every epoch: a resumed run whose budgets
    were raised continues)."""
    if t.patience is not None and state.epochs_since_best >= t.patience:
        return "patience"
    if budget.spent():
        return "time budget"
    if state.epoch >= t.epochs:
        return "epochs"
    return None


# ---------------------------------------------------------------------------- resuming
def _restore(run_dir: Path, config: SupervisedConfig, model, optimizer, rng, noise_generator, device) -> RunState:
    last = run_dir / LAST
    if not last.is_file():
        raise FileNotFoundError(f"{run_dir}: nothing to resume (no {LAST}); start the run without --resume")
    payload = read_checkpoint(last)
    check_resumable(last, payload["config"].to_dict(), config.to_dict(), RESUMABLE_KEYS)
    model.load_weights(payload["model_state"], source=last)
    model.to(device)
    optimizer.load_state_dict(payload["optimizer"])
    rng.bit_generator.state = payload["numpy_rng"]
    noise_generator.set_state(payload["noise_rng"])
    torch.set_rng_state(payload["torch_rng"])
    run = payload["run"]
    state = RunState(epoch=run["epoch"], history=run["history"],
                     best_score=tuple(run["best_score"]) if run["best_score"] is not None else None,
                     best_epoch=run["best_epoch"], epochs_since_best=run["epochs_since_best"],
                     elapsed_seconds=run["elapsed_seconds"])
    return state  # a run that had stopped continues only if its budgets were raised; an interrupted one always


def _save_last(run_dir, model, optimizer, config, state: RunState, rng, noise_generator) -> None:
    run = {"epoch": state.epoch, "history": state.history,
           "best_score": list(state.best_score) if state.best_score is not None else None,
           "best_epoch": state.best_epoch, "epochs_since_best": state.epochs_since_best,
           "elapsed_seconds": state.elapsed_seconds, "stopped": state.stopped}
    save_checkpoint(run_dir / LAST, model, config, epoch=state.epoch, optimizer=optimizer.state_dict(),
                    numpy_rng=rng.bit_generator.state, noise_rng=noise_generator.get_state(),
                    torch_rng=torch.get_rng_state(), run=run)


# ---------------------------------------------------------------------------- outputs
def _summary(run_dir: Path, config: SupervisedConfig, state: RunState, baseline: dict) -> dict[str, Any]:
    best: dict[str, Any] = {}
    if state.best_epoch is not None:
        payload = read_checkpoint(run_dir / BEST)
        best = dict(payload["metrics"], loss=payload["valid_loss"])
    return runs.json_safe({
        "run_dir": str(run_dir), "model": f"{config.model.cell} {config.model.num_layers}x{config.model.hidden_size}",
        "target": config.model.target, "jump_penalty": config.training.jump_penalty,
        "epochs_run": state.epoch, "best_epoch": state.best_epoch, "stopped": state.stopped,
        "minutes": state.elapsed_seconds / 60, "valid": best, "constant_position": baseline,
        "beats_constant_position": bool(best) and best["tr"] > baseline["tr"],
    })


def selection_figures(run_dir: str | Path) -> dict[str, Any]:
    """The best epoch's valid TR and TUE (``metrics.json``), ``best.pt`` and the dataset: what a sweep
    tabulates (:func:`agents.runs.selection`)."""
    valid = json.loads((Path(run_dir) / "metrics.json").read_text()).get("valid") or {}
    return runs.selection(run_dir, {"valid_tr": valid.get("tr"), "valid_tue": valid.get("tue")}, BEST, "data.dir")


def final_line(summary: dict[str, Any]) -> str:
    """The one line ``sfgym train supervised`` ends with."""
    valid, base = summary["valid"], summary["constant_position"]
    if not valid:
        return f"no epoch finished; nothing to report ({summary['run_dir']})"
    return (f"valid TR {valid['tr']:.3f}, mean error {valid['error_mean_px']:.1f} px "
            f"(best epoch {summary['best_epoch']} of {summary['epochs_run']}, stopped: {summary['stopped']}); "
            f"constant-position follower: TR {base['tr']:.3f}, mean error {base['error_mean_px']:.1f} px; "
            f"run: {summary['run_dir']}")


def _plot_curves(run: RunDirectory, history: list[dict]) -> None:
    """``curves.png``: train and valid loss per epoch (as the seed paper's Figure 4), valid TR and error."""
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    figure, (losses, tracking) = runs.plot_figure(1, 2, figsize=(10, 3.8))
    losses.plot(epochs, [row["train_loss"] for row in history], marker="o", label="train")
    losses.plot(epochs, [row["valid_loss"] for row in history], marker="o", label="valid")
    losses.set(xlabel="epoch", ylabel="loss per step", title="loss", yscale="log")
    losses.legend()
    tracking.plot(epochs, [row["valid_tr"] for row in history], marker="o", color="tab:green")
    tracking.set(xlabel="epoch", ylabel="tracking ratio", title="validation", ylim=(0, 1.02))
    error_axis = tracking.twinx()
    error_axis.plot(epochs, [row["valid_error_mean_px"] for row in history], marker=".", color="tab:red")
    error_axis.set_ylabel("mean error (px)", color="tab:red")
    for axis in (losses, tracking):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    run.write_figure(figure)


def _progress(total: int, enabled: bool, epoch: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"epoch {epoch}", unit="step", leave=False, dynamic_ncols=True)


def _tensorboard_writer(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ValueError("training.tensorboard: true needs the 'tensorboard' package (pip install tensorboard)") from error
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def _split_dirs(config: SupervisedConfig) -> tuple[Path, Path]:
    root = runs.data_root(config.data.dir, "data.dir")
    return find_split_dir(root, config.data.train_split), find_split_dir(root, config.data.valid_split)


# ---------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sfgym train supervised``."""
    runs.add_run_arguments(parser, "supervised", out_help="run directory (default: runs/supervised/<config>-<time>)",
                           resume_help="continue the run in --out from its last.pt",
                           set_example="training.max_minutes=30")
    parser.add_argument("--init-from", metavar="CHECKPOINT",
                        help="start the trunk from this checkpoint's (a 'sfgym train trunk' or supervised run "
                             "directory, or its .pt); sets training.init_from")


def main(args: argparse.Namespace) -> int:
    """Run ``sfgym train supervised`` with parsed arguments; prints the final validation line."""
    if args.resume and args.out is None:
        raise ValueError("--resume needs --out RUN_DIR (the run to continue)")
    args.out = Path(args.out) if args.out is not None else None
    overrides = list(args.overrides) + ([f"data.dir={json.dumps(str(args.data))}"] if getattr(args, "data", None) else [])  # quoted: a path
    if getattr(args, "init_from", None):
        overrides.append(f"training.init_from={json.dumps(str(args.init_from))}")  # quoted: a path, never a number
    if args.config is not None:
        config_path = find_config(args.config, "supervised")
        config = load_config(config_path, overrides)
    elif args.resume:  # the run's own config, with any --set applied
        if not (args.out / LAST).is_file():
            raise FileNotFoundError(f"{args.out}: nothing to resume (no {LAST})")
        config_path = Path("run")
        saved = read_checkpoint(args.out / LAST)["config"].to_dict()
        config = SupervisedConfig.from_dict(apply_overrides(saved, overrides), source=f"{args.out / LAST} with --set")
    else:
        raise ValueError("--config is required (e.g. --config lstm_cpu)")
    run_dir = args.out or Path("runs") / "supervised" / f"{config_path.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    summary = train(config, run_dir, resume=args.resume, progress=not args.no_progress and sys.stderr.isatty())
    print(final_line(summary))
    return 0


__all__ = ["RESUMABLE_KEYS", "RESUME_FILE", "RunState", "SEED_KEY", "SELECTION_FIGURE", "add_arguments", "final_line", "main",
           "selection_figures", "train", "validation_score"]
