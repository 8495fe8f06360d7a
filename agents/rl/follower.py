"""Trained SB3 models as score followers, and how they are saved and found again.

A model saved by :func:`save_model` is an ordinary stable-baselines3 ``.zip`` that also carries
``sfgym_metadata`` (algorithm, environment arguments, trunk settings), so :func:`load_follower`
needs nothing but the path, and evaluation can build the environment the model was trained on
(:attr:`RLFollower.env_kwargs`).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.rl.config import algorithm_class
from agents.runs import resolve_checkpoint
from sfgym.data.piece import Piece
from sfgym.envs.geometry import ObservationGeometry, score_observation_values
from sfgym.files import atomic_write_bytes
from sfgym.followers import Follower

METADATA_KEY = "sfgym_metadata"
"""Attribute of a saved model (stored by SB3 with its other attributes) holding sfgym's metadata."""

METADATA_FORMAT = 1

MODEL_FILES = ("best_model.zip", "final_model.zip")
"""Models :func:`load_follower` looks for, in this order, when given a run directory."""


# ---------------------------------------------------------------------------- saving and finding
def save_model(model, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Save an SB3 model atomically (temp file in the same directory, then ``os.replace``).

    ``metadata`` (JSON-serializable) is stored in the zip as ``sfgym_metadata``; without it the
    model's existing metadata is kept.
    """
    if metadata is not None:
        setattr(model, METADATA_KEY, {"format": METADATA_FORMAT, **metadata})
    buffer = io.BytesIO()
    model.save(buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``sfgym_metadata`` of a saved model, read from the zip without loading the model."""
    path = resolve_checkpoint(path, MODEL_FILES, what="model")
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a stable-baselines3 model file ({error})") from error
    metadata = data.get(METADATA_KEY)
    if not isinstance(metadata, dict) or "algorithm" not in metadata:
        raise ValueError(f"{path}: an SB3 model without sfgym metadata; was it saved by 'sfgym train rl'?")
    return metadata


# ---------------------------------------------------------------------------- the follower
class RLFollower(Follower):
    """A trained PPO / A2C / RecurrentPPO policy following a score.

    ``act`` returns the discrete action index (into the environment's ``actions``), the policy's
    most probable action by default, a sampled one with ``stochastic=True``. Sampling draws from
    the follower's own torch generator state, seeded in :meth:`reset`, so a run is reproducible
    and does not disturb (nor depend on) the global torch random state.

    A recurrent policy keeps its LSTM state across ``act`` calls; :meth:`reset` clears it.

    A feed-forward policy whose trunk reads single-channel images runs its trunk incrementally
    (:class:`~agents.networks.IncrementalTrunk`: score features per piece, the spectrogram branch
    streamed), the policy's own output at a fraction of the cost; other policies run SB3's ``predict``.

    Args:
        model: a loaded SB3 model.
        name: shown in tables and legends.
        stochastic: sample actions instead of taking the most probable one.
        env_kwargs: the environment arguments the model was trained with (observation settings).
    """

    action_type = "discrete"

    def __init__(self, model, name: str = "rl", stochastic: bool = False, env_kwargs: dict[str, Any] | None = None):
        from sb3_contrib import RecurrentPPO

        self.model = model
        self.name = name
        self.stochastic = bool(stochastic)
        self.env_kwargs = dict(env_kwargs or {})
        self.recurrent = isinstance(model, RecurrentPPO)
        self._lstm_state: tuple[np.ndarray, ...] | None = None
        self._episode_start = np.ones((1,), dtype=bool)
        self._rng_state = torch.Generator().manual_seed(0).get_state()
        self._incremental = None if self.recurrent else _incremental_trunk(model.policy)
        self._incremental_ready = False

    def reset_seed(self, seed: int) -> None:
        """Seed the sampling of stochastic actions."""
        self._rng_state = torch.Generator().manual_seed(int(seed)).get_state()

    def reset(self, piece: Piece | None = None, seed: int | None = None) -> None:
        self._lstm_state = None
        self._episode_start = np.ones((1,), dtype=bool)
        if seed is not None:
            self.reset_seed(seed)
        self._incremental_ready = False
        if self._incremental is not None and piece is not None:
            strip = ObservationGeometry.of(self.env_kwargs).strip(piece.sheet)
            self._incremental.reset(torch.from_numpy(score_observation_values(strip)).to(self.model.policy.device))
            self.model.policy.set_training_mode(False)  # once per piece: it walks every module
            self._incremental_ready = True

    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any] | None = None) -> int:
        deterministic = not self.stochastic
        if deterministic:
            action, state = self._predict(observation, info, deterministic=True)
        else:
            # SB3 samples with the global torch generator: run it on this follower's own state.
            with torch.random.fork_rng(devices=[]):
                torch.random.default_generator.set_state(self._rng_state)
                action, state = self._predict(observation, info, deterministic=False)
                self._rng_state = torch.random.default_generator.get_state()
        if self.recurrent:
            self._lstm_state = state
            self._episode_start = np.zeros((1,), dtype=bool)
        return int(np.asarray(action).reshape(-1)[0])

    def _predict(self, observation, info, deterministic: bool):
        if self._incremental_ready and info is not None and "score_window_start" in info:
            return self._predict_incrementally(observation, info["score_window_start"], deterministic), None
        if self.recurrent:
            return self.model.predict(observation, state=self._lstm_state, episode_start=self._episode_start,
                                      deterministic=deterministic)
        return self.model.predict(observation, deterministic=deterministic)

    @torch.no_grad()
    def _predict_incrementally(self, observation, score_start: int, deterministic: bool) -> int:
        """What ``predict`` gives, with the trunk computed by :class:`~agents.networks.IncrementalTrunk`."""
        # imported on first use, as stable-baselines3 itself: the extractor module brings it in (~0.1 s)
        from agents.rl.extractor import SCORE_KEY, SPECTROGRAM_KEY, append_speed

        policy = self.model.policy
        tensors = {key: torch.as_tensor(np.asarray(value, dtype=np.float32), device=policy.device)[None]
                   for key, value in observation.items()}
        features = self._incremental(tensors[SPECTROGRAM_KEY], tensors[SCORE_KEY], int(score_start))
        latent = policy.mlp_extractor.forward_actor(append_speed(features, tensors))
        return int(policy._get_action_dist_from_latent(latent).get_actions(deterministic=deterministic)[0])


def _incremental_trunk(policy):
    """The incremental form of the trunk (:meth:`agents.networks.Trunk.incremental`) of an actor-critic
    policy on single-channel images, or ``None`` when the policy is of another kind."""
    from stable_baselines3.common.policies import ActorCriticPolicy

    from agents.rl.extractor import TrunkExtractor  # on first use, as stable-baselines3 (~0.1 s)

    extractor = getattr(policy, "pi_features_extractor", None)
    if not isinstance(policy, ActorCriticPolicy) or not isinstance(extractor, TrunkExtractor):
        return None
    if extractor.trunk.config.spectrogram_shape[0] != 1:  # difference channels do not stream as a strip slice
        return None
    return extractor.trunk.incremental()


def load_follower(path: str | Path, *, stochastic: bool = False, device: str | torch.device = "cpu",
                  name: str | None = None) -> RLFollower:
    """Load a model saved by ``sfgym train rl`` (a ``.zip``, or a run directory: its best model) as a follower."""
    path = resolve_checkpoint(path, MODEL_FILES, what="model")
    metadata = read_metadata(path)
    model = algorithm_class(metadata["algorithm"]).load(path, device=device)
    return RLFollower(model, name=name or metadata["algorithm"], stochastic=stochastic,
                      env_kwargs=metadata.get("env", {}))


__all__ = ["METADATA_KEY", "MODEL_FILES", "RLFollower", "load_follower", "read_metadata", "save_model"]
