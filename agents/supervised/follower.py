"""A trained regressor as a score follower of ``MSMDFollow-v0`` with ``action_type="position"``.

Each ``act`` feeds the environment's observation to the model, advances its recurrent state and
returns the estimated position as a fraction of the sheet width. For a ``relative`` model the output
is an offset from the score window's centre, which is the follower's current x (``info["follower_x"]``,
its previous estimate): the same centring the model was trained with.

Most of a frame's time goes into the score branch of the trunk, and most of that into its first
convolutions over the 80 × 256 window. Those see nothing but the sheet, which is known before the
performance starts, and an unpadded convolution of a slice is the slice of the convolution; so
:class:`ScoreFeatureCache` runs them once per piece over the whole score strip, and each frame only
slices the result and runs the rest of the network (same outputs, about 2x faster at the seed's size).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.networks import MultimodalTrunk
from agents.supervised.model import PositionRegressor, RecurrentState
from sfgym.data.piece import Piece
from sfgym.followers import Follower


class ScoreFeatureCache:
    """The score branch's first ``n_convs`` convolutions (with their activations) over a whole score strip.

    A window starting at strip column ``c`` is, after those layers, the columns ``o .. o + w`` of the
    strip's feature map computed from column ``c mod s`` on (``s`` = the layers' total column stride,
    ``o = c // s``): the strip is run once per phase ``0 .. s - 1`` at :meth:`build`, and
    :meth:`window` only slices.

    Args:
        trunk: the model's trunk (its ``score_convs`` are split, not copied).
        n_convs: convolutions to precompute (4: a total column stride of 4, ~85% of the branch's work).
    """

    def __init__(self, trunk: MultimodalTrunk, n_convs: int = 4):
        layers = list(trunk.score_convs)
        conv_positions = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d)]
        cut = conv_positions[n_convs] if n_convs < len(conv_positions) else len(layers) - 1
        self.prefix = nn.Sequential(*layers[:cut])  # ends with the n-th convolution's activation (and dropout)
        self.rest = nn.Sequential(*layers[cut:])
        convs = [layer for layer in self.prefix if isinstance(layer, nn.Conv2d)]
        if any(conv.padding != (0, 0) for conv in convs):
            raise ValueError("score feature caching needs unpadded convolutions")
        self.phases = math.prod(conv.stride[1] for conv in convs)
        self.window_shape = trunk.config.score_shape
        with torch.inference_mode():
            self.window_columns = self.prefix(torch.zeros(1, *self.window_shape)).shape[-1]
        self._maps: list[torch.Tensor] = []

    @torch.inference_mode()
    def build(self, strip: torch.Tensor) -> None:
        """Precompute for ``strip`` (``(rows, S)`` float, the values of the score observation)."""
        strip = strip.reshape(1, 1, *strip.shape)
        self._maps = [self.prefix(strip[..., phase:]) for phase in range(self.phases)]

    def window(self, start: int) -> torch.Tensor:
        """``(1, C, H, W)``: the precomputed layers' output for the window starting at strip column ``start``."""
        phase = start % self.phases
        offset = start // self.phases
        return self._maps[phase][..., offset : offset + self.window_columns]


class RegressorFollower(Follower):
    """Drives the environment with a :class:`PositionRegressor`.

    Args:
        model: the regressor (put in eval mode here).
        name: shown in tables and legends.
        device: where the model runs (the CPU by default: one frame at a time is latency-bound).
        cache_score_features: precompute the score branch's first layers per piece
            (:class:`ScoreFeatureCache`); frames whose score observation is not the expected slice of
            the piece's strip (another environment configuration) take the plain path.
    """

    action_type = "position"
    stochastic = False

    def __init__(self, model: PositionRegressor, name: str | None = None, device: torch.device | str = "cpu",
                 cache_score_features: bool = True):
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.name = name or f"{model.config.cell}_{model.config.target}"
        self.cache = ScoreFeatureCache(model.trunk) if cache_score_features else None
        self.cache_misses = 0  # frames that could not use the cache
        self._strip: torch.Tensor | None = None
        self._state: RecurrentState | None = None
        self._width: float | None = None
        self._x: float | None = None

    def reset(self, piece: Piece, seed: int | None = None) -> None:
        """Start a piece: zero recurrent state, position on the first notehead (the environment's start)."""
        self._state = self.model.initial_state(1, self.device)
        self._width = float(piece.sheet_width)
        self._x = float(piece.onset_x[0])
        if self.cache is not None:
            from agents.supervised.data import prepare_song

            self._strip = prepare_song(piece).score.to(self.device, torch.float32) / 255.0  # as observed
            self.cache.build(self._strip)

    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        if self._state is None:
            raise RuntimeError(f"{self.name}: call reset(piece) before act()")
        spectrogram = self._tensor(observation, "spectrogram", self.model.spectrogram_shape)
        score = self._tensor(observation, "score", self.model.score_shape)
        # The window the environment showed is centred on its follower_x; fall back to our own track.
        centre = float(info.get("follower_x", self._x))
        with torch.inference_mode():
            features = self._cached_features(spectrogram, score, centre)
            if features is None:
                features = self.model.trunk(spectrogram, score)
            output, self._state = self.model.advance(features, self._state)
        output = float(output[0])
        if self.model.config.target == "relative":
            x = centre + output * self.model.config.offset_scale_px
        else:
            x = output * self._width
        self._x = min(max(x, 0.0), self._width)
        # float64: the environment uses a Box action at the precision it is given
        return np.array([self._x / self._width], dtype=np.float64)

    def _cached_features(self, spectrogram: torch.Tensor, score: torch.Tensor, centre: float) -> torch.Tensor | None:
        """The trunk's output via the score cache, or ``None`` if the observation is not the cached window."""
        if self.cache is None:
            return None
        from agents.supervised.data import SCORE_COLUMNS, score_window_start

        start = int(score_window_start(torch.tensor([centre]))[0])
        start = min(max(start, 0), self._strip.shape[1] - SCORE_COLUMNS)
        # (within rounding: the environment divides by 255 in numpy, which may round the last bit differently)
        if not torch.allclose(self._strip[:, start : start + SCORE_COLUMNS], score[0, 0], rtol=0.0, atol=1e-6):
            self.cache_misses += 1
            return None
        trunk = self.model.trunk  # MultimodalTrunk.forward, with the score branch's first layers precomputed
        spectrogram_features = trunk.spectrogram_dense(trunk.spectrogram_convs(spectrogram))
        score_features = trunk.score_dense(self.cache.rest(self.cache.window(start)))
        return trunk.joint(torch.cat([spectrogram_features, score_features], dim=1))

    def _tensor(self, observation: dict[str, np.ndarray], key: str, shape: tuple[int, ...]) -> torch.Tensor:
        array = np.asarray(observation[key], dtype=np.float32)
        if array.shape != tuple(shape):
            raise ValueError(
                f"{self.name}: observation '{key}' has shape {array.shape}, the model expects {tuple(shape)}; "
                "make the environment with its default observation settings (difference_channels=False)"
            )
        return torch.from_numpy(array).unsqueeze(0).to(self.device)


def load_follower(path: str | Path, name: str | None = None, device: torch.device | str = "cpu") -> RegressorFollower:
    """A :class:`RegressorFollower` from a checkpoint file or a run directory (its ``best.pt``)."""
    from agents.supervised.checkpoint import load_regressor, resolve_checkpoint

    path = resolve_checkpoint(path)
    model, config = load_regressor(path, device=device)
    if name is None:
        run = path.parent.name if path.name in ("best.pt", "last.pt") else path.stem
        name = f"{config.model.cell}_{config.model.target}:{run}"
    return RegressorFollower(model, name=name, device=device)


__all__ = ["RegressorFollower", "ScoreFeatureCache", "load_follower"]
