"""``sfgym train trunk``: pre-train the shared trunk to see where the music is in the score window.

A velocity agent needs one thing above all from its observation: how far the music has moved from
the centre of its score window. This trainer teaches the trunk exactly that, frame by frame, with
no recurrence to lean on: a sample is a frame of a performance and a score window centred up to
``max_offset_px`` away from the true position. Nothing but the pairing of audio and notation can
solve it — unlike a recurrent regressor, which can lower its loss by learning a typical speed. The
trunk then starts an RL run (``sfgym train rl --init-from RUN_DIR``, frozen with the shipped configs
``ppo_matching`` or ``ppo_frozen``). Two trunks, two objectives (each trunk class's
:data:`PRETRAINING_MODELS`):

- ``trunk.kind: figure3`` (the paper's :class:`~agents.networks.MultimodalTrunk`, config ``trunk_offset``):
  a linear head regresses the offset (in units of ``max_offset_px``; mean squared error).
- ``trunk.kind: matching`` (:class:`~agents.networks.MatchingTrunk`, config ``trunk_matching``): the
  trunk's own output, a distribution over the window's columns, is trained to name the true column
  (cross-entropy); the reported offset is that of its most probable column.

Training on the CPU is made affordable by computing each branch once per stretch of a performance:
a batch is a few stretches, and every sample of a stretch slices its features from the branch run
over the whole stretch (:func:`agents.sliding.branch_at_every_window` for the figure-3 trunk; the
matching trunk embeds the strip's columns once), about 20x less work than running the trunk per window.

A run directory (:class:`agents.runs.RunDirectory`) receives ``config.yaml``, ``best.pt`` (the best
validation error; what ``--init-from`` reads: the trunk's weights and its ``trunk`` settings),
``last.pt`` (everything ``--resume`` needs), ``history.csv``, ``curves.png`` (train and valid error per
evaluation) and ``status.json``. A run whose budget ends between evaluations, or that is interrupted
(Ctrl-C), is evaluated and saved first. The whole loop is in :func:`train`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from agents import runs
from agents.config_files import apply_overrides, build_sections, check_ranges, find_config, load_yaml_with_overrides
from agents.networks import MatchingTrunk, MultimodalTrunk, TrunkConfig, score_features_every_start
from agents.runs import BEST, LAST, Budget, BudgetProgress, RunDirectory, StopRequest
from agents.sliding import branch_at_every_window
from agents.supervised.data import (LOSS_THRESHOLD_PX, SCORE_COLUMNS, SCORE_FACTOR, SPEC_WINDOW, PreparedSong, prepare_song,
                                   score_window_start)
from sfgym.data.msmd import load_canonical_first

TRAINER = "trunk"
SEED_KEY = "training.seed"
"""The config key of the run's seed (what ``sfgym sweep --seeds`` sets)."""
RESUME_FILE = LAST
"""The file ``--resume`` continues from: a sweep resumes a trial that has it, and starts one without it again."""
SELECTION_FIGURE = "valid_mae_px"
"""The figure ``best.pt`` is chosen on (lower is better), first of :func:`selection_figures`."""
HISTORY_COLUMNS = ("step", "samples", "wall_s", "train_mae_px", "valid_mae_px", "valid_r2")
RESUMABLE_KEYS = ("training.max_steps", "training.max_minutes", "training.device", "training.num_threads")
"""Config keys a resumed run may change; any other difference is an error."""


# ---------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class TrunkData:
    """Samples: ``segments_per_batch`` stretches of ``segment_frames`` frames, each from a random
    train performance, with ``samples_per_segment`` (frame, offset) pairs each; offsets uniform in
    ±``max_offset_px`` (native px; 170 = the environment's loss threshold). A share ``onset_share`` of
    the frames are drawn one or two frames after an onset, where the sound names its notehead most
    clearly (between onsets the truth is interpolated). Validation: the same
    ``valid_samples`` pairs from the first ``valid_pieces`` valid performances every time.
    ``extra_train_dirs``: more dataset roots whose ``train_split`` is trained on too (other corpora,
    e.g. the piano parts of songs that ``sfgym train pretrained`` builds); validation stays on ``dir``."""

    dir: str | None = None
    train_split: str = "train"
    valid_split: str = "valid"
    extra_train_dirs: list[str] = field(default_factory=list)
    segment_frames: int = 200
    samples_per_segment: int = 64
    segments_per_batch: int = 4
    max_offset_px: float = LOSS_THRESHOLD_PX
    onset_share: float = 0.0
    valid_pieces: int = 14
    valid_samples: int = 1024


@dataclass(frozen=True)
class TrunkTraining:
    """Optimisation and bookkeeping (Adam; evaluation every ``eval_every_steps`` batches)."""

    max_steps: int = 100_000
    max_minutes: float | None = 30.0
    lr: float = 1e-3
    grad_clip: float | None = 1.0
    eval_every_steps: int = 100
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int | None = None


@dataclass(frozen=True)
class TrunkPretrainingConfig:
    """A trunk pre-training run: the ``trunk`` (:class:`~agents.networks.TrunkConfig`, the same section
    as in the RL config it starts), ``data`` and ``training`` sections."""

    trunk: TrunkConfig = field(default_factory=TrunkConfig)
    data: TrunkData = field(default_factory=TrunkData)
    training: TrunkTraining = field(default_factory=TrunkTraining)

    @classmethod
    def from_dict(cls, raw: Any, source: str) -> "TrunkPretrainingConfig":
        """Build and check a config from nested dicts (as read from YAML)."""
        config = cls(**build_sections(cls, raw, source))
        d, t = config.data, config.training
        check_ranges(source, positive={
            "data.segment_frames": d.segment_frames, "data.samples_per_segment": d.samples_per_segment,
            "data.segments_per_batch": d.segments_per_batch, "data.max_offset_px": d.max_offset_px,
            "data.valid_pieces": d.valid_pieces, "data.valid_samples": d.valid_samples,
            "training.max_steps": t.max_steps, "training.max_minutes": t.max_minutes, "training.lr": t.lr,
            "training.grad_clip": t.grad_clip, "training.eval_every_steps": t.eval_every_steps,
            "training.num_threads": t.num_threads,
        }, unit_interval={"data.onset_share": d.onset_share})
        if not all(isinstance(directory, str) for directory in d.extra_train_dirs):
            raise ValueError(f"{source}: 'data.extra_train_dirs' must be a list of paths, got {d.extra_train_dirs!r}")
        return config

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "trunk": self.trunk.settings()}


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrunkPretrainingConfig:
    """Read a YAML config file (a path, or a shipped config's name), apply ``--set`` overrides and check it."""
    raw, source = load_yaml_with_overrides(find_config(path, TRAINER), overrides, "trunk pre-training config")
    return TrunkPretrainingConfig.from_dict(raw, source=source)


# ---------------------------------------------------------------------------- the models and their batches
class OffsetRegressor(nn.Module):
    """The figure-3 trunk and a linear head: the window's offset from the truth, in units of max_offset_px."""

    def __init__(self, trunk: TrunkConfig):
        super().__init__()
        self.trunk = MultimodalTrunk(trunk)
        self.head = nn.Linear(trunk.features, 1)

    def forward_stretch(self, song: PreparedSong, frames: np.ndarray, starts: np.ndarray) -> torch.Tensor:
        """Predictions for the windows at ``frames`` (env frames) and score ``starts`` of one song, each
        branch run once over the stretch the windows cover."""
        trunk, device = self.trunk, self.head.weight.device
        first_frame, last_frame = int(frames.min()), int(frames.max())
        # padded spectrogram columns first_frame .. last_frame + 39 hold every window (40 zeros in front)
        spectrogram = song.spectrogram[:, first_frame : last_frame + SPEC_WINDOW].to(device)
        spectrogram_features = trunk.spectrogram_dense(
            branch_at_every_window(trunk.spectrogram_convs, spectrogram[None], SPEC_WINDOW))
        first_start, last_start = int(starts.min()), int(starts.max())
        strip = song.score[:, first_start : last_start + SCORE_COLUMNS].to(device, torch.float32) / 255.0
        score_features = score_features_every_start(trunk, strip)
        joint = trunk.joint(torch.cat([spectrogram_features[torch.as_tensor(frames - first_frame, device=device)],
                                       score_features[torch.as_tensor(starts - first_start, device=device)]], dim=1))
        return self.head(joint).squeeze(-1)

    def stretch_loss(self, song: PreparedSong, frames: np.ndarray, starts: np.ndarray, offsets: np.ndarray,
                     max_offset_px: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean squared error, predicted offsets)`` of samples of one stretch (offsets / max_offset_px)."""
        predicted = self.forward_stretch(song, frames, starts)
        loss = torch.mean((predicted - torch.from_numpy(offsets).to(predicted.device)) ** 2)
        return loss, predicted.detach()

    def predict_offsets(self, song: PreparedSong, frames: np.ndarray, starts: np.ndarray,
                        max_offset_px: float) -> torch.Tensor:
        return self.forward_stretch(song, frames, starts)


class ColumnMatcher(nn.Module):
    """A :class:`~agents.networks.MatchingTrunk` trained to say which window column the sound is written in."""

    def __init__(self, trunk: TrunkConfig):
        super().__init__()
        self.trunk = MatchingTrunk(trunk)
        self.centre_column = SCORE_COLUMNS // 2 - self.trunk.margin  # the feature of the window's centre

    def forward_stretch(self, song: PreparedSong, frames: np.ndarray, starts: np.ndarray) -> torch.Tensor:
        """Column logits ``(B, features_dim)``; the strip's columns are embedded once for the stretch."""
        trunk = self.trunk
        device = next(trunk.parameters()).device
        first_start, last_start = int(starts.min()), int(starts.max())
        strip = song.score[:, first_start : last_start + SCORE_COLUMNS].to(device, torch.float32) / 255.0
        columns = trunk.column_embeddings(strip[None])[0]
        windows = torch.as_tensor(starts - first_start, device=device)[:, None] + torch.arange(trunk.features_dim, device=device)
        # env frame f observes padded spectrogram columns f .. f + 39; the trunk hears the last match_frames
        heard = torch.as_tensor(frames, device=device)[:, None] + torch.arange(
            SPEC_WINDOW - trunk.config.match_frames, SPEC_WINDOW, device=device)
        sounds = trunk.sound_embeddings(song.spectrogram.to(device)[:, heard].permute(1, 0, 2))
        return torch.einsum("bwk,bk->bw", columns[windows], sounds)

    def target_columns(self, song: PreparedSong, frames: np.ndarray, starts: np.ndarray) -> torch.Tensor:
        """The feature index of the true position's column in each window."""
        true_columns = score_window_start(torch.from_numpy(song.piece.true_x[frames])) + SCORE_COLUMNS // 2
        return (true_columns - torch.from_numpy(starts) - self.trunk.margin).clamp(0, self.trunk.features_dim - 1)

    def stretch_loss(self, song: PreparedSong, frames: np.ndarray, starts: np.ndarray, offsets: np.ndarray,
                     max_offset_px: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cross-entropy, predicted offsets / max_offset_px)`` of samples of one stretch."""
        logits = self.forward_stretch(song, frames, starts)
        loss = nn.functional.cross_entropy(logits, self.target_columns(song, frames, starts).to(logits.device))
        return loss, self._offsets(logits.detach(), max_offset_px)

    def predict_offsets(self, song: PreparedSong, frames: np.ndarray, starts: np.ndarray,
                        max_offset_px: float) -> torch.Tensor:
        return self._offsets(self.forward_stretch(song, frames, starts), max_offset_px)

    def _offsets(self, logits: torch.Tensor, max_offset_px: float) -> torch.Tensor:
        """The most probable column's offset from the window centre, in units of max_offset_px."""
        columns = logits.argmax(dim=1).float() - self.centre_column
        return columns / SCORE_FACTOR / max_offset_px


def draw_stretch(song: PreparedSong, n_frames: int, n_samples: int, max_offset_px: float,
                 rng: np.random.Generator, onset_share: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(frames, window starts, offsets / max_offset_px)`` of samples from a random stretch of ``song``:
    frames from its first onset on (a share ``onset_share`` of them just after an onset), windows
    centred ``offset`` px before the true position."""
    piece = song.piece
    first = piece.first_onset_frame
    begin = int(rng.integers(first, max(first + 1, piece.n_frames - n_frames)))
    end = min(begin + n_frames, piece.n_frames)
    frames = rng.integers(begin, end, n_samples)
    onsets = piece.onset_frames[(piece.onset_frames >= begin) & (piece.onset_frames < end)]
    after_onset = rng.random(n_samples) < onset_share
    if len(onsets) and after_onset.any():  # the env's frame f hears frames up to f - 1
        heard = rng.choice(onsets, int(after_onset.sum())) + rng.integers(1, 3, int(after_onset.sum()))
        frames[after_onset] = heard.clip(max=piece.n_frames - 1)
    offsets = rng.uniform(-max_offset_px, max_offset_px, n_samples)
    centres = torch.from_numpy(piece.true_x[frames] - offsets)
    starts = score_window_start(centres).numpy().clip(0, song.score.shape[1] - SCORE_COLUMNS)
    return frames, starts, (offsets / max_offset_px).astype(np.float32)


PRETRAINING_MODELS: dict[str, type[OffsetRegressor] | type[ColumnMatcher]] = {
    MultimodalTrunk.KIND: OffsetRegressor, MatchingTrunk.KIND: ColumnMatcher}
"""The model that pre-trains each trunk kind of :data:`agents.networks.TRUNK_KINDS`."""


def pretraining_model(trunk: TrunkConfig) -> OffsetRegressor | ColumnMatcher:
    """The model that pre-trains a trunk of this config's kind (:data:`PRETRAINING_MODELS`)."""
    return PRETRAINING_MODELS[trunk.kind](trunk)


# ---------------------------------------------------------------------------- the training loop
def train(config: TrunkPretrainingConfig, run_dir: str | Path, *, resume: bool = False,
          progress: bool = True) -> dict[str, Any] | None:
    """Train per ``config`` into ``run_dir`` (``resume``: continue the run there); returns the best
    validation row (None when no step was made).

    The run ends after ``training.max_steps`` batches or ``training.max_minutes``, or at Ctrl-C; it is
    then evaluated (unless it just was) and saved, so that no trained step is lost."""
    run = RunDirectory(run_dir, TRAINER, finished_markers=(LAST,))
    t, d = config.training, config.data
    device = runs.setup_torch(t.seed, t.device, t.num_threads)
    rng = np.random.default_rng(t.seed)
    model = pretraining_model(config.trunk).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
    state: dict[str, Any] = {"step": 0, "history": [], "best": None, "train_errors": [], "elapsed_s": 0.0}
    if resume:
        state = _restore(run.path, config, model, optimizer, rng)
    run.start(config.to_dict(), resume)

    data = runs.data_root(d.dir, "data.dir")
    train_roots = [data, *(runs.data_root(extra, "data.extra_train_dirs") for extra in d.extra_train_dirs)]
    train_songs = [prepare_song(piece) for root in train_roots for piece in load_canonical_first(root, d.train_split)]
    valid_songs = [prepare_song(piece) for piece in load_canonical_first(data, d.valid_split, d.valid_pieces)]
    valid_rng = np.random.default_rng(12345)  # the same validation samples in every run
    per_song = math.ceil(d.valid_samples / len(valid_songs))
    valid_set = [(song, *draw_stretch(song, song.piece.n_frames, per_song, d.max_offset_px, valid_rng))
                 for song in valid_songs]

    def evaluate_and_save() -> dict[str, Any]:
        row = {"step": state["step"], "samples": state["step"] * d.segments_per_batch * d.samples_per_segment,
               "wall_s": round(budget.elapsed_s, 1), "train_mae_px": float(np.mean(state["train_errors"] or [np.nan])),
               **validate(model, valid_set, d.max_offset_px)}
        state["train_errors"] = []
        state["history"].append(row)
        if state["best"] is None or row["valid_mae_px"] < state["best"]["valid_mae_px"]:
            state["best"] = row
            run.save_checkpoint(BEST, model, config.to_dict(), config.trunk, metrics=row)
        _save_last(run, model, optimizer, config, state, rng, budget)
        write_history(run, state["history"], d.max_offset_px)
        return row

    budget = Budget(t.max_minutes, spent_s=state["elapsed_s"])
    bar = BudgetProgress(t.max_steps, budget, "trunk pre-training", unit="batch", done=state["step"],
                         enabled=progress, mininterval=10)
    with StopRequest() as stop:
        while state["step"] < t.max_steps and not budget.spent() and not stop.requested:
            model.train()
            losses, predictions, targets = [], [], []
            for _ in range(d.segments_per_batch):
                song = train_songs[int(rng.integers(len(train_songs)))]
                frames, starts, target = draw_stretch(song, d.segment_frames, d.samples_per_segment, d.max_offset_px,
                                                     rng, d.onset_share)
                loss, predicted = model.stretch_loss(song, frames, starts, target, d.max_offset_px)
                losses.append(loss)
                predictions.append(predicted)
                targets.append(torch.from_numpy(target).to(device))
            prediction, target = torch.cat(predictions), torch.cat(targets)
            loss = torch.stack(losses).mean()
            optimizer.zero_grad()
            loss.backward()
            if t.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            optimizer.step()
            state["train_errors"].append(float((prediction - target).abs().mean()) * d.max_offset_px)
            state["step"] += 1
            if state["step"] % t.eval_every_steps == 0 or state["step"] == t.max_steps:
                row = evaluate_and_save()
                bar.update(state["step"], valid_mae_px=f"{row['valid_mae_px']:.1f}", r2=f"{row['valid_r2']:.2f}")
            else:
                bar.update(state["step"])
        interrupted = stop.requested
    bar.close()
    if state["step"] and (not state["history"] or state["history"][-1]["step"] != state["step"]):
        evaluate_and_save()  # the budget (or Ctrl-C) ended the run between evaluations: keep its last steps
    else:
        _save_last(run, model, optimizer, config, state, rng, budget)
    if interrupted:
        run.mark(runs.INTERRUPTED, step=state["step"])
    else:
        run.mark(runs.COMPLETE, stopped="max_steps" if state["step"] >= t.max_steps else "time budget",
                 step=state["step"])
    return state["best"]


def _save_last(run: RunDirectory, model, optimizer, config: TrunkPretrainingConfig, state: dict[str, Any], rng,
               budget: Budget) -> None:
    state["elapsed_s"] = budget.elapsed_s
    run.save_checkpoint(LAST, model, config.to_dict(), config.trunk, optimizer=optimizer.state_dict(),
                        numpy_rng=rng.bit_generator.state, torch_rng=torch.get_rng_state(), run=state,
                        metrics=state["history"][-1] if state["history"] else None)


def _restore(run_dir: Path, config: TrunkPretrainingConfig, model, optimizer, rng) -> dict[str, Any]:
    """The run state of ``run_dir``'s ``last.pt``, its weights, optimizer and random states loaded."""
    payload = runs.read_checkpoint(runs.resolve_checkpoint(run_dir, (LAST,)), trainer=TRAINER)
    saved = TrunkPretrainingConfig.from_dict(payload["config"], f"{payload['path']} (its config)").to_dict()
    runs.check_resumable(payload["path"], saved, config.to_dict(), RESUMABLE_KEYS)
    model.load_state_dict(payload["model_state"])
    optimizer.load_state_dict(payload["optimizer"])
    rng.bit_generator.state = payload["numpy_rng"]
    torch.set_rng_state(payload["torch_rng"])
    return dict(payload["run"])


@torch.no_grad()
def validate(model: OffsetRegressor | ColumnMatcher, valid_set, max_offset_px: float) -> dict[str, float]:
    """Mean absolute error (px) and R² of the predicted offsets of the fixed validation samples."""
    model.eval()
    predictions, targets = [], []
    for song, frames, starts, target in valid_set:
        for chunk in range(0, len(frames), 64):  # stretches of 64 samples: bounded memory
            predictions.append(model.predict_offsets(song, frames[chunk : chunk + 64], starts[chunk : chunk + 64],
                                                     max_offset_px).cpu())
        targets.append(torch.from_numpy(target))
    prediction, target = torch.cat(predictions), torch.cat(targets)
    r2 = 1.0 - float(torch.mean((prediction - target) ** 2) / torch.var(target))
    return {"valid_mae_px": float((prediction - target).abs().mean()) * max_offset_px, "valid_r2": r2}


def write_history(run: RunDirectory, history: list[dict[str, Any]], max_offset_px: float) -> None:
    """``history.csv`` and ``curves.png`` (train and valid error against samples)."""
    run.write_history(history, HISTORY_COLUMNS)
    figure, axis = runs.plot_figure(figsize=(7, 4))
    samples = [row["samples"] for row in history]
    axis.plot(samples, [row["train_mae_px"] for row in history], label="train")
    axis.plot(samples, [row["valid_mae_px"] for row in history], label="valid")
    axis.axhline(max_offset_px / 2, color="grey", linestyle="--", linewidth=1,
                 label=f"always guessing 0 ({max_offset_px / 2:.0f} px)")
    axis.set_xlabel("training samples")
    axis.set_ylabel("mean absolute offset error (px)")
    axis.set_title("Trunk pre-training: where is the music in the score window?")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    run.write_figure(figure, dpi=110)


def selection_figures(run_dir: str | Path) -> dict[str, Any]:
    """The best evaluation's valid offset error and R² (``best.pt``) and the dataset: what a sweep tabulates
    (:func:`agents.runs.selection`; a trunk is no follower, so no model to test)."""
    metrics = runs.read_checkpoint(Path(run_dir) / BEST, trainer=TRAINER).get("metrics") or {}
    return runs.selection(run_dir, {"valid_mae_px": metrics.get("valid_mae_px"), "valid_r2": metrics.get("valid_r2")},
                          None, "data.dir")


# ---------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sfgym train trunk``."""
    runs.add_run_arguments(parser, TRAINER, out_help="run directory (required)",
                           resume_help="continue the run in --out from its last.pt",
                           set_example="training.max_minutes=5")


def main(args: argparse.Namespace) -> int:
    """Run ``sfgym train trunk`` with parsed arguments; prints the best validation error."""
    if args.out is None:
        raise ValueError("--out RUN_DIR is required")
    overrides = list(args.overrides) + ([f"data.dir={json.dumps(str(args.data))}"] if getattr(args, "data", None) else [])  # quoted: a path
    if args.config is not None:
        config = load_config(args.config, overrides)
    elif args.resume:  # the run's own config, with any --set applied
        payload = runs.read_checkpoint(runs.resolve_checkpoint(args.out, (LAST,)), trainer=TRAINER)
        config = TrunkPretrainingConfig.from_dict(apply_overrides(payload["config"], overrides),
                                                  f"{payload['path']} with --set")
    else:
        raise ValueError("--config is required (e.g. --config trunk_matching)")
    best = train(config, args.out, resume=args.resume, progress=not getattr(args, "no_progress", False))
    if best is None:
        print(f"no step made; nothing to report ({args.out})")
        return 0
    print(f"best valid offset error {best['valid_mae_px']:.1f} px (R² {best['valid_r2']:.2f}) at step {best['step']}; "
          f"{Path(args.out) / 'best.pt'} initializes RL with --init-from")
    return 0


if __name__ == "__main__":  # `sfgym train pretrained --jobs N` runs each trunk in a process of its own
    runs.run_as_script("agents.pretraining.train", __doc__, add_arguments, main)


__all__ = ["ColumnMatcher", "OffsetRegressor", "TrunkPretrainingConfig", "add_arguments", "load_config",
           "main", "PRETRAINING_MODELS", "pretraining_model", "RESUME_FILE", "SEED_KEY", "SELECTION_FIGURE", "selection_figures", "train"]
