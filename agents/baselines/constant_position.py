"""The trivial follower a learned one has to beat: it stays on the first notehead.

The supervised training reports it next to its own validation numbers (the seed paper's models
collapsed towards one position; this is the floor that shows whether a regressor follows at all).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sfgym.data.piece import Piece
from sfgym.followers import Follower


class ConstantPositionFollower(Follower):
    """Never moves from the first onset's notehead (where every episode starts)."""

    name = "constant_position"
    action_type = "position"
    stochastic = False

    def reset(self, piece: Piece, seed: int | None = None) -> None:
        self._fraction = float(piece.onset_x[0]) / float(piece.sheet_width)

    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        return np.array([self._fraction], dtype=np.float64)


__all__ = ["ConstantPositionFollower"]
