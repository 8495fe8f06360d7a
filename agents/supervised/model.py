"""The recurrent position regressor: shared trunk → SRN / GRU / LSTM → linear head.

The trunk is any kind of :data:`agents.networks.TRUNK_KINDS` (the config's ``trunk.kind``): the seed
paper's Figure-3 trunk, whose joint features the core reads, or the matching trunk, whose output is
a distribution over the score window's columns — where in the window the sound is written.

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

from agents.networks import TrunkConfig, build_trunk, state_dict_mismatch
from agents.supervised.config import ModelConfig

RecurrentState = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]
"""``h`` of shape (layers, batch, hidden) for SRN / GRU; ``(h, c)`` for an LSTM."""

_CELLS = {"srn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class PositionRegressor(nn.Module):
    """Trunk → recurrent core → ``Linear(hidden, 1)``.

    Args:
        config: the model section of a :class:`~agents.supervised.config.SupervisedConfig`.
        trunk: its trunk section (any kind: the core reads the trunk's ``features_dim`` outputs).
    """

    def __init__(self, config: ModelConfig = ModelConfig(), trunk: TrunkConfig | None = None):
        super().__init__()
        self.config = config
        self.trunk = build_trunk(trunk or TrunkConfig())
        self.trunk_frozen = False
        cell = _CELLS[config.cell]
        extra = {"nonlinearity": "tanh"} if config.cell == "srn" else {}
        # in notated time the core reads the distribution over the window, its mean offset and its last move
        inputs = self.trunk.features_dim if config.space == "sheet" else 2 * config.half_window_frames + 3
        self.core = cell(input_size=inputs, hidden_size=config.hidden_size,
                         num_layers=config.num_layers, batch_first=True, **extra)
        self.head = nn.Linear(config.hidden_size, 1)
        # Start from (almost) constant outputs: a relative model then begins by standing still on the
        # notehead it starts at, rather than jumping around by up to a window width per frame, and
        # its first training windows show the target.
        nn.init.uniform_(self.head.weight, -1e-3, 1e-3)
        nn.init.zeros_(self.head.bias)

    def freeze_trunk(self) -> None:
        """Keep the trunk as it is: no gradients for its weights, and always in eval mode (no dropout),
        whatever mode the rest of the model is put in."""
        self.trunk_frozen = True
        self.trunk.requires_grad_(False)
        self.trunk.eval()

    def train(self, mode: bool = True) -> "PositionRegressor":
        super().train(mode)
        if self.trunk_frozen:
            self.trunk.eval()
        return self

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

    def notated_features(self, logits: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """The core's input in notated time (``model.space: notated``, :mod:`agents.supervised.notated`).

        Args:
            logits: ``(B, 2H + 1)`` the matching logits of the sound heard against the notated positions
                ``centre - H .. centre + H`` (``H`` = ``half_window_frames``).
            motion: ``(B,)`` notated frames the estimate moved at the previous step (0 at the start).

        Returns:
            ``(B, 2H + 3)``: the distribution over the window, its mean offset from the centre (units of ``H``)
            and the motion.
        """
        half = self.config.half_window_frames
        distribution = torch.softmax(logits, dim=1)
        offsets = torch.arange(-half, half + 1, device=logits.device, dtype=logits.dtype) / half
        mean_offset = (distribution * offsets).sum(dim=1, keepdim=True)
        return torch.cat([distribution, mean_offset, motion[:, None]], dim=1)

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
        trunk = self.trunk.config
        space = "" if c.space == "sheet" else f" in notated time (±{c.half_window_frames} frames)"
        return (f"{c.cell} {c.num_layers}x{c.hidden_size}, {c.target} target{space}, {trunk.kind} trunk "
                f"(width {trunk.width:g}{', frozen' if self.trunk_frozen else ''}), "
                f"{sum(p.numel() for p in self.parameters()) / 1e6:.2f} M parameters")


def detach_state(state: RecurrentState) -> RecurrentState:
    """The state cut from the graph (between truncated-backprop chunks)."""
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


__all__ = ["PositionRegressor", "RecurrentState", "detach_state"]
