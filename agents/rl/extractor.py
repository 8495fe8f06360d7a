"""The features extractor of every RL policy: the shared multimodal trunk, nothing else.

stable-baselines3's ``MultiInputPolicy`` (and sb3-contrib's ``MultiInputLstmPolicy``) turn the
environment's dict observation into a feature vector with a *features extractor* and put the
policy and value heads on top. :class:`TrunkExtractor` is that extractor; it holds the very
:class:`agents.networks.MultimodalTrunk` the supervised regressors use, under the same attribute
name ``trunk``, so the ``trunk.*`` weights of a supervised or trunk pre-training checkpoint load into
it unchanged (:func:`load_supervised_trunk`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from agents.networks import MultimodalTrunk, Trunk, TrunkConfig, build_trunk
from agents.runs import read_trunk

SPECTROGRAM_KEY = "spectrogram"
SCORE_KEY = "score"
SPEED_KEY = "speed"
SPEED_SCALE = 0.1
"""The follower's speed (px/frame, typically 0..20) enters the policy multiplied by this."""


def append_speed(features: torch.Tensor, observations: dict[str, torch.Tensor]) -> torch.Tensor:
    """``features`` with the scaled speed appended, when the observation has it (``observe_speed``)."""
    if SPEED_KEY not in observations:
        return features
    return torch.cat([features, observations[SPEED_KEY].reshape(-1, 1) * SPEED_SCALE], dim=1)


class TrunkExtractor(BaseFeaturesExtractor):
    """``{"spectrogram": (B, C, 78, 40), "score": (B, C, 80, 256)}`` → ``(B, features)``.

    The input shapes come from the observation space (so the environment's window sizes and
    ``difference_channels`` need no second setting); the trunk's settings are those of a
    :class:`~agents.networks.TrunkConfig` (the ``trunk`` section of an RL config), given as keyword
    arguments (:meth:`TrunkConfig.settings`: what SB3 stores with a saved model). With the environment's
    ``observe_speed`` the follower's speed (× :data:`SPEED_SCALE`) is appended to the trunk's features.

    Args:
        observation_space: the environment's ``Dict`` observation space.
        **settings: keys of :attr:`TrunkConfig.YAML_KEYS` (kind, features, dropout, width, match_frames,
            match_context); the ones left out take :class:`~agents.networks.TrunkConfig`'s defaults.
    """

    def __init__(self, observation_space: spaces.Dict, **settings: Any):
        if not isinstance(observation_space, spaces.Dict) or {SPECTROGRAM_KEY, SCORE_KEY} - set(observation_space.spaces):
            raise ValueError(
                f"TrunkExtractor needs a Dict observation space with '{SPECTROGRAM_KEY}' and '{SCORE_KEY}' "
                f"entries, got {observation_space}"
            )
        config = TrunkConfig.from_settings(settings, "TrunkExtractor").with_shapes(
            observation_space[SPECTROGRAM_KEY].shape, observation_space[SCORE_KEY].shape)
        trunk = build_trunk(config)
        super().__init__(observation_space, features_dim=trunk.features_dim + int(SPEED_KEY in observation_space.spaces))
        self.trunk = trunk

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return append_speed(self.trunk(observations[SPECTROGRAM_KEY], observations[SCORE_KEY]), observations)


def policy_trunks(policy: nn.Module) -> Iterator[Trunk]:
    """Every trunk of an SB3 policy: one when the extractor is shared (the default), else the
    actor's and the critic's."""
    seen: set[int] = set()
    for module in policy.modules():
        if isinstance(module, TrunkExtractor) and id(module.trunk) not in seen:
            seen.add(id(module.trunk))
            yield module.trunk


FIRST_CONVOLUTIONS = ("spectrogram_convs.0.weight", "score_convs.0.weight")
"""The trunk's input layers: the only weights whose shape depends on the observation's channels."""


def expand_input_channels(state: dict[str, torch.Tensor], trunk: MultimodalTrunk) -> dict[str, torch.Tensor]:
    """Fit a trunk trained on plain images (1 channel) to observations with difference channels.

    With ``difference_channels`` the policy sees ``(image, image - previous)``; the supervised
    trunk saw the image alone. The first convolutions get zero weights for the extra channels,
    so the policy's trunk starts out computing exactly the supervised features (the difference
    channel is ignored) and RL is free to learn to use it. Other shapes are left as they are
    (a mismatch there is reported by :meth:`MultimodalTrunk.load_trunk`).
    """
    own = trunk.state_dict()
    state = dict(state)
    for key in FIRST_CONVOLUTIONS:
        source, target = state.get(key), own.get(key)
        if source is None or target is None or source.shape == target.shape:
            continue
        if source.shape[0] == target.shape[0] and source.shape[2:] == target.shape[2:] and source.shape[1] < target.shape[1]:
            expanded = torch.zeros_like(target)
            expanded[:, : source.shape[1]] = source
            state[key] = expanded
    return state


def load_supervised_trunk(policy: nn.Module, checkpoint: str | Path) -> int:
    """Copy the trunk of a checkpoint (supervised or trunk pre-training, :func:`agents.runs.read_trunk`)
    into every trunk of ``policy``; returns how many.

    A policy observing difference channels gets the supervised first convolutions with zero
    weights for them (:func:`expand_input_channels`). Raises ``ValueError`` naming the checkpoint
    when the trunks differ otherwise (another ``width`` / ``features`` / window size).
    """
    state, _ = read_trunk(checkpoint)
    trunks = list(policy_trunks(policy))
    if not trunks:
        raise ValueError("the policy has no TrunkExtractor to load the supervised trunk into")
    for trunk in trunks:
        trunk.load_trunk(expand_input_channels(state, trunk), source=str(checkpoint))
    return len(trunks)


def set_trunk_trainable(policy: nn.Module, trainable: bool) -> None:
    """Freeze (``False``) or unfreeze the policy's trunk(s).

    A frozen parameter gets no gradient, and SB3's optimizers (``zero_grad`` sets gradients to
    ``None``) skip parameters without one, so frozen weights stay exactly as loaded.
    """
    for trunk in policy_trunks(policy):
        for parameter in trunk.parameters():
            parameter.requires_grad_(trainable)
