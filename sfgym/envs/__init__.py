"""Gymnasium environments of sfgym.

``import sfgym`` registers ``MSMDFollow-v0``; so does ``gym.make("sfgym:MSMDFollow-v0")`` without a
prior import (Gymnasium imports the module named before the colon). Gymnasium 1.x has no plugin
entry points any more, so this registration is the only mechanism.
"""

from __future__ import annotations

import gymnasium as gym

from sfgym.envs.geometry import (DEFAULT_GEOMETRY, LOSS_THRESHOLD_PX, SCORE_FACTOR, SCORE_WINDOW, SPEC_WINDOW,
                                 ObservationGeometry, prepare_score_strip, score_observation_values)
from sfgym.envs.msmd_follow import ACTION_TYPES, SPECTROGRAM_HIGH, MSMDFollowEnv

MSMD_FOLLOW_ID = "MSMDFollow-v0"


def register_envs() -> None:
    """Register sfgym's environments with Gymnasium (idempotent)."""
    if MSMD_FOLLOW_ID not in gym.registry:
        gym.register(id=MSMD_FOLLOW_ID, entry_point="sfgym.envs.msmd_follow:MSMDFollowEnv")


__all__ = ["ACTION_TYPES", "DEFAULT_GEOMETRY", "LOSS_THRESHOLD_PX", "MSMD_FOLLOW_ID", "SCORE_FACTOR", "SCORE_WINDOW",
           "SPECTROGRAM_HIGH", "SPEC_WINDOW", "MSMDFollowEnv", "ObservationGeometry", "prepare_score_strip",
           "register_envs", "score_observation_values"]
