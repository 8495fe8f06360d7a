"""The recurrent position regressor: shared multimodal trunk → SRN / GRU / LSTM → linear head.

One step reads a spectrogram window and a score window (the environment's observation), updates the
recurrent state and outputs one number: the normalized position in the piece (``absolute`` target)
or the offset of the position from the score window's centre (``relative`` target). See
:mod:`agents.supervised.rollout` for how outputs become positions.

Unlike the seed paper's code, the recurrent state really advances from step to step and starts at
zeros (not random) at every song's start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import torch
from torch import nn

from agents.networks import MultimodalTrunk, TrunkConfig, state_dict_mismatch
from agents.supervised.config import ModelConfig

RecurrentState = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]
"""``h`` of shape (layers, batch, hidden) for SRN / GRU; ``(h, c)`` for an LSTM."""

_CELLS = {"srn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class PositionRegressor(nn.Module):
    """Trunk (seed paper Figure 3) → recurrent core → ``Linear(hidden, 1)``.

    Args:
        config: the model section of a :class:`~agents.supervised.config.SupervisedConfig`.
        trunk: its trunk section (a figure-3 trunk: the regressor reads its joint features).
    """

    def __init__(self, config: ModelConfig = ModelConfig(), trunk: TrunkConfig | None = None):
        super().__init__()
        self.config = config
        trunk = trunk or TrunkConfig()
        if trunk.kind != MultimodalTrunk.KIND:
            raise ValueError(f"a position regressor needs a '{MultimodalTrunk.KIND}' trunk, got trunk.kind {trunk.kind!r}")
        self.trunk = MultimodalTrunk(trunk)
        cell = _CELLS[config.cell]
        extra = {"nonlinearity": "tanh"} if config.cell == "srn" else {}
        self.core = cell(input_size=self.trunk.features_dim, hidden_size=config.hidden_size,
                         num_layers=config.num_layers, batch_first=True, **extra)
        self.head = nn.Linear(config.hidden_size, 1)
        # Start from (almost) constant outputs: a relative model then begins by standing still on the
        # notehead it starts at, rather than jumping around by up to a window width per frame, and
        # its first training windows show the target.
        nn.init.uniform_(self.head.weight, -1e-3, 1e-3)
        nn.init.zeros_(self.head.bias)

    @property
    def spectrogram_shape(self) -> tuple[int, int, int]:
        return self.trunk.config.spectrogram_shape

    @property
    def score_shape(self) -> tuple[int, int, int]:
        return self.trunk.config.score_shape

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> RecurrentState:
        """The state at a song's start: zeros."""
        device = device if device is not None else self.head.weight.device
        shape = (self.config.num_layers, batch_size, self.config.hidden_size)
        h = torch.zeros(shape, device=device)
        return (h, torch.zeros(shape, device=device)) if self.config.cell == "lstm" else h

    def step(self, spectrogram: torch.Tensor, score: torch.Tensor,
             state: RecurrentState) -> tuple[torch.Tensor, RecurrentState]:
        """One frame for a batch of songs.

        Args:
            spectrogram: ``(B, 1, 78, 40)`` spectrogram windows.
            score: ``(B, 1, 80, 256)`` score windows.
            state: the recurrent state after the previous frame (:meth:`initial_state` at a song's start).

        Returns:
            ``(outputs (B,), new state)``.
        """
        return self.advance(self.trunk(spectrogram, score), state)

    def forward(self, spectrogram: torch.Tensor, score: torch.Tensor,
                state: RecurrentState) -> tuple[torch.Tensor, RecurrentState]:
        """Calling the module is one :meth:`step`."""
        return self.step(spectrogram, score, state)

    def advance(self, features: torch.Tensor, state: RecurrentState) -> tuple[torch.Tensor, RecurrentState]:
        """The recurrent core and head for one step: trunk features ``(B, F)`` → ``(outputs (B,), new state)``."""
        # oneDNN's CPU recurrent kernels re-lay-out all weights on every call: for one step of a
        # 2 x 1024 LSTM that costs 4-6x the step itself, so single steps take PyTorch's own kernels.
        # (The flag is process-wide while the step runs; the other flags are left alone.)
        with torch.backends.mkldnn.flags(enabled=False, deterministic=None, allow_tf32=None, fp32_precision=None):
            hidden, state = self.core(features.unsqueeze(1), state)
        return self.head(hidden[:, 0]).squeeze(-1), state

    def load_weights(self, state_dict: dict[str, torch.Tensor], source: str | Path = "<state dict>") -> None:
        """Load weights, with a clear error naming ``source`` when they belong to another model shape."""
        mismatch = state_dict_mismatch(self, state_dict)
        if mismatch:
            raise ValueError(f"{source}: the checkpoint's weights do not fit this model ({self.describe()}): {mismatch}")
        self.load_state_dict(state_dict)

    def describe(self) -> str:
        c = self.config
        return (f"{c.cell} {c.num_layers}x{c.hidden_size}, {c.target} target, trunk width {self.trunk.config.width:g}, "
                f"{sum(p.numel() for p in self.parameters()) / 1e6:.2f} M parameters")


def detach_state(state: RecurrentState) -> RecurrentState:
    """The state cut from the graph (between truncated-backprop chunks)."""
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


__all__ = ["PositionRegressor", "RecurrentState", "detach_state"]
