"""A trained regressor as a score follower of ``MSMDFollow-v0`` with ``action_type="position"``.

Each ``act`` feeds the environment's observation to the model, advances its recurrent state and
returns the estimated position as a fraction of the sheet width. For a ``relative`` model the output
is an offset from the score window's centre, which is the follower's current x (``info["follower_x"]``,
its previous estimate): the same centring the model was trained with.

A frame's work is mostly the trunk's, and nearly all of it repeats work already done: the score
windows are slices of a strip known before the performance starts, so the score side is computed
once per piece at ``reset``. Each trunk kind has its incremental form (:meth:`~agents.networks.Trunk.incremental`,
:mod:`agents.sliding`): the figure-3 trunk looks up its score branch's output and streams its
spectrogram branch one new column per frame; the matching trunk looks up its column embeddings and
embeds only the sound of the frame. Both give what the plain trunk gives; a frame whose observation
is not the expected slice (another environment configuration, a jump of the stream) takes the plain path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.runs import resolve_checkpoint
from agents.supervised.checkpoint import load_regressor
from agents.supervised.model import PositionRegressor, RecurrentState
from sfgym.data.piece import Piece
from sfgym.envs.geometry import DEFAULT_GEOMETRY, ObservationGeometry, score_observation_values
from sfgym.followers import Follower


class RegressorFollower(Follower):
    """Drives the environment with a :class:`PositionRegressor`.

    Args:
        model: the regressor (put in eval mode here).
        name: shown in tables and legends.
        device: where the model runs (the CPU by default: one frame at a time is latency-bound).
        incremental: compute the trunk incrementally (score features per piece, spectrogram features
            one new column per frame; see the module docstring). ``False`` runs the plain trunk on
            every observation (same outputs, several times slower).
        env_kwargs: the environment arguments to follow with (its observation geometry; the defaults
            when empty). The observations must still have the model's shapes.
    """

    action_type = "position"
    stochastic = False

    def __init__(self, model: PositionRegressor, name: str | None = None, device: torch.device | str = "cpu",
                 incremental: bool = True, env_kwargs: dict[str, Any] | None = None):
        self.model = model.to(device).eval()
        self.env_kwargs = dict(env_kwargs or {})
        self.device = torch.device(device)
        self.name = name or f"{model.config.cell}_{model.config.target}"
        self.incremental = self.model.trunk.incremental() if incremental else None
        self._geometry = DEFAULT_GEOMETRY
        self._strip_columns = 0
        self._state: RecurrentState | None = None
        self._width: float | None = None
        self._x: float | None = None

    def reset(self, piece: Piece, seed: int | None = None) -> None:
        """Start a piece: zero recurrent state, position on the first notehead (the environment's start)."""
        self._state = self.model.initial_state(1, self.device)
        self._width = float(piece.sheet_width)
        self._x = float(piece.onset_x[0])
        if self.incremental is not None:
            # the strip of the environment this follower is run in (its env_kwargs), as the RL follower's
            self._geometry = ObservationGeometry.of(self.env_kwargs)
            strip = torch.from_numpy(score_observation_values(self._geometry.strip(piece.sheet))).to(self.device)
            self._strip_columns = strip.shape[1]
            self.incremental.reset(strip)

    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        if self._state is None:
            raise RuntimeError(f"{self.name}: call reset(piece) before act()")
        spectrogram = self._tensor(observation, "spectrogram", self.model.spectrogram_shape)
        score = self._tensor(observation, "score", self.model.score_shape)
        # The window the environment showed is centred on its follower_x; fall back to our own track.
        centre = float(info.get("follower_x", self._x))
        with torch.inference_mode():
            features = self._features(spectrogram, score, centre)
            output, self._state = self.model.advance(features, self._state)
        output = float(output[0])
        if self.model.config.target == "relative":
            x = centre + output * self.model.config.offset_scale_px
        else:
            x = output * self._width
        self._x = min(max(x, 0.0), self._width)
        # float64: the environment uses a Box action at the precision it is given
        return np.array([self._x / self._width], dtype=np.float64)

    @property
    def plain_frames(self) -> int:
        """Frames of the incremental follower that had to take the plain path (0 when all went well)."""
        return 0 if self.incremental is None else self.incremental.plain_frames

    def _features(self, spectrogram: torch.Tensor, score: torch.Tensor, centre: float) -> torch.Tensor:
        """The trunk's output for an observation whose score window is centred on ``centre``."""
        if self.incremental is None:
            return self.model.trunk(spectrogram, score)
        start = self._geometry.window_start(centre, self._strip_columns)
        return self.incremental(spectrogram, score, start)

    def _tensor(self, observation: dict[str, np.ndarray], key: str, shape: tuple[int, ...]) -> torch.Tensor:
        array = np.asarray(observation[key], dtype=np.float32)
        if array.shape != tuple(shape):
            raise ValueError(
                f"{self.name}: observation '{key}' has shape {array.shape}, the model expects {tuple(shape)}; "
                "make the environment with its default observation settings (difference_channels=False)"
            )
        return torch.from_numpy(array).unsqueeze(0).to(self.device)


def load_follower(path: str | Path, name: str | None = None, device: torch.device | str = "cpu",
                  px_per_second: float | None = None) -> Follower:
    """The follower of a checkpoint file or a run directory (its ``best.pt``): a :class:`RegressorFollower`, or
    for a model in notated time a :class:`~agents.supervised.notated.NotatedRegressorFollower` (on the CPU;
    ``px_per_second``: its stand-in speed for pieces without notated timing)."""
    # imported on first use: notated time brings the tracker and on-line DTW (~0.2 s) that a sheet-space follower does without
    from agents.supervised.notated import NotatedRegressorFollower

    path = resolve_checkpoint(path)
    model, config = load_regressor(path, device=device)
    run = path.parent.name if path.name in ("best.pt", "last.pt") else path.stem
    if config.model.space == "notated":
        return NotatedRegressorFollower(model, name=name or f"{config.model.cell}_notated:{run}",
                                        px_per_second=px_per_second)
    return RegressorFollower(model, name=name or f"{config.model.cell}_{config.model.target}:{run}", device=device)


__all__ = ["RegressorFollower", "load_follower"]
