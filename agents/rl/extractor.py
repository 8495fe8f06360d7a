"""The features extractor of every RL policy: the shared multimodal trunk, nothing else.

stable-baselines3's ``MultiInputPolicy`` (and sb3-contrib's ``MultiInputLstmPolicy``) turn the
environment's dict observation into a feature vector with a *features extractor* and put the
policy and value heads on top. :class:`TrunkExtractor` is that extractor; it holds the very
:class:`agents.networks.MultimodalTrunk` the supervised regressors use, under the same attribute
name ``trunk``, so a supervised checkpoint's ``trunk.*`` weights load into it unchanged
(:func:`load_supervised_trunk`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from agents.networks import MatchingTrunk, MultimodalTrunk, TrunkConfig, build_trunk

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
    ``difference_channels`` need no second setting); the remaining trunk settings are keyword
    arguments, set from the ``trunk`` section of an RL config. With the environment's
    ``observe_speed`` the follower's speed (× :data:`SPEED_SCALE`) is appended to the trunk's features.

    Args:
        observation_space: the environment's ``Dict`` observation space.
        features: units of the branch and joint dense layers (512 in the paper); for a matching
            trunk, the size of its embedding space.
        dropout: dropout probability in the convolutional branches.
        width: multiplier of every convolution's channel count.
        kind: ``"figure3"`` (:class:`~agents.networks.MultimodalTrunk`) or ``"matching"``
            (:class:`~agents.networks.MatchingTrunk`).
        match_frames: the spectrogram frames a matching trunk listens to.
        match_context: the neighbouring columns a matching trunk's column embedding sees.
    """

    def __init__(self, observation_space: spaces.Dict, features: int = 512, dropout: float = 0.2,
                 width: float = 1.0, kind: str = "figure3", match_frames: int = 8, match_context: int = 0):
        if not isinstance(observation_space, spaces.Dict) or {SPECTROGRAM_KEY, SCORE_KEY} - set(observation_space.spaces):
            raise ValueError(
                f"TrunkExtractor needs a Dict observation space with '{SPECTROGRAM_KEY}' and '{SCORE_KEY}' "
                f"entries, got {observation_space}"
            )
        config = TrunkConfig(
            spectrogram_shape=tuple(observation_space[SPECTROGRAM_KEY].shape),
            score_shape=tuple(observation_space[SCORE_KEY].shape),
            features=int(features), dropout=float(dropout), width=float(width), kind=kind,
            match_frames=int(match_frames), match_context=int(match_context),
        )
        trunk = build_trunk(config)
        super().__init__(observation_space, features_dim=trunk.features_dim + int(SPEED_KEY in observation_space.spaces))
        self.trunk = trunk

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return append_speed(self.trunk(observations[SPECTROGRAM_KEY], observations[SCORE_KEY]), observations)


def policy_trunks(policy: nn.Module) -> Iterator[MultimodalTrunk | MatchingTrunk]:
    """Every trunk of an SB3 policy: one when the extractor is shared (the default), else the
    actor's and the critic's."""
    seen: set[int] = set()
    for module in policy.modules():
        if isinstance(module, TrunkExtractor) and id(module.trunk) not in seen:
            seen.add(id(module.trunk))
            yield module.trunk


SUPERVISED_BEST = "best.pt"
"""A supervised run directory's best checkpoint (what ``--init-from RUN_DIR`` takes)."""


def read_supervised_trunk(checkpoint: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The trunk weights of a supervised checkpoint, and the trunk settings its config records.

    A supervised checkpoint (:mod:`agents.supervised.checkpoint`) is a ``torch.save``d dict with
    ``model_state`` (the model's ``state_dict``, the trunk under ``trunk.*``) and ``config`` (whose
    ``model`` section names ``trunk_width`` and ``trunk_features``). A run directory means its
    ``best.pt``. The settings are ``{"width": ..., "features": ...}`` as far as the config has them.
    """
    path = Path(checkpoint)
    if path.is_dir():
        path = path / SUPERVISED_BEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: supervised checkpoint not found")
    try:
        # weights_only: a checkpoint is data, never code to run
        content: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a bad file
        raise ValueError(f"{path}: not a readable torch checkpoint ({error})") from error
    if not isinstance(content, dict) or not isinstance(content.get("model_state"), dict):
        raise ValueError(f"{path}: not a supervised checkpoint (expected a dict with a 'model_state' entry)")
    state = {key[len("trunk."):]: value for key, value in content["model_state"].items()
             if key.startswith("trunk.")}
    if not state:
        raise ValueError(f"{path}: its 'model_state' has no 'trunk.*' weights; is it a supervised follower's checkpoint?")
    config = content.get("config")
    model = config.get("model") if isinstance(config, dict) else None
    settings = {}
    if isinstance(model, dict):
        settings = {name: model[key] for name, key in TRUNK_SETTING_KEYS.items() if key in model}
        settings.setdefault("kind", "figure3")  # supervised regressors record no kind: theirs is the paper's
        if settings["kind"] != "matching":
            settings.pop("match_frames", None)
            settings.pop("match_context", None)
    return state, settings


TRUNK_SETTING_KEYS = {"width": "trunk_width", "features": "trunk_features", "kind": "trunk_kind",
                      "match_frames": "match_frames", "match_context": "match_context"}
"""RL ``trunk`` settings → the keys of a supervised config's ``model`` section that record them."""


def check_trunk_settings(checkpoint: str | Path, wanted: dict[str, Any], source: str = "the config") -> None:
    """Raise ``ValueError`` saying what to set when a checkpoint's trunk differs from ``wanted`` (the RL
    config's ``trunk`` settings: width, features, kind, match_frames)."""
    _, settings = read_supervised_trunk(checkpoint)
    differences = {name: value for name, value in settings.items() if value != wanted.get(name)}
    if differences:
        fix = " ".join(f"--set trunk.{name}={value}" for name, value in settings.items())
        raise ValueError(
            f"{checkpoint}: the supervised trunk has {', '.join(f'{k} {v}' for k, v in settings.items())} but "
            f"{source} asks for {', '.join(f'{k} {wanted.get(k)}' for k in settings)}; pass {fix} "
            "(and the same to any run you compare it with)"
        )


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
    """Copy a supervised checkpoint's trunk into every trunk of ``policy``; returns how many.

    A policy observing difference channels gets the supervised first convolutions with zero
    weights for them (:func:`expand_input_channels`). Raises ``ValueError`` naming the checkpoint
    when the trunks differ otherwise (another ``width`` / ``features`` / window size).
    """
    state, _ = read_supervised_trunk(checkpoint)
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
