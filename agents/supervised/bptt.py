"""The one loop that runs a recurrent regressor through a batch of episodes — and trains it on the way.

Both spaces a regressor can follow in — the sheet (:mod:`agents.supervised.rollout`: positions are sheet x,
the window is the environment's score window) and notated time (:mod:`agents.supervised.notated`: positions
are notated frames, the window a stretch of notated positions) — run through :func:`truncated_bptt`. At step
``t`` each episode's model reads the window centred on its previous estimate and outputs a position ``x̂_t``;
the loss per step is the seed paper's::

    ((x̂_t − x_t) / u)² + λ ((x̂_t − x̂_{t−1}) / u)²

and the next window is centred on the estimate — in training plus Gaussian noise (so that the model sees its
own kind of errors and learns to correct them), clamped near the truth (farther states end an episode in the
environment, so they never occur at test time), and kept on the score.

What differs between the spaces is a :class:`Space`: where the episodes start, the model's step, the loss
terms (target and unit ``u``), where the next window is centred, which rows still count, and how its
estimates become sheet x.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import torch

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


class Space(Protocol):
    """What :func:`truncated_bptt` needs to know of the space a batch of episodes is followed in.

    Rows are episodes; a space may drop the finished ones (:meth:`rows`: episodes end longest-last), or keep
    them all and say which count (:meth:`weights`). Positions, centres and targets are in the space's units.
    """

    size: int  # episodes
    total_steps: int  # steps of the longest
    device: torch.device | str
    start: torch.Tensor  # (size,) the position each episode starts at: the first window's centre
    sums_dtype: torch.dtype  # of the loss sums the result reports

    def rows(self, step: int) -> int:
        """How many rows (the first ones) still run at ``step``."""

    def advance(self, model: PositionRegressor, step: int, centre: torch.Tensor,
                state: RecurrentState) -> tuple[torch.Tensor, RecurrentState]:
        """The model's step on the windows centred on ``centre`` (``(rows,)``): ``(its positions, new state)``."""

    def loss_terms(self, step: int, position: torch.Tensor, previous: torch.Tensor,
                   jump_penalty: float) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`step_loss` of ``position`` (``(rows,)``) against the truth, in the space's loss unit."""

    def target(self, step: int, rows: int) -> torch.Tensor:
        """The true position after ``step`` (``(rows,)``): what the next centre is clamped near."""

    def weights(self, step: int) -> torch.Tensor | None:
        """1 for the rows whose step counts, 0 for the finished ones; None: every row counts."""

    def next_centre(self, position: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """Where the next window is centred, before noise and clamps (``position`` is this step's estimate)."""

    def last_centre(self, rows: int) -> torch.Tensor:
        """The farthest centre on the score (``(rows,)``); the nearest is 0."""

    def sheet_x(self, estimates: torch.Tensor) -> np.ndarray:
        """float64 ``(size, total_steps)`` sheet x of the estimates."""


def truncated_bptt(
    model: PositionRegressor,
    space: Space,
    *,
    jump_penalty: float = 0.2,
    noise: float = 0.0,
    max_centre_error: float | None = None,
    tbptt_steps: int = 50,
    optimizer: torch.optim.Optimizer | None = None,
    grad_clip: float | None = None,
    generator: torch.Generator | None = None,
    on_chunk: Callable[[], bool] | None = None,
) -> RolloutResult:
    """Follow every episode of ``space`` to its end; with an ``optimizer``, train on the way.

    Training uses truncated backprop through time: after every ``tbptt_steps`` frames the mean loss of
    those frames is back-propagated (gradients clipped to ``grad_clip``), the optimizer steps, and the
    recurrent state (and the previous estimate of the jump term) are carried on, detached. The state starts
    at zeros for every episode. Without an optimizer nothing is back-propagated (call it under ``torch.no_grad()``).

    Args:
        jump_penalty: λ of the loss.
        noise: std of the noise added to an estimate before it centres the next window (space units).
        max_centre_error: clamp the next window's centre to within this distance of the truth.
        generator: CPU generator of the noise.
        on_chunk: called with no arguments after each chunk (progress, time budget); if it returns
            True the rollout stops early (the result then covers the steps taken).
    """
    device = space.device
    # Everything stays on the space's device until the end: reading a value back each step would
    # make a GPU wait for every step.
    estimates = torch.zeros((space.size, space.total_steps), device=device)
    state: RecurrentState = model.initial_state(space.size, device)
    centre = space.start.clone()  # where the next window is centred
    previous = space.start.clone()  # x̂_{t-1} of the jump term
    squared_sum = torch.zeros((), dtype=space.sums_dtype, device=device)
    jump_sum = torch.zeros((), dtype=space.sums_dtype, device=device)
    counted = 0

    for chunk_start in range(0, space.total_steps, tbptt_steps):
        chunk_loss = torch.zeros((), device=device)
        chunk_count = 0
        for step in range(chunk_start, min(chunk_start + tbptt_steps, space.total_steps)):
            rows = space.rows(step)
            if rows < len(centre):  # drop the finished rows
                state = tuple(s[:, :rows] for s in state) if isinstance(state, tuple) else state[:, :rows]
                centre, previous = centre[:rows], previous[:rows]
            position, state = space.advance(model, step, centre, state)
            squared, jump = space.loss_terms(step, position, previous, jump_penalty)
            loss = squared + jump_penalty * jump
            weights = space.weights(step)
            if weights is not None:
                loss, squared, jump = loss * weights, squared * weights, jump * weights
            chunk_loss = chunk_loss + loss.sum()
            chunk_count += rows if weights is None else int(weights.sum())
            squared_sum = squared_sum + squared.detach().sum().to(space.sums_dtype)
            jump_sum = jump_sum + jump.detach().sum().to(space.sums_dtype)
            estimates[:rows, step] = position.detach()

            centre = space.next_centre(position, previous)
            previous = position
            if noise > 0:
                centre = centre + (torch.randn(rows, generator=generator) * noise).to(device)
            if max_centre_error is not None:
                target = space.target(step, rows)
                centre = torch.maximum(torch.minimum(centre, target + max_centre_error), target - max_centre_error)
            centre = torch.minimum(centre.clamp_min(0.0), space.last_centre(rows))  # the follower stays on the score
        counted += chunk_count

        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            (chunk_loss / chunk_count).backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        state = detach_state(state)
        previous = previous.detach()
        if on_chunk is not None and on_chunk():
            break

    return RolloutResult(positions=space.sheet_x(estimates), squared_error_sum=float(squared_sum),
                         jump_sum=float(jump_sum), n_steps=counted, jump_penalty=jump_penalty)


__all__ = ["RolloutResult", "Space", "step_loss", "truncated_bptt"]
