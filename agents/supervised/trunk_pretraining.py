"""``sfgym train trunk``: pre-train the shared trunk to see where the music is in the score window.

A velocity agent needs one thing above all from its observation: how far the music has moved from
the centre of its score window. This trainer teaches the trunk exactly that, frame by frame, with
no recurrence to lean on: a sample is a frame of a performance and a score window centred up to
``max_offset_px`` away from the true position. Nothing but the pairing of audio and notation can
solve it — unlike a recurrent regressor, which can lower its loss by learning a typical speed. The
trunk then starts an RL run (``sfgym train rl --init-from RUN_DIR``, frozen with
``configs/rl/ppo_matching.yaml`` or ``configs/rl/ppo_frozen.yaml``). Two trunks, two objectives:

- ``trunk_kind: figure3`` (the paper's :class:`~agents.networks.MultimodalTrunk`, ``trunk_offset.yaml``):
  a linear head regresses the offset (in units of ``max_offset_px``; mean squared error).
- ``trunk_kind: matching`` (:class:`~agents.networks.MatchingTrunk`, ``trunk_matching.yaml``): the
  trunk's own output, a distribution over the window's columns, is trained to name the true column
  (cross-entropy); the reported offset is that of its most probable column.

Training on the CPU is made affordable by computing each branch once per stretch of a performance:
a batch is a few stretches, and every sample of a stretch slices its features from the branch run
over the whole stretch (:func:`agents.sliding.branch_at_every_window` for the figure-3 trunk; the
matching trunk embeds the strip's columns once), about 20x less work than running the trunk per window.

A run directory receives ``config.yaml``, ``best.pt`` (the best validation error; the format of a
supervised checkpoint as far as ``--init-from`` reads it: ``model_state`` with ``trunk.*`` and
``config.model``), ``last.pt``, ``history.csv`` and ``curves.png`` (train and valid error per
evaluation). The whole loop is in :func:`train`.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import yaml
from torch import nn

from agents.config_files import apply_overrides, read_yaml_config
from agents.networks import MatchingTrunk, MultimodalTrunk, TrunkConfig, default_device
from agents.sliding import branch_at_every_window, score_features_every_start
from agents.supervised.config import _build_section
from agents.supervised.data import (LOSS_THRESHOLD_PX, SCORE_COLUMNS, SCORE_FACTOR, SPEC_WINDOW, PreparedSong, prepare_song,
                                   score_window_start)

FORMAT = "sfgym-trunk-pretraining"
HISTORY_COLUMNS = ("step", "samples", "wall_s", "train_mae_px", "valid_mae_px", "valid_r2")


# ---------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class TrunkModel:
    """The trunk (see :class:`agents.networks.TrunkConfig`); RL must use the same settings.

    ``trunk_kind`` picks the trunk and with it the objective: ``figure3`` regresses the offset with a
    linear head on the paper's trunk; ``matching`` (:class:`~agents.networks.MatchingTrunk`) classifies
    which window column the sound is written in (cross-entropy), its features being those very
    probabilities. Both report the same offset error (for ``matching``: of the most probable column).
    """

    trunk_width: float = 0.25
    trunk_features: int = 128
    dropout: float = 0.0
    trunk_kind: str = "figure3"
    match_frames: int = 8
    match_context: int = 0

    def trunk_config(self) -> TrunkConfig:
        return TrunkConfig(features=self.trunk_features, dropout=self.dropout, width=self.trunk_width,
                           kind=self.trunk_kind, match_frames=self.match_frames, match_context=self.match_context)


@dataclass(frozen=True)
class TrunkData:
    """Samples: ``segments_per_batch`` stretches of ``segment_frames`` frames, each from a random
    train performance, with ``samples_per_segment`` (frame, offset) pairs each; offsets uniform in
    ±``max_offset_px`` (native px; 170 = the environment's loss threshold). A share ``onset_share`` of
    the frames are drawn one or two frames after an onset, where the sound names its notehead most
    clearly (between onsets the truth is interpolated). Validation: the same
    ``valid_samples`` pairs from the first ``valid_pieces`` valid performances every time."""

    dir: str | None = None
    train_split: str = "train"
    valid_split: str = "valid"
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
    model: TrunkModel = field(default_factory=TrunkModel)
    data: TrunkData = field(default_factory=TrunkData)
    training: TrunkTraining = field(default_factory=TrunkTraining)

    @classmethod
    def from_dict(cls, raw: Any, source: str) -> "TrunkPretrainingConfig":
        raw = raw or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{source}: a config must be a mapping with sections model, data, training")
        unknown = sorted(set(raw) - {"model", "data", "training"})
        if unknown:
            raise ValueError(f"{source}: unknown section '{unknown[0]}' (known sections: model, data, training)")
        config = cls(model=_build_section(TrunkModel, raw.get("model"), "model", source),
                     data=_build_section(TrunkData, raw.get("data"), "data", source),
                     training=_build_section(TrunkTraining, raw.get("training"), "training", source))
        positive = {"model.trunk_width": config.model.trunk_width, "model.trunk_features": config.model.trunk_features,
                    "data.segment_frames": config.data.segment_frames,
                    "data.samples_per_segment": config.data.samples_per_segment,
                    "data.segments_per_batch": config.data.segments_per_batch,
                    "data.max_offset_px": config.data.max_offset_px, "data.valid_pieces": config.data.valid_pieces,
                    "data.valid_samples": config.data.valid_samples, "training.max_steps": config.training.max_steps,
                    "training.lr": config.training.lr, "training.eval_every_steps": config.training.eval_every_steps}
        for key, value in positive.items():
            if value <= 0:
                raise ValueError(f"{source}: '{key}' must be positive, got {value!r}")
        if not 0.0 <= config.data.onset_share <= 1.0:
            raise ValueError(f"{source}: 'data.onset_share' must be within 0..1, got {config.data.onset_share!r}")
        try:
            config.model.trunk_config()
        except ValueError as error:
            raise ValueError(f"{source}: model: {error}") from None
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrunkPretrainingConfig:
    raw = apply_overrides(read_yaml_config(path, "trunk pre-training config"), overrides or [])
    return TrunkPretrainingConfig.from_dict(raw, source=f"{path} with --set" if overrides else str(path))


# ---------------------------------------------------------------------------- the models and their batches
class OffsetRegressor(nn.Module):
    """The figure-3 trunk and a linear head: the window's offset from the truth, in units of max_offset_px."""

    def __init__(self, model: TrunkModel):
        super().__init__()
        self.trunk = MultimodalTrunk(model.trunk_config())
        self.head = nn.Linear(model.trunk_features, 1)

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

    def __init__(self, model: TrunkModel):
        super().__init__()
        self.trunk = MatchingTrunk(model.trunk_config())
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


# ---------------------------------------------------------------------------- the training loop
def train(config: TrunkPretrainingConfig, run_dir: str | Path) -> dict[str, Any]:
    """Train per ``config`` into ``run_dir``; returns the best validation row."""
    from tqdm import tqdm

    from sfgym.data.msmd import load_canonical_first
    from sfgym.files import atomic_write_bytes
    from sfgym.data.dataset import default_dataset_dir

    run_dir = Path(run_dir)
    if (run_dir / "last.pt").exists():
        raise ValueError(f"{run_dir}: already holds a run; choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False).encode())
    t, d = config.training, config.data
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    device = default_device() if t.device == "auto" else torch.device(t.device)
    torch.manual_seed(t.seed)
    rng = np.random.default_rng(t.seed)

    data = Path(d.dir).expanduser() if d.dir else default_dataset_dir()
    train_songs = [prepare_song(piece) for piece in load_canonical_first(data, d.train_split)]
    valid_songs = [prepare_song(piece) for piece in load_canonical_first(data, d.valid_split, d.valid_pieces)]
    valid_rng = np.random.default_rng(12345)  # the same validation samples in every run
    per_song = math.ceil(d.valid_samples / len(valid_songs))
    valid_set = [(song, *draw_stretch(song, song.piece.n_frames, per_song, d.max_offset_px, valid_rng))
                 for song in valid_songs]

    model = (ColumnMatcher if config.model.trunk_kind == "matching" else OffsetRegressor)(config.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    started, train_errors, step = time.time(), [], 0
    progress = tqdm(total=t.max_steps, desc="trunk pre-training", unit="batch", mininterval=10)
    while step < t.max_steps and (t.max_minutes is None or time.time() - started < 60 * t.max_minutes):
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
        train_errors.append(float((prediction - target).abs().mean()) * d.max_offset_px)
        step += 1
        progress.update()
        if step % t.eval_every_steps == 0 or step == t.max_steps:
            row = {"step": step, "samples": step * d.segments_per_batch * d.samples_per_segment,
                   "wall_s": round(time.time() - started, 1), "train_mae_px": float(np.mean(train_errors)),
                   **validate(model, valid_set, d.max_offset_px)}
            train_errors = []
            history.append(row)
            progress.set_postfix(valid_mae_px=f"{row['valid_mae_px']:.1f}", r2=f"{row['valid_r2']:.2f}")
            save_checkpoint(run_dir / "last.pt", model, config, row)
            if best is None or row["valid_mae_px"] < best["valid_mae_px"]:
                best = row
                save_checkpoint(run_dir / "best.pt", model, config, row)
            write_history(run_dir, history, d.max_offset_px)
    progress.close()
    if best is None:
        raise RuntimeError(f"{run_dir}: the budget ended before the first evaluation "
                           f"(training.eval_every_steps={t.eval_every_steps})")
    return best


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


def save_checkpoint(path: Path, model: nn.Module, config: TrunkPretrainingConfig, row: dict[str, Any]) -> None:
    """Atomically, in the layout ``--init-from`` reads (``model_state`` with ``trunk.*``, ``config.model``)."""
    from sfgym.files import atomic_write_bytes

    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "config": config.to_dict(), "metrics": row,
                "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def write_history(run_dir: Path, history: list[dict[str, Any]], max_offset_px: float) -> None:
    """``history.csv`` and ``curves.png`` (train and valid error against samples)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sfgym.files import atomic_write_bytes

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=HISTORY_COLUMNS)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(run_dir / "history.csv", text.getvalue().encode())
    figure, axis = plt.subplots(figsize=(7, 4))
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
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=110)
    plt.close(figure)
    atomic_write_bytes(run_dir / "curves.png", image.getvalue())


# ---------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sfgym train trunk``."""
    parser.add_argument("--config", required=True, help="YAML config (configs/supervised/trunk_offset.yaml)")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override a config value (repeatable), e.g. --set training.max_minutes=5")


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    best = train(config, args.out)
    print(f"best valid offset error {best['valid_mae_px']:.1f} px (R² {best['valid_r2']:.2f}) at step {best['step']}; "
          f"{Path(args.out) / 'best.pt'} initializes RL with --init-from")
    return 0


__all__ = ["ColumnMatcher", "OffsetRegressor", "TrunkPretrainingConfig", "add_arguments", "load_config", "main", "train"]
