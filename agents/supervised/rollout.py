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
truth (farther states end an episode in the environment, so they never occur at test time).

A frozen trunk (``training.freeze_trunk``) is not run at all: :class:`FrozenTrunkTables` looks its
output up from per-song tables that its kind provides (:meth:`agents.networks.Trunk.spectrogram_table`,
:meth:`~agents.networks.Trunk.score_table`, :meth:`~agents.networks.Trunk.tabled_features`), computed
once per song, so that training costs little more than the recurrent core.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from agents.networks import Trunk
from agents.supervised.data import EpisodeBatch, PreparedSong, SPEC_WINDOW, score_window_start
from agents.supervised.model import PositionRegressor, RecurrentState, detach_state


@dataclass
class RolloutResult:
    """What a rollout produced.

    Attributes:
        positions: float64 ``(B, K)`` the estimates x̂ (native px, unclipped), in the batch's order;
            row ``b`` is valid for its first ``batch.n_steps[b]`` steps.
        squared_error_sum / jump_sum: sums over all valid steps of the two loss terms (unweighted).
        n_steps: number of valid steps summed over.
        jump_penalty: the λ the loss used.
    """

    positions: np.ndarray
    squared_error_sum: float
    jump_sum: float
    n_steps: int
    jump_penalty: float

    @property
    def loss(self) -> float:
        """Mean loss per step: squared error + λ · jump."""
        return (self.squared_error_sum + self.jump_penalty * self.jump_sum) / max(self.n_steps, 1)

    @property
    def squared_error(self) -> float:
        return self.squared_error_sum / max(self.n_steps, 1)


def step_loss(position: torch.Tensor, previous: torch.Tensor, target: torch.Tensor, unit: torch.Tensor | float,
              jump_penalty: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The two per-step loss terms (squared error, jump), each ``(B,)``, in target units.

    ``((x̂_t − x_t) / u)²`` and ``((x̂_t − x̂_{t−1}) / u)²``; the loss is ``squared + jump_penalty · jump``.
    """
    squared = ((position - target) / unit) ** 2
    jump = ((position - previous) / unit) ** 2
    return squared, jump


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


def optimize_chunk(model: PositionRegressor, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   grad_clip: float | None) -> None:
    """One optimizer step on a truncated-backprop chunk's mean loss (gradients clipped to ``grad_clip``)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


def rollout(
    model: PositionRegressor,
    batch: EpisodeBatch,
    *,
    jump_penalty: float = 0.2,
    noise_px: float = 0.0,
    max_centre_error_px: float | None = None,
    tbptt_steps: int = 50,
    optimizer: torch.optim.Optimizer | None = None,
    grad_clip: float | None = None,
    generator: torch.Generator | None = None,
    on_chunk=None,
    tables: FrozenTrunkTables | None = None,
) -> RolloutResult:
    """Follow every episode of ``batch`` to its end; with an ``optimizer``, train on the way.

    Training uses truncated backprop through time: after every ``tbptt_steps`` frames the mean loss of
    those frames is back-propagated, the optimizer steps, and the recurrent state (and the previous
    estimate of the jump term) are carried on, detached. The state starts at zeros for every episode.
    Without an optimizer nothing is back-propagated (call it under ``torch.no_grad()``).

    Args:
        noise_px: std of the noise added to an estimate before it centres the next window.
        max_centre_error_px: clamp the next window's centre to within this distance of the truth.
        generator: CPU generator of the noise.
        on_chunk: called with no arguments after each chunk (progress, time budget); if it returns
            True the rollout stops early (the result then covers the steps taken).
        tables: the model's frozen trunk as lookup tables (its output is then looked up, not computed).
    """
    config = model.config
    device = batch.true_x.device
    relative = config.target == "relative"
    total_steps = batch.max_steps
    # Everything stays on the batch's device until the end: reading a value back each step would
    # make a GPU wait for every step.
    positions = torch.zeros((batch.size, total_steps), device=device)

    state: RecurrentState = model.initial_state(batch.size, device)
    centre = batch.start_x.clone()  # the follower's x: where the next score window is centred
    previous = batch.start_x.clone()  # x̂_{t-1} of the jump term
    squared_sum = torch.zeros((), device=device)
    jump_sum = torch.zeros((), device=device)
    counted = 0
    rows = batch.size

    for chunk_start in range(0, total_steps, tbptt_steps):
        chunk_loss = torch.zeros((), device=device)
        chunk_count = 0
        for step in range(chunk_start, min(chunk_start + tbptt_steps, total_steps)):
            active = int(batch.active[step])
            if active < rows:  # episodes end longest-last: drop the finished rows
                rows = active
                state = tuple(s[:, :rows] for s in state) if isinstance(state, tuple) else state[:, :rows]
                centre, previous = centre[:rows], previous[:rows]
            width = batch.width[:rows]
            if tables is not None:
                output, state = model.advance(tables.features(batch, step, centre), state)
            else:
                output, state = model.step(batch.spectrogram_windows(step, rows), batch.score_windows(centre), state)
            if relative:
                position, unit = centre + output * config.offset_scale_px, config.offset_scale_px
            else:
                position, unit = output * width, width
            target = batch.true_x[:rows, step + 1]
            squared, jump = step_loss(position, previous, target, unit, jump_penalty)
            chunk_loss = chunk_loss + (squared + jump_penalty * jump).sum()
            chunk_count += rows
            squared_sum = squared_sum + squared.detach().sum()
            jump_sum = jump_sum + jump.detach().sum()
            positions[:rows, step] = position.detach()

            previous = position
            centre = position.detach()
            if noise_px > 0:
                noise = torch.randn(rows, generator=generator) * noise_px
                centre = centre + noise.to(device)
            if max_centre_error_px is not None:
                centre = torch.maximum(torch.minimum(centre, target + max_centre_error_px),
                                       target - max_centre_error_px)
            # The environment keeps the follower on the sheet: a position action is x / width in [0, 1].
            centre = torch.minimum(centre.clamp_min(0.0), width)
        counted += chunk_count

        if optimizer is not None:
            optimize_chunk(model, optimizer, chunk_loss / chunk_count, grad_clip)
        state = detach_state(state)
        previous = previous.detach()
        if on_chunk is not None and on_chunk():
            break

    return RolloutResult(positions=positions.double().cpu().numpy(), squared_error_sum=float(squared_sum),
                         jump_sum=float(jump_sum), n_steps=counted, jump_penalty=jump_penalty)


__all__ = ["FrozenTrunkTables", "RolloutResult", "optimize_chunk", "rollout", "step_loss"]
