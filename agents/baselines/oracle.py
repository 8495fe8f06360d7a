"""The oracle: a follower that knows the ground truth (a sanity check for the environment and metrics)."""

from __future__ import annotations

from typing import Any

import numpy as np

from sfgym.data.piece import Piece
from sfgym.followers import Follower


class OracleFollower(Follower):
    """Puts the follower exactly on the ground truth at every frame.

    It is the one follower that reads the performance side of the piece (``piece.true_x``): it exists
    to check that the environment and the metrics agree (it must score TR 1.0 and zero error), and to
    give the upper bound in a results table. It drives the ``position`` action: at frame ``f`` it asks
    for the true x of frame ``f + 1``, where the environment's step takes the follower.
    """

    name = "oracle"
    action_type = "position"
    stochastic = False

    def reset(self, piece: Piece, seed: int | None = None) -> None:
        self._true_x = np.asarray(piece.true_x, dtype=np.float64)
        self._width = float(piece.sheet_width)

    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        next_frame = min(int(info["frame"]) + 1, len(self._true_x) - 1)
        # float64: the environment uses Box actions at the precision given, so the oracle lands exactly
        return np.array([self._true_x[next_frame] / self._width])
