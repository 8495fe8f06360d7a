"""Validation: follow every validation song from its first onset to its last, score with :mod:`sfgym.metrics`.

The songs run side by side through :func:`~agents.supervised.rollout.rollout` (no noise, eval mode):
the same frames, windows and positions as the environment driven by
:class:`~agents.supervised.follower.RegressorFollower` (a test checks it), only batched. Each song's
run becomes a :class:`sfgym.metrics.Trajectory`, so TR, TUE and errors are the project's definitions.

The window centre is still clamped to within the loss threshold of the truth, which changes nothing
the metrics see (the clamp acts only once the follower is farther than the threshold, i.e. after the
environment would have ended the episode) and keeps the validation loss comparable to the training loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from agents.supervised.data import LOSS_THRESHOLD_PX, EpisodeBatch, PreparedSong, batches, full_episode
from agents.supervised.model import PositionRegressor
from agents.supervised.notated import NotatedTables, notated_rollout
from agents.supervised.rollout import rollout
from sfgym.metrics import PieceMetrics, Trajectory, aggregate, piece_metrics


@dataclass
class ValidationResult:
    """Loss and tracking metrics of one validation pass.

    Attributes:
        loss / squared_error: mean per-step loss and its squared-error part (target units).
        metrics: :func:`sfgym.metrics.aggregate` of the runs (``tr``, ``tue``, ``error_mean_px``, ...).
        runs: per-song metrics.
    """

    loss: float
    squared_error: float
    metrics: dict[str, float]
    runs: list[PieceMetrics] = field(repr=False)

    @property
    def tr(self) -> float:
        return float(self.metrics["tr"])

    @property
    def error_mean_px(self) -> float:
        return float(self.metrics["error_mean_px"])


def trajectory_of(song: PreparedSong, positions: np.ndarray, agent: str) -> Trajectory:
    """The :class:`Trajectory` of a full episode whose step ``k`` put the follower at ``positions[k]``."""
    piece = song.piece
    frames = np.arange(piece.first_onset_frame, piece.last_onset_frame + 1)
    # the environment records x after clipping the position action to the sheet
    x = np.concatenate([[piece.onset_x[0]], np.clip(positions[: len(frames) - 1], 0.0, piece.sheet_width)])
    return Trajectory(agent=agent, piece=piece.name, seed=0, frames=frames, follower_x=x,
                      true_x=piece.true_x[frames], threshold=LOSS_THRESHOLD_PX)


@torch.no_grad()
def validate(model: PositionRegressor, songs: list[PreparedSong], *, jump_penalty: float,
             batch_size: int = 16, agent: str = "regressor", tables=None, loss_on: str = "notated") -> ValidationResult:
    """Follow every song in full with ``model`` (eval mode; the model's mode is restored afterwards);
    ``tables``: its frozen trunk as :class:`~agents.supervised.rollout.FrozenTrunkTables`, or as
    :class:`~agents.supervised.notated.NotatedTables` for a model in notated time (``loss_on``: where its loss
    is measured, see :func:`~agents.supervised.notated.notated_rollout`)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    runs: list[PieceMetrics] = []
    squared_sum = jump_sum = 0.0
    steps = 0
    try:
        for group in batches(songs, batch_size):
            episodes = [full_episode(song) for song in group]
            if isinstance(tables, NotatedTables):  # notated time: nothing is clamped, as in the environment
                result = notated_rollout(model, episodes, tables, loss_on=loss_on, jump_penalty=jump_penalty,
                                         tbptt_steps=max(max(episode.n_steps for episode in episodes), 1))
            else:
                batch = EpisodeBatch.of(episodes, device=device)
                episodes = batch.episodes  # in the batch's order
                result = rollout(model, batch, jump_penalty=jump_penalty, max_centre_error_px=LOSS_THRESHOLD_PX,
                                 tbptt_steps=max(batch.max_steps, 1), tables=tables)
            squared_sum += result.squared_error_sum
            jump_sum += result.jump_sum
            steps += result.n_steps
            for row, episode in enumerate(episodes):
                trajectory = trajectory_of(episode.song, result.positions[row], agent)
                runs.append(piece_metrics(trajectory, episode.song.piece))
    finally:
        model.train(was_training)
    runs.sort(key=lambda run: run.piece)
    return ValidationResult(loss=(squared_sum + jump_penalty * jump_sum) / max(steps, 1),
                            squared_error=squared_sum / max(steps, 1), metrics=aggregate(runs), runs=runs)


def constant_position_metrics(songs: list[PreparedSong]) -> dict[str, float]:
    """The metrics of :class:`~agents.baselines.constant_position.ConstantPositionFollower` on ``songs``."""
    runs = []
    for song in songs:
        piece = song.piece
        n = piece.last_onset_frame - piece.first_onset_frame
        trajectory = trajectory_of(song, np.full(n, piece.onset_x[0]), "constant_position")
        runs.append(piece_metrics(trajectory, piece))
    return aggregate(runs)


__all__ = ["ValidationResult", "constant_position_metrics", "trajectory_of", "validate"]
