"""The multimodal trunk shared by every learned follower.

Two convolutional branches — one reads the spectrogram window, one the score window — each end in a
dense layer of 512 units; their outputs are concatenated and mixed by another dense layer of 512
(Dorfer et al. 2018, the seed paper's Figure 3). The supervised regressors put a recurrent core and a
linear head on top; the RL policies use the same module as stable-baselines3's features extractor, so
weights move between the two (see :func:`trunk_state_dict` / :meth:`MultimodalTrunk.load_trunk`).

All convolutions are unpadded, with ELU activations and dropout 0.2 where the figure says "DO".

A second trunk, :class:`MatchingTrunk` (``TrunkConfig.kind = "matching"``), takes the same observations
and outputs where in the score window the sound is written (a distribution over its columns); it is
what RL learns on within a CPU budget (the shipped config ``ppo_matching``). :data:`TRUNK_KINDS` names
every kind's class; :func:`build_trunk` makes one from a :class:`TrunkConfig`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from agents.config_files import build_section
from agents.sliding import StreamingBranch, branch_at_every_window

# (out_channels, kernel, stride, dropout after) per layer; the seed paper's Figure 3.
SPECTROGRAM_LAYERS = (
    (32, 3, 1, False), (32, 3, 1, False), (64, 3, 2, False), (64, 3, 1, True),
    (64, 3, 2, False), (96, 3, 2, False), (96, 3, 1, False), (96, 1, 1, True),
)
SCORE_LAYERS = (
    (32, 5, (1, 2), False), (32, 3, 1, False), (64, 3, 2, False), (64, 3, 1, True),
    (64, 3, 2, False), (64, 3, 2, True), (96, 3, 2, False), (96, 1, 1, True),
)


@dataclass(frozen=True)
class TrunkConfig:
    """The trunk: its kind and settings, the one description every trainer, checkpoint and follower shares.

    The YAML of every trainer (supervised, RL, trunk pre-training) holds it as a ``trunk:`` section
    with the keys :attr:`YAML_KEYS`; every checkpoint records it, and ``--init-from`` takes it from the
    checkpoint. The input shapes are not settings: they follow from the observation space.

    Attributes:
        spectrogram_shape: (channels, bins, frames) of the spectrogram observation.
        score_shape: (channels, rows, columns) of the score observation.
        features: units of each branch's dense layer and of the joint layer (512 in the paper).
        dropout: dropout probability after the marked convolutions.
        width: multiplies every convolution's channel count (1.0 = the paper; 0.25 for tiny test models).
        kind: ``"figure3"`` (:class:`MultimodalTrunk`, the paper's) or ``"matching"``
            (:class:`MatchingTrunk`; ``features`` is then the size of its shared embedding space); see
            :data:`TRUNK_KINDS`.
        match_frames: the last frames of the spectrogram window a matching trunk listens to.
        match_context: columns on each side that a matching trunk's column embedding also sees (its
            neighbours' notes; 0 = the notehead alone), so that recent *sequences* of notes are matched.
    """

    spectrogram_shape: tuple[int, int, int] = (1, 78, 40)
    score_shape: tuple[int, int, int] = (1, 80, 256)
    features: int = 512
    dropout: float = 0.2
    width: float = 1.0
    kind: str = "figure3"
    match_frames: int = 8
    match_context: int = 0

    YAML_KEYS: ClassVar[tuple[str, ...]] = ("kind", "features", "dropout", "width", "match_frames", "match_context")
    """The keys of a config's ``trunk:`` section (the shapes come from the observation space)."""

    def __post_init__(self):
        if self.kind not in TRUNK_KINDS:
            raise ValueError(f"trunk: unknown trunk kind {self.kind!r} (known: {', '.join(TRUNK_KINDS)})")
        for key in ("features", "width"):
            if getattr(self, key) <= 0:
                raise ValueError(f"'trunk.{key}' must be positive, got {getattr(self, key)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"'trunk.dropout' must be in [0, 1), got {self.dropout!r}")
        if not 1 <= self.match_frames <= self.spectrogram_shape[2]:
            raise ValueError(f"trunk: match_frames must be within 1..{self.spectrogram_shape[2]} (the spectrogram "
                             f"window), got {self.match_frames}")
        if not 0 <= self.match_context < self.score_shape[2] // 4:
            raise ValueError(f"trunk: match_context must be within 0..{self.score_shape[2] // 4 - 1}, "
                             f"got {self.match_context}")

    def settings(self) -> dict[str, Any]:
        """The ``trunk:`` section of this config (its :attr:`YAML_KEYS`), as written to files."""
        return {key: getattr(self, key) for key in self.YAML_KEYS}

    def architecture(self) -> dict[str, Any]:
        """The settings that decide the shapes of the weights (dropout does not), in the order error
        messages name them; a matching trunk's ``match_*`` only for that kind."""
        return {key: getattr(self, key) for key in TRUNK_KINDS[self.kind].ARCHITECTURE}

    def with_shapes(self, spectrogram_shape, score_shape) -> "TrunkConfig":
        """This config for observations of these shapes."""
        return dataclasses.replace(self, spectrogram_shape=tuple(spectrogram_shape), score_shape=tuple(score_shape))

    @classmethod
    def from_settings(cls, settings: dict[str, Any], source: str = "trunk settings") -> "TrunkConfig":
        """A config from a ``trunk:`` mapping (as checkpoints record it), checked like a YAML section."""
        return build_section(cls, settings, "trunk", source, cls.YAML_KEYS)


def _branch(in_channels: int, layers, dropout: float, width: float) -> nn.Sequential:
    modules: list[nn.Module] = []
    for out_channels, kernel, stride, with_dropout in layers:
        out_channels = max(4, int(round(out_channels * width)))
        modules += [nn.Conv2d(in_channels, out_channels, kernel_size=kernel, stride=stride), nn.ELU()]
        if with_dropout:
            modules.append(nn.Dropout(dropout))
        in_channels = out_channels
    modules.append(nn.Flatten())
    return nn.Sequential(*modules)


class Trunk(nn.Module):
    """What every trunk has: its :class:`TrunkConfig`, ``features_dim`` (the size of its output) and
    weight loading that names what does not fit; and what each kind provides in its own way, so that
    no other module needs to ask which kind it holds:

    - :meth:`incremental`: the form that follows one piece frame by frame (:mod:`agents.sliding`);
    - :meth:`spectrogram_table`, :meth:`score_table`, :meth:`tabled_features`: the trunk's output
      looked up from per-piece tables when it is frozen (:mod:`agents.rl.frozen_trunk`).

    The model that pre-trains each kind is named in :data:`agents.pretraining.train.PRETRAINING_MODELS`
    (pre-training builds on this module, not the other way round).
    """

    config: TrunkConfig
    KIND: ClassVar[str]
    """The :attr:`TrunkConfig.kind` that names this class in :data:`TRUNK_KINDS`."""
    ARCHITECTURE: ClassVar[tuple[str, ...]] = ("width", "features", "kind")
    """The settings that decide the shapes of this kind's weights (see :meth:`TrunkConfig.architecture`)."""

    def load_trunk(self, state_dict: dict[str, torch.Tensor], source: str = "<state dict>") -> None:
        """Load trunk weights, with a clear error if they come from a trunk of another shape."""
        mismatch = state_dict_mismatch(self, state_dict)
        if mismatch:
            raise ValueError(f"{source}: trunk weights do not fit this model ({mismatch}); "
                             "was it trained with another trunk configuration?")
        self.load_state_dict(state_dict)

    def incremental(self):
        """This trunk's incremental form (inference only): ``reset(strip)`` per piece, then one call per frame."""
        raise NotImplementedError

    def spectrogram_table(self, spectrogram: torch.Tensor) -> np.ndarray:
        """Per environment frame ``0 .. T`` of a ``(bins, T)`` spectrogram: the sound's part of the output."""
        raise NotImplementedError

    def score_table(self, strip: torch.Tensor) -> np.ndarray:
        """Per column (or window start) of a ``(rows, S)`` score strip: the score's part of the output."""
        raise NotImplementedError

    def tabled_features(self, sound: np.ndarray, score_table: np.ndarray, start: int) -> np.ndarray:
        """The trunk's output from one row of :meth:`spectrogram_table` with the window at ``start``."""
        raise NotImplementedError


class MultimodalTrunk(Trunk):
    """Spectrogram branch + score branch → joint 512-d features.

    ``forward(spectrogram, score)`` takes float tensors of shape ``(B, *spectrogram_shape)`` and
    ``(B, *score_shape)`` and returns ``(B, features)``.
    """

    KIND = "figure3"

    def __init__(self, config: TrunkConfig | None = None):
        config = config or TrunkConfig()
        super().__init__()
        self.config = config
        self.spectrogram_convs = _branch(config.spectrogram_shape[0], SPECTROGRAM_LAYERS, config.dropout, config.width)
        self.score_convs = _branch(config.score_shape[0], SCORE_LAYERS, config.dropout, config.width)
        with torch.no_grad():  # flattened sizes follow from the input shapes
            spectrogram_flat = self.spectrogram_convs(torch.zeros(1, *config.spectrogram_shape)).shape[1]
            score_flat = self.score_convs(torch.zeros(1, *config.score_shape)).shape[1]
        self.spectrogram_dense = nn.Sequential(nn.Linear(spectrogram_flat, config.features), nn.ELU())
        self.score_dense = nn.Sequential(nn.Linear(score_flat, config.features), nn.ELU())
        self.joint = nn.Sequential(nn.Linear(2 * config.features, config.features), nn.ELU())

    @property
    def features_dim(self) -> int:
        return self.config.features

    def forward(self, spectrogram: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        spectrogram_features = self.spectrogram_dense(self.spectrogram_convs(spectrogram))
        score_features = self.score_dense(self.score_convs(score))
        return self.joint(torch.cat([spectrogram_features, score_features], dim=1))

    def incremental(self):
        return IncrementalTrunk(self)

    # The joint layer is linear before its activation, so each table holds its branch's share of it
    # already projected: the output is ELU(spectrogram part[frame] + score part[start]).
    def spectrogram_table(self, spectrogram: torch.Tensor) -> np.ndarray:
        joint = self._joint_linear()
        return (spectrogram_features_every_frame(self, spectrogram) @ joint.weight[:, : self.config.features].T
                + joint.bias).numpy()

    def score_table(self, strip: torch.Tensor) -> np.ndarray:
        joint = self._joint_linear()
        return (score_features_every_start(self, strip) @ joint.weight[:, self.config.features :].T).numpy()

    def tabled_features(self, sound: np.ndarray, score_table: np.ndarray, start: int) -> np.ndarray:
        before_activation = sound + score_table[start]
        return np.where(before_activation > 0, before_activation, np.expm1(np.minimum(before_activation, 0)))

    def _joint_linear(self) -> nn.Linear:
        linear, activation = self.joint
        if not isinstance(linear, nn.Linear) or not isinstance(activation, nn.ELU) or activation.alpha != 1.0:
            raise ValueError(f"feature tables expect the trunk's joint layer to be Linear → ELU, got {self.joint}")
        return linear


# (out_channels, kernel) per layer of a matching trunk's column embedding, each followed by ELU and
# halving the rows; a last convolution spans the remaining rows. Unpadded across columns, so every
# layer loses kernel - 1 columns: the embeddings of a window are exactly those of the strip.
COLUMN_LAYERS = ((16, (5, 3)), (32, (3, 3)), (32, (3, 3)))


class MatchingTrunk(Trunk):
    """Where in the score window is the sound? A trunk built to match audio to notation.

    Every column of the score window is embedded (convolutions over its neighbourhood, rows pooled
    away), and so is the sound of the last ``match_frames`` spectrogram frames (one hidden layer); the
    features are the softmax over the columns of the two embeddings' dot products: a distribution
    over where in the window the music now sounding is written. A velocity policy reads its offset
    from the centre directly; the figure-3 trunk has to discover such a comparison in a dense layer,
    which a CPU budget does not reach (``sfgym train trunk`` pre-trains this one in minutes).

    ``forward(spectrogram, score)`` takes the same ``(B, C, 78, 40)`` and ``(B, C, rows, columns)``
    images as :class:`MultimodalTrunk` (channel 0 is read: difference channels carry no position) and
    returns ``(B, columns - 2 * margin)`` probabilities; feature ``j`` is window column ``j + margin``
    (:attr:`margin`: the columns lost at each edge, :data:`COLUMN_MARGIN` + ``match_context``).
    :meth:`column_embeddings` and :meth:`sound_embeddings` compute the two
    sides for a whole strip / performance at once (:class:`agents.rl.frozen_trunk.TrunkFeatureTables`).
    """

    KIND = "matching"
    ARCHITECTURE = ("width", "features", "kind", "match_frames", "match_context")

    def __init__(self, config: TrunkConfig):
        super().__init__()
        self.config = config
        rows = config.score_shape[1]
        layers: list[nn.Module] = []
        in_channels = 1
        for out_channels, kernel in COLUMN_LAYERS:
            out_channels = max(4, int(round(out_channels * config.width)))
            layers += [nn.Conv2d(in_channels, out_channels, kernel, padding=(kernel[0] // 2, 0)), nn.ELU(),
                       nn.MaxPool2d((2, 1))]
            in_channels, rows = out_channels, rows // 2
        layers.append(nn.Conv2d(in_channels, config.features, (rows, 1)))
        if config.match_context:  # each column's embedding mixes in its neighbours' (notes before and after)
            layers += [nn.ELU(), nn.Conv2d(config.features, config.features, (1, 2 * config.match_context + 1))]
        self.column_convs = nn.Sequential(*layers)
        self.margin = COLUMN_MARGIN + config.match_context
        self.sound_dense = nn.Sequential(
            nn.Linear(config.spectrogram_shape[1] * config.match_frames, 256), nn.ELU(), nn.Dropout(config.dropout),
            nn.Linear(256, config.features))

    @property
    def features_dim(self) -> int:
        return self.config.score_shape[2] - 2 * self.margin

    def column_embeddings(self, score: torch.Tensor) -> torch.Tensor:
        """``(B, rows, W)`` score images (one channel) → ``(B, W - 2 * margin, features)``."""
        return self.column_convs(score[:, None])[:, :, 0].transpose(1, 2)

    def sound_embeddings(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, 78, match_frames)`` spectrogram frames → ``(B, features)``."""
        return self.sound_dense(frames.flatten(1))

    def match_logits(self, spectrogram: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """Unnormalized log-probabilities of the columns, ``(B, features_dim)``."""
        sound = self.sound_embeddings(spectrogram[:, 0, :, -self.config.match_frames:])
        return torch.einsum("bwk,bk->bw", self.column_embeddings(score[:, 0]), sound)

    def forward(self, spectrogram: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.match_logits(spectrogram, score), dim=1)

    def incremental(self):
        return IncrementalMatchingTrunk(self)

    def spectrogram_table(self, spectrogram: torch.Tensor) -> np.ndarray:
        """Per frame: the sound embedding of what the environment's window at that frame ends with."""
        heard, window = self.config.match_frames, self.config.spectrogram_shape[2]
        # env frame f observes frames f - window .. f - 1 (zeros before the first): it hears the last `heard`
        padded = torch.nn.functional.pad(spectrogram, (window, 0))
        frames = padded.unfold(1, heard, 1)[:, window - heard:].permute(1, 0, 2)  # (T + 1, bins, heard)
        return self.sound_embeddings(frames).numpy()

    def score_table(self, strip: torch.Tensor) -> np.ndarray:
        """Per strip column (less the margins): its embedding."""
        return self.column_embeddings(strip[None])[0].numpy()

    def tabled_features(self, sound: np.ndarray, score_table: np.ndarray, start: int) -> np.ndarray:
        logits = score_table[start : start + self.features_dim] @ sound  # softmax over the window's columns
        probabilities = np.exp(logits - logits.max())
        return probabilities / probabilities.sum()


COLUMN_MARGIN = sum(kernel[1] - 1 for _, kernel in COLUMN_LAYERS) // 2
"""Columns the convolutions of a matching trunk lose at each edge of its window (3), ``match_context`` aside."""


# ---------------------------------------------------------------------------- incremental forms and feature tables
def score_features_every_start(trunk: MultimodalTrunk, strip: torch.Tensor) -> torch.Tensor:
    """``(S - W + 1, features)``: the score branch (with its dense layer) for the window starting at
    every column of ``strip`` (``(rows, S)`` float, the values of the score observation; W = the
    window's columns). Differentiable, as :func:`branch_at_every_window`."""
    return branch_at_every_window(trunk.score_convs, strip.reshape(1, *strip.shape),
                                  trunk.config.score_shape[-1], head=trunk.score_dense)


def spectrogram_features_every_frame(trunk: MultimodalTrunk, spectrogram: torch.Tensor) -> torch.Tensor:
    """``(T + 1, features)``: row ``f`` is the spectrogram branch (with its dense layer) on the window
    the environment shows at frame ``f`` — frames ``f - W .. f - 1``, zeros before the first."""
    window = trunk.config.spectrogram_shape[-1]
    padded = F.pad(spectrogram.reshape(1, *spectrogram.shape), (window, 0))
    return branch_at_every_window(trunk.spectrogram_convs, padded, window, head=trunk.spectrogram_dense)


class IncrementalTrunk:
    """A :class:`MultimodalTrunk` that follows one piece, frame by frame, cheaply.

    At :meth:`reset` the score branch runs once for every window position of the piece's strip;
    each call then looks the score features up and streams the spectrogram branch one frame on
    (:class:`StreamingBranch`). The result is the trunk's own output; an observation that is not the
    expected strip slice, or a spectrogram window that did not move by exactly one frame, takes the
    plain trunk (counted in :attr:`plain_frames`) or restarts the stream.

    Args:
        trunk: the trunk (inference only; its weights are used, not copied).
    """

    def __init__(self, trunk: MultimodalTrunk):
        self.trunk = trunk
        self.plain_frames = 0
        self._strip: torch.Tensor | None = None
        self._score_features: torch.Tensor | None = None
        self._stream = StreamingBranch(trunk.spectrogram_convs, trunk.config.spectrogram_shape)
        self._last_spectrogram: torch.Tensor | None = None

    def reset(self, strip: torch.Tensor) -> None:
        """Start a piece whose score windows are slices of ``strip`` (``(rows, S)`` float, the observation's
        values to the bit: :func:`sfgym.envs.msmd_follow.score_observation_values`)."""
        self._strip = strip
        with torch.no_grad():
            self._score_features = score_features_every_start(self.trunk, strip)
        self._last_spectrogram = None

    @torch.no_grad()
    def __call__(self, spectrogram: torch.Tensor, score: torch.Tensor, start: int) -> torch.Tensor:
        """The trunk's ``(1, features)`` for one observation (``(1, C, H, W)`` tensors) whose score
        window starts at strip column ``start``."""
        if self._strip is None:
            raise RuntimeError("IncrementalTrunk: call reset(strip) before the first frame")
        columns = self.trunk.config.score_shape[-1]
        expected = self._strip[:, start : start + columns]
        if expected.shape != score.shape[2:] or not torch.equal(expected, score[0, 0]):
            self.plain_frames += 1
            self._last_spectrogram = None
            return self.trunk(spectrogram, score)
        window = spectrogram[0]
        previous = self._last_spectrogram
        if previous is not None and torch.equal(window[..., :-1], previous[..., 1:]):
            spectrogram_flat = self._stream.push(window[..., -1:])  # the usual case: one frame on
        else:
            spectrogram_flat = self._stream.start(window)
        self._last_spectrogram = window
        spectrogram_features = self.trunk.spectrogram_dense(spectrogram_flat)
        score_features = self._score_features[start : start + 1]
        return self.trunk.joint(torch.cat([spectrogram_features, score_features], dim=1))


class IncrementalMatchingTrunk:
    """A :class:`MatchingTrunk` that follows one piece, frame by frame, cheaply.

    At :meth:`reset` every column of the strip is embedded once; a call embeds the sound of the
    observation's last frames and compares it with the window's columns, looked up. Same interface
    and fallback as :class:`IncrementalTrunk` (an observation that is not the expected strip slice
    takes the plain trunk, counted in :attr:`plain_frames`).
    """

    def __init__(self, trunk: MatchingTrunk):
        self.trunk = trunk
        self.plain_frames = 0
        self._strip: torch.Tensor | None = None
        self._columns: torch.Tensor | None = None

    def reset(self, strip: torch.Tensor) -> None:
        """Start a piece whose score windows are slices of ``strip`` (see :meth:`IncrementalTrunk.reset`)."""
        self._strip = strip
        with torch.no_grad():
            self._columns = self.trunk.column_embeddings(strip[None])[0]

    @torch.no_grad()
    def __call__(self, spectrogram: torch.Tensor, score: torch.Tensor, start: int) -> torch.Tensor:
        """The trunk's ``(1, features_dim)`` for one observation whose score window starts at ``start``."""
        if self._strip is None:
            raise RuntimeError("IncrementalMatchingTrunk: call reset(strip) before the first frame")
        expected = self._strip[:, start : start + self.trunk.config.score_shape[-1]]
        if expected.shape != score.shape[2:] or not torch.equal(expected, score[0, 0]):
            self.plain_frames += 1
            return self.trunk(spectrogram, score)
        sound = self.trunk.sound_embeddings(spectrogram[:, 0, :, -self.trunk.config.match_frames:])
        logits = self._columns[start : start + self.trunk.features_dim] @ sound[0]
        return torch.softmax(logits, dim=0)[None]


TRUNK_KINDS: dict[str, type[Trunk]] = {cls.KIND: cls for cls in (MultimodalTrunk, MatchingTrunk)}
"""Every trunk kind by its name: the one place a kind is looked up (configs, checkpoints, trainers)."""


def build_trunk(config: TrunkConfig) -> Trunk:
    """The trunk ``config.kind`` names."""
    return TRUNK_KINDS[config.kind](config)


def state_dict_mismatch(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> str | None:
    """Why ``state_dict`` cannot be loaded into ``module`` (missing, unexpected or reshaped keys), or None."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    reshaped = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)} here" for k, v in own.items()
                if k in state_dict and state_dict[k].shape != v.shape]
    if not (missing or unexpected or reshaped):
        return None
    return (f"{len(missing)} missing (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]}), "
            f"{len(reshaped)} of another shape (e.g. {reshaped[:2]})")


def trunk_state_dict(module: nn.Module, prefix: str = "trunk.") -> dict[str, torch.Tensor]:
    """The trunk's weights from a model that holds a :class:`MultimodalTrunk` under ``prefix``."""
    return {k[len(prefix):]: v for k, v in module.state_dict().items() if k.startswith(prefix)}


def default_device() -> torch.device:
    """``cuda`` when a GPU is present, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
