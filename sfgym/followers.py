"""The one interface every score follower implements.

Baselines, supervised regressors and RL agents all look alike to the evaluation and the renderer:
``reset(piece)`` at the start of a piece, then ``act(observation, info)`` once per frame, returning an
action for :class:`sfgym.envs.MSMDFollowEnv` with the follower's ``action_type``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from sfgym.data.piece import Piece


class Follower(ABC):
    """A score follower.

    Attributes:
        name: shown in tables, legends and file names.
        action_type: the environment ``action_type`` the follower drives: ``"discrete"`` (index into
            the velocity-change set), ``"continuous"`` (velocity change in px/frame) or ``"position"``
            (normalized score position in [0, 1]).
        stochastic: whether repeated runs with other seeds differ (evaluation then runs several seeds).
        env_kwargs: environment arguments the follower was trained with (e.g. ``difference_channels``,
            ``actions``); evaluation and rendering build its environment with them.
    """

    name: str = "follower"
    action_type: str = "discrete"
    stochastic: bool = False
    env_kwargs: Mapping[str, Any] = MappingProxyType({})

    def reset(self, piece: Piece, seed: int | None = None) -> None:
        """Start following ``piece``.

        A fair follower uses only the score side of the piece (``sheet``, ``coords``, ``coord2onset``,
        ``score_notes``), never the performance (``notes``, ``spectrogram`` beyond what observations
        show, ``true_x``); the ``oracle`` baseline is the documented exception.
        """

    @abstractmethod
    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> Any:
        """The action for the current frame, given the environment's observation and info."""
