"""RL on a frozen, pre-trained trunk, with the trunk's features looked up instead of computed.

When the policy's trunk comes from a supervised regressor (``init_from``) and stays frozen for the
whole run (``frozen_trunk: true``), its output at a step depends on two things only: the frame (the
spectrogram window) and the score window's start column. Both branches can then be run once per
piece for every frame and every start (:mod:`agents.sliding`), and a step costs a table lookup and
the joint layer instead of two convolutional branches and their backward pass — hundreds of times
less on a CPU, which is what makes RL on the CPU learn within minutes.

- :class:`TrunkFeatureTables` holds those per-piece tables (shared by all environments of a process).
- :class:`FrozenTrunkObservations` wraps ``MSMDFollowEnv`` so that it observes ``{"trunk": the
  trunk's features, "speed": the follower's speed}``.
- :class:`TrunkFeaturesExtractor` is the policy's features extractor on those observations: the
  features as they are, with the speed appended exactly as :class:`~agents.rl.extractor.TrunkExtractor`
  appends it on the images.
- :func:`export_image_model` turns the trained model into an ordinary one on image observations (the
  supervised trunk in a :class:`~agents.rl.extractor.TrunkExtractor`, the trained heads on top): the
  model that is evaluated, saved and followed, like any other.
"""

from __future__ import annotations

import hashlib
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from agents.networks import MatchingTrunk, MultimodalTrunk
from agents.rl.extractor import SPEED_KEY, append_speed, policy_trunks
from sfgym.data.piece import Piece
from sfgym.envs.geometry import SCORE_FACTOR, SCORE_WINDOW, prepare_score_strip, score_observation_values

TRUNK_KEY = "trunk"


class TrunkFeatureTables:
    """A frozen trunk's branch features for every frame and every score-window start of each piece.

    Spectrogram tables are kept per performance (piece name), score tables per sheet (performances
    of one score share its sheet, found by content hash). Built on first use; what a table holds is the
    trunk kind's own (:meth:`~agents.networks.Trunk.spectrogram_table`, :meth:`~agents.networks.Trunk.score_table`):
    for the figure-3 trunk each branch's share of the joint layer, already projected, so that a step's
    features are ``ELU(spectrogram_part[frame] + score_part[start])``, a few microseconds.

    Args:
        trunk: the frozen trunk (one input channel: no ``difference_channels``).
        score_window, score_factor: the environment's score observation settings.
    """

    def __init__(self, trunk: MultimodalTrunk | MatchingTrunk, score_window: tuple[int, int] = SCORE_WINDOW,
                 score_factor: float = SCORE_FACTOR):
        if trunk.config.spectrogram_shape[0] != 1 or trunk.config.score_shape[0] != 1:
            raise ValueError("a frozen trunk's features can be tabled only without difference_channels "
                             f"(this trunk reads {trunk.config.spectrogram_shape[0]} channels)")
        self.trunk = trunk.eval()
        self.score_window = tuple(score_window)
        self.score_factor = float(score_factor)
        self._score: dict[bytes, np.ndarray] = {}  # by sheet content
        self._tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # by piece name: both of its tables

    def tables(self, piece: Piece) -> tuple[np.ndarray, np.ndarray]:
        """``(spectrogram features per frame (T + 1, F), score features per window start (S', F))``;
        for a :class:`~agents.networks.MatchingTrunk`, ``(sound embedding per frame (T + 1, K), column
        embedding per strip column (S - 2 * margin, K))``."""
        found = self._tables.get(piece.name)
        if found is not None:
            return found
        sheet_key = hashlib.blake2b(np.ascontiguousarray(piece.sheet).tobytes(), digest_size=16).digest()
        with torch.no_grad():
            if sheet_key not in self._score:
                strip = score_observation_values(prepare_score_strip(piece.sheet, self.score_window, self.score_factor))
                self._score[sheet_key] = self._score_table(torch.from_numpy(strip))
            self._tables[piece.name] = (self._spectrogram_table(piece), self._score[sheet_key])
        return self._tables[piece.name]

    def _spectrogram_table(self, piece: Piece) -> np.ndarray:
        return self.trunk.spectrogram_table(torch.from_numpy(np.ascontiguousarray(piece.spectrogram, dtype=np.float32)))

    def _score_table(self, strip: torch.Tensor) -> np.ndarray:
        return self.trunk.score_table(strip)

    def features(self, piece: Piece, frame: int, score_start: int) -> np.ndarray:
        """The trunk's output (float32 ``(F,)``) at ``frame`` with the score window at ``score_start``."""
        spectrogram_part, score_part = self.tables(piece)
        return self.trunk.tabled_features(spectrogram_part[frame], score_part, score_start)


class FrozenTrunkObservations(gym.Wrapper):
    """``MSMDFollowEnv`` (with ``observe_speed=True``) observing a frozen trunk's features.

    Observation: ``{"trunk": float32 (F,), "speed": float32 (1,)}`` — exactly what a
    :class:`~agents.rl.extractor.TrunkExtractor` with that trunk computes from the image observation
    before appending the speed. Actions, rewards and ``info`` are the environment's own.
    """

    def __init__(self, env: gym.Env, tables: TrunkFeatureTables):
        super().__init__(env)
        if not getattr(env.unwrapped, "observe_speed", False) or getattr(env.unwrapped, "difference_channels", False):
            raise ValueError("FrozenTrunkObservations needs an MSMDFollowEnv with observe_speed=True and "
                             "difference_channels=False")
        self.tables = tables
        features = tables.trunk.features_dim
        self.observation_space = spaces.Dict({
            TRUNK_KEY: spaces.Box(-np.inf, np.inf, shape=(features,), dtype=np.float32),
            SPEED_KEY: env.observation_space[SPEED_KEY],
        })

    def _observe(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> dict[str, np.ndarray]:
        features = self.tables.features(self.env.unwrapped.piece, info["frame"], info["score_window_start"])
        return {TRUNK_KEY: features, SPEED_KEY: observation[SPEED_KEY]}

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        return self._observe(observation, info), info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(observation, info), reward, terminated, truncated, info


class TrunkFeaturesExtractor(BaseFeaturesExtractor):
    """The features extractor on :class:`FrozenTrunkObservations`: trunk features, speed appended."""

    def __init__(self, observation_space: spaces.Dict):
        features = observation_space[TRUNK_KEY].shape[0] + int(SPEED_KEY in observation_space.spaces)
        super().__init__(observation_space, features_dim=features)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return append_speed(observations[TRUNK_KEY], observations)


def export_image_model(model, image_model) -> Any:
    """Copy ``model``'s policy heads (trained on :class:`FrozenTrunkObservations`) into ``image_model``,
    a model of the same algorithm and heads on the image observations whose trunk already holds the
    frozen trunk's weights; returns ``image_model``.

    Only the parameters outside the features extractors are copied (the tabled model's extractor has
    none); both extractors output the same vector, so the two policies act alike.
    """
    heads = {key: value for key, value in model.policy.state_dict().items() if "features_extractor" not in key}
    missing = set(heads) - set(image_model.policy.state_dict())
    if missing:
        raise ValueError(f"the image model lacks the trained heads' parameters {sorted(missing)[:3]}; "
                         "were both models built from the same config?")
    image_model.policy.load_state_dict(heads, strict=False)
    image_model.num_timesteps = model.num_timesteps
    if not list(policy_trunks(image_model.policy)):
        raise ValueError("the image model has no TrunkExtractor")
    return image_model


__all__ = ["FrozenTrunkObservations", "TRUNK_KEY", "TrunkFeatureTables", "TrunkFeaturesExtractor",
           "export_image_model"]
