"""Run a regressor through a batch of episodes, frame by frame, as the environment would — and train it.

At step ``k`` each episode observes its frame ``start_frame + k`` with the score window centred on
the follower's current x (its previous estimate; the first notehead at the start), the model updates
its recurrent state and outputs a number, which becomes a position:

- ``absolute``: ``x̂ = output · sheet_width`` (the output is the normalized position);
- ``relative``: ``x̂ = centre + output · offset_scale_px`` (the output is the offset from the centre).

The loss per step is the seed paper's, in the target's own units ``u`` (``sheet_width`` for
``absolute``, ``offset_scale_px`` for ``relative``)::

    ((x̂_t − x_t) / u)² + λ ((x̂_t − x̂_{t−1}) / u)²

with ``x_t`` the truth at the frame the position is scored at and ``x̂_{−1}`` the start position. The
next window is centred on ``x̂_t`` — during training plus Gaussian noise (so that the model sees its
own kind of errors and learns to correct them) and clamped to within ``max_centre_error_px`` of the
truth (farther states end an episode in the environment, so they never occur at test time). The loop is
:func:`agents.supervised.bptt.truncated_bptt`, shared with notated time; :class:`SheetSpace` is what is
particular to the sheet.

A frozen trunk (``training.freeze_trunk``) is not run at all: :class:`FrozenTrunkTables` looks its
output up from per-song tables that its kind provides (:meth:`agents.networks.Trunk.spectrogram_table`,
:meth:`~agents.networks.Trunk.score_table`, :meth:`~agents.networks.Trunk.tabled_features`), computed
once per song, so that training costs little more than the recurrent core.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import torch

from agents.networks import Trunk
from agents.supervised.bptt import RolloutResult, step_loss, truncated_bptt
from agents.supervised.data import EpisodeBatch, PreparedSong, SPEC_WINDOW, score_window_start
from agents.supervised.model import PositionRegressor, RecurrentState


class FrozenTrunkTables:
    """A frozen trunk's output for a batch's windows, looked up from per-song tables.

    Gives what the trunk gives on the windows :meth:`EpisodeBatch.spectrogram_windows` and
    :meth:`EpisodeBatch.score_windows` cut (up to float rounding; a test checks it). The trunk is copied
    to the CPU as it is now: build this only once its weights are final (frozen). The tables of the
    ``capacity`` songs used last are kept (a full-width figure-3 trunk's take ~4 MB per minute of music).
    """

    def __init__(self, trunk: Trunk, capacity: int = 64):
        self.trunk = copy.deepcopy(trunk).cpu().eval()
        self.capacity = capacity
        self._tables: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def tables(self, song: PreparedSong) -> tuple[np.ndarray, np.ndarray]:
        """``(per environment frame, per score-window start)`` tables of ``song``."""
        if song.name in self._tables:
            self._tables.move_to_end(song.name)
        else:
            with torch.no_grad():
                sound = self.trunk.spectrogram_table(song.spectrogram[:, SPEC_WINDOW:])
                score = self.trunk.score_table(song.score.float() / 255.0)  # the observation's values
            self._tables[song.name] = (sound, score)
            if len(self._tables) > self.capacity:
                self._tables.popitem(last=False)
        return self._tables[song.name]

    def features(self, batch: EpisodeBatch, step: int, centre_x: torch.Tensor) -> torch.Tensor:
        """``(rows, features)`` for the first ``len(centre_x)`` episodes at ``step``, score windows centred on ``centre_x``."""
        rows = len(centre_x)
        starts = torch.minimum(score_window_start(centre_x.cpu()).clamp_min(0), batch.last_window_start[:rows].cpu())
        frames = (batch.start_frame[:rows].cpu() + step).tolist()
        outputs = []
        for row, (frame, start) in enumerate(zip(frames, starts.tolist())):
            sound, score = self.tables(batch.episodes[row].song)
            outputs.append(self.trunk.tabled_features(sound[frame], score, start))
        return torch.from_numpy(np.stack(outputs)).to(centre_x.device, torch.float32)


class SheetSpace:
    """Episodes followed on the sheet (a :class:`~agents.supervised.bptt.Space`): positions are sheet x (native
    px), the model reads the environment's windows (or a frozen trunk's ``tables``), and the output becomes
    ``x̂ = output · sheet_width`` (``absolute``) or ``x̂ = centre + output · offset_scale_px`` (``relative``), the
    loss in those units. Finished episodes are dropped (the batch is sorted longest-first)."""

    sums_dtype = torch.float32

    def __init__(self, model: PositionRegressor, batch: EpisodeBatch, tables: FrozenTrunkTables | None = None):
        self.batch, self.tables = batch, tables
        self.relative = model.config.target == "relative"
        self.offset_scale_px = model.config.offset_scale_px
        self.size, self.total_steps, self.device = batch.size, batch.max_steps, batch.true_x.device
        self.start = batch.start_x

    def rows(self, step: int) -> int:
        return min(int(self.batch.active[step]), self.size)

    def advance(self, model: PositionRegressor, step: int, centre: torch.Tensor,
                state: RecurrentState) -> tuple[torch.Tensor, RecurrentState]:
        rows = len(centre)
        if self.tables is not None:
            output, state = model.advance(self.tables.features(self.batch, step, centre), state)
        else:
            output, state = model.step(self.batch.spectrogram_windows(step, rows), self.batch.score_windows(centre), state)
        if self.relative:
            return centre + output * self.offset_scale_px, state
        return output * self.batch.width[:rows], state

    def loss_terms(self, step: int, position: torch.Tensor, previous: torch.Tensor,
                   jump_penalty: float) -> tuple[torch.Tensor, torch.Tensor]:
        rows = len(position)
        unit = self.offset_scale_px if self.relative else self.batch.width[:rows]
        return step_loss(position, previous, self.target(step, rows), unit, jump_penalty)

    def target(self, step: int, rows: int) -> torch.Tensor:
        return self.batch.true_x[:rows, step + 1]

    def weights(self, step: int) -> None:
        return None  # the finished rows are dropped instead

    def next_centre(self, position: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        return position.detach()

    def last_centre(self, rows: int) -> torch.Tensor:
        # the environment keeps the follower on the sheet: a position action is x / width in [0, 1]
        return self.batch.width[:rows]

    def sheet_x(self, estimates: torch.Tensor) -> np.ndarray:
        return estimates.double().cpu().numpy()


def rollout(model: PositionRegressor, batch: EpisodeBatch, *, noise_px: float = 0.0,
            max_centre_error_px: float | None = None, tables: FrozenTrunkTables | None = None,
            **loop_options) -> RolloutResult:
    """Follow every episode of ``batch`` to its end on the sheet; with an ``optimizer``, train on the way.

    Args:
        noise_px: std of the noise added to an estimate before it centres the next window.
        max_centre_error_px: clamp the next window's centre to within this distance of the truth.
        tables: the model's frozen trunk as lookup tables (its output is then looked up, not computed).
        loop_options: the rest of :func:`~agents.supervised.bptt.truncated_bptt`'s keyword arguments
            (``jump_penalty``, ``tbptt_steps``, ``optimizer``, ``grad_clip``, ``generator``, ``on_chunk``).
    """
    return truncated_bptt(model, SheetSpace(model, batch, tables), noise=noise_px,
                          max_centre_error=max_centre_error_px, **loop_options)


__all__ = ["FrozenTrunkTables", "RolloutResult", "SheetSpace", "rollout", "step_loss"]
