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
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.networks import default_device
from agents.supervised.checkpoint import BEST, LAST, read_checkpoint, save_checkpoint
from agents.supervised.config import SupervisedConfig, apply_overrides, config_differences, load_config, save_config
from agents.supervised.data import EpisodeBatch, SongCache, batches, load_songs, training_episode
from agents.supervised.model import PositionRegressor
from agents.supervised.rollout import rollout
from agents.supervised.validation import ValidationResult, constant_position_metrics, validate

RESUMABLE_KEYS = ("training.epochs", "training.max_minutes", "training.patience", "training.device",
                  "training.num_threads", "training.tensorboard")
"""Config keys a resumed run may change (budgets and where it runs); any other difference is an error."""

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
    """Train (or continue training) a regressor in ``run_dir``; returns the contents of ``metrics.json``."""
    run_dir = Path(run_dir)
    t = config.training
    device = default_device() if t.device == "auto" else torch.device(t.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("training.device: 'cuda' asked for, but torch sees no GPU (use 'auto' or 'cpu')")
    if t.num_threads:
        torch.set_num_threads(t.num_threads)

    torch.manual_seed(t.seed)
    model = PositionRegressor(config.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    rng = np.random.default_rng(t.seed)
    noise_generator = torch.Generator().manual_seed(t.seed + 1)
    state = RunState()

    if resume:
        state = _restore(run_dir, config, model, optimizer, rng, noise_generator, device)
        log(f"resuming {run_dir} after epoch {state.epoch}")
    elif (run_dir / LAST).exists():
        raise ValueError(f"{run_dir}: already holds a run ({LAST}); pass --resume to continue it or another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")

    train_dir, valid_dir = _split_dirs(config)
    cache = SongCache(train_dir, config.data.cache_size)
    valid_songs = load_songs(valid_dir, config.data.valid_max_songs)
    baseline = constant_position_metrics(valid_songs)
    log(f"{model.describe()} on {device}; {len(cache.names)} train songs ({train_dir}), "
        f"{len(valid_songs)} valid songs ({valid_dir}); constant-position baseline: valid TR {baseline['tr']:.3f}")
    writer = _tensorboard_writer(run_dir) if t.tensorboard else None

    started = time.monotonic() - state.elapsed_seconds
    budget_s = t.max_minutes * 60 if t.max_minutes else math.inf
    out_of_time = lambda: time.monotonic() - started >= budget_s  # noqa: E731

    while state.stopped is None:
        if state.epoch >= t.epochs:
            state.stopped = "epochs"
            break
        if out_of_time():
            state.stopped = "time budget"
            break
        if t.patience is not None and state.epochs_since_best >= t.patience:
            state.stopped = "patience"
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
            batch = EpisodeBatch.of(group, device=device)
            result = rollout(model, batch, jump_penalty=t.jump_penalty, noise_px=t.estimate_noise_px,
                             max_centre_error_px=t.max_centre_error_px, tbptt_steps=t.tbptt_steps,
                             optimizer=optimizer, grad_clip=t.grad_clip, generator=noise_generator,
                             on_chunk=out_of_time)
            squared, jump, steps = squared + result.squared_error_sum, jump + result.jump_sum, steps + result.n_steps
            if bar is not None:
                bar.update(result.n_steps)
                bar.set_postfix(loss=f"{(squared + t.jump_penalty * jump) / max(steps, 1):.4f}")
            if out_of_time():
                break
        if bar is not None:
            bar.close()

        valid = validate(model, valid_songs, jump_penalty=t.jump_penalty, batch_size=max(t.batch_songs, 16))
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
            save_checkpoint(run_dir / BEST, model, config, epoch=state.epoch, metrics=_clean(valid.metrics),
                            valid_loss=valid.loss)
        else:
            state.epochs_since_best += 1
        if t.patience is not None and state.epochs_since_best >= t.patience:
            state.stopped = "patience"
        elif out_of_time():
            state.stopped = "time budget"
        elif state.epoch >= t.epochs:
            state.stopped = "epochs"
        state.elapsed_seconds = time.monotonic() - started
        _save_last(run_dir, model, optimizer, config, state, rng, noise_generator)
        _write_history(run_dir, state.history)
        _plot_curves(run_dir, state.history)
        if writer is not None:
            for key, value in row.items():
                if key != "epoch":
                    writer.add_scalar(key, value, state.epoch)
            writer.flush()
        log(f"epoch {state.epoch}: train loss {row['train_loss']:.4f}, valid loss {valid.loss:.4f}, "
            f"valid TR {valid.tr:.3f}, mean error {valid.error_mean_px:.1f} px"
            + (" (best)" if improved else "") + f" [{row['seconds']:.0f} s]")

    if writer is not None:
        writer.close()
    summary = _summary(run_dir, config, state, baseline)
    _write_json(run_dir / "metrics.json", summary)
    return summary


# ---------------------------------------------------------------------------- resuming
def _restore(run_dir: Path, config: SupervisedConfig, model, optimizer, rng, noise_generator, device) -> RunState:
    last = run_dir / LAST
    if not last.is_file():
        raise FileNotFoundError(f"{run_dir}: nothing to resume (no {LAST}); start the run without --resume")
    payload = read_checkpoint(last)
    differences = [d for d in config_differences(payload["config"], config) if d.split(":")[0] not in RESUMABLE_KEYS]
    if differences:
        raise ValueError(f"{last}: the run was started with another config; a resumed run may change only "
                         f"{', '.join(RESUMABLE_KEYS)}. Differences (run vs now): {'; '.join(differences)}")
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
    return state  # a run that had stopped continues only if its budgets (epochs, minutes, patience) were raised


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
    return _clean({
        "run_dir": str(run_dir), "model": f"{config.model.cell} {config.model.num_layers}x{config.model.hidden_size}",
        "target": config.model.target, "jump_penalty": config.training.jump_penalty,
        "epochs_run": state.epoch, "best_epoch": state.best_epoch, "stopped": state.stopped,
        "minutes": state.elapsed_seconds / 60, "valid": best, "constant_position": _clean(baseline),
        "beats_constant_position": bool(best) and best["tr"] > baseline["tr"],
    })


def final_line(summary: dict[str, Any]) -> str:
    """The one line ``sfgym train supervised`` ends with."""
    valid, base = summary["valid"], summary["constant_position"]
    if not valid:
        return f"no epoch finished; nothing to report ({summary['run_dir']})"
    return (f"valid TR {valid['tr']:.3f}, mean error {valid['error_mean_px']:.1f} px "
            f"(best epoch {summary['best_epoch']} of {summary['epochs_run']}, stopped: {summary['stopped']}); "
            f"constant-position follower: TR {base['tr']:.3f}, mean error {base['error_mean_px']:.1f} px; "
            f"run: {summary['run_dir']}")


def _clean(value):
    """JSON-safe copy: NaN / inf → None, numpy scalars → Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_json(path: Path, data: dict) -> None:
    from sfgym.files import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def _write_history(run_dir: Path, history: list[dict]) -> None:
    from sfgym.files import atomic_write_bytes

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(run_dir / "history.csv", buffer.getvalue().encode())


def _plot_curves(run_dir: Path, history: list[dict]) -> None:
    """``curves.png``: train and valid loss per epoch (as the seed paper's Figure 4), valid TR and error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from sfgym.files import atomic_write_bytes

    epochs = [row["epoch"] for row in history]
    figure, (losses, tracking) = plt.subplots(1, 2, figsize=(10, 3.8))
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
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    atomic_write_bytes(run_dir / "curves.png", buffer.getvalue())


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
    from sfgym.data.msmd import find_split_dir

    if config.data.dir is None:
        from sfgym.data.dataset import default_dataset_dir

        root = default_dataset_dir()
    else:
        root = Path(config.data.dir).expanduser()
    return find_split_dir(root, config.data.train_split), find_split_dir(root, config.data.valid_split)


# ---------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sfgym train supervised``."""
    parser.add_argument("--config", type=Path, help="YAML config (configs/supervised/*.yaml); with --resume "
                        "optional: the run's own config is used")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/supervised/<config>-<time>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value, e.g. --set training.max_minutes=30 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    """Run ``sfgym train supervised`` with parsed arguments; prints the final validation line."""
    if args.resume and args.out is None:
        raise ValueError("--resume needs --out RUN_DIR (the run to continue)")
    if args.config is not None:
        config = load_config(args.config, args.overrides)
    elif args.resume:  # the run's own config, with any --set applied
        if not (args.out / LAST).is_file():
            raise FileNotFoundError(f"{args.out}: nothing to resume (no {LAST})")
        saved = read_checkpoint(args.out / LAST)["config"].to_dict()
        config = SupervisedConfig.from_dict(apply_overrides(saved, args.overrides), source=f"{args.out / LAST} with --set")
    else:
        raise ValueError("--config is required (e.g. --config configs/supervised/lstm.yaml)")
    run_dir = args.out or Path("runs") / "supervised" / f"{(args.config or Path('run')).stem}-{datetime.now():%Y%m%d-%H%M%S}"
    summary = train(config, run_dir, resume=args.resume, progress=not args.no_progress and sys.stderr.isatty())
    print(final_line(summary))
    return 0


__all__ = ["RESUMABLE_KEYS", "RunState", "add_arguments", "final_line", "main", "train", "validation_score"]
