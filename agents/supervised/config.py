"""The configuration of a supervised training run, read from YAML with every key checked.

A config file has three sections, each a dataclass below: ``model`` (:class:`ModelConfig`), ``data``
(:class:`DataConfig`) and ``training`` (:class:`TrainingConfig`). Keys left out take the defaults
written here; an unknown key, a value of the wrong type or a choice that does not exist raises a
``ValueError`` that names the key and the file. ``--set section.key=value`` on the command line
overrides single values with the same checks (see :func:`apply_overrides`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from agents.config_files import apply_overrides, read_yaml_config
from sfgym.envs.geometry import LOSS_THRESHOLD_PX

CELLS = ("srn", "gru", "lstm")
TARGETS = ("absolute", "relative")


@dataclass(frozen=True)
class ModelConfig:
    """The regressor: shared trunk → recurrent core → linear head.

    Attributes:
        cell: recurrent core: ``srn`` (Elman RNN, tanh), ``gru`` or ``lstm``.
        hidden_size: units per recurrent layer (1024 in the seed paper).
        num_layers: stacked recurrent layers (2 in the seed paper).
        target: ``absolute`` — the seed's: the normalized position in the piece, x / sheet width;
            ``relative`` — the offset of the true x from the centre of the current score window (the
            model's previous estimate), in units of ``offset_scale_px``.
        offset_scale_px: native sheet pixels per unit of a relative target (256 = half the window).
        trunk_width: multiplies the trunk's channel counts (1.0 = the paper's Figure 3).
        trunk_features: units of the trunk's dense layers (512 in the paper).
        dropout: dropout of the trunk (0.2 in the paper).
    """

    cell: Literal["srn", "gru", "lstm"] = "lstm"
    hidden_size: int = 1024
    num_layers: int = 2
    target: Literal["absolute", "relative"] = "relative"
    offset_scale_px: float = 256.0
    trunk_width: float = 1.0
    trunk_features: int = 512
    dropout: float = 0.2


@dataclass(frozen=True)
class DataConfig:
    """Where the songs come from and how many are used.

    Attributes:
        dir: dataset root (with train/valid/test) or a split directory; ``null`` = the default dataset
            (built on first use).
        train_split / valid_split: split names inside ``dir``.
        cache_size: songs held in memory at once; a fresh random draw from the train split each epoch
            (the seed paper used 15 and found 5 overfits).
        songs_per_epoch: songs trained on per epoch, drawn from the cache (with replacement only when
            more than the cache holds).
        max_steps_per_song: frames trained on per song (``null`` = to its last onset). The seed found
            ~300 helped its absolute model; with ``random_start`` the window moves through the song.
        random_start: start each training song at a random onset rather than the first (``relative``
            only: an ``absolute`` model needs the song's beginning to know where it is).
        valid_max_songs: validate on at most this many valid songs (``null`` = all), always the same ones,
            evenly spaced in name order (so that they cover many scores).
    """

    dir: str | None = None
    train_split: str = "train"
    valid_split: str = "valid"
    cache_size: int = 15
    songs_per_epoch: int = 15
    max_steps_per_song: int | None = None
    random_start: bool = True
    valid_max_songs: int | None = None


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation, loss and bookkeeping.

    Attributes:
        epochs: maximum number of epochs.
        max_minutes: wall-clock budget of the whole run (``null`` = none); checked after every batch,
            and the run then ends with a validation pass.
        batch_songs: songs processed side by side (padded, masked).
        tbptt_steps: frames per truncated-backprop chunk; the recurrent state is carried (detached)
            from one chunk to the next and reset only at a song's start.
        lr / weight_decay: Adam.
        grad_clip: maximum gradient norm (``null`` = no clipping).
        jump_penalty: λ of the loss (p − p̂_t)² + λ (p̂_t − p̂_{t−1})² (0.2 in the seed paper).
        estimate_noise_px: std of Gaussian noise added to the previous estimate before it centres the
            next score window, so that the model learns to correct its own errors.
        max_centre_error_px: during training the window centre is clamped to within this distance of
            the truth: the environment stops a follower that strays further (its loss threshold, 170 px),
            so farther states never occur at test time and would only teach from windows without the target.
        patience: stop after this many epochs without a better validation score (``null`` = never).
        seed: seeds the song draws, the noise, dropout and the initial weights.
        device: ``auto`` (the GPU if present, else the CPU), ``cpu`` or ``cuda``.
        num_threads: CPU threads for torch (``null`` = torch's default).
        tensorboard: also write TensorBoard logs (needs the ``tensorboard`` package).
    """

    epochs: int = 50
    max_minutes: float | None = None
    batch_songs: int = 8
    tbptt_steps: int = 50
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    jump_penalty: float = 0.2
    estimate_noise_px: float = 20.0
    max_centre_error_px: float = LOSS_THRESHOLD_PX
    patience: int | None = 10
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int | None = None
    tensorboard: bool = False


@dataclass(frozen=True)
class SupervisedConfig:
    """A whole run's configuration (the YAML file's three sections)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Any, source: str = "<config>") -> "SupervisedConfig":
        """Build and check a config from nested dicts (as read from YAML)."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ValueError(f"{source}: a config must be a mapping with sections {_section_names()}, "
                             f"got {type(raw).__name__}")
        sections = {f.name: f for f in dataclasses.fields(cls)}
        unknown = [key for key in raw if key not in sections]
        if unknown:
            raise ValueError(f"{source}: unknown section '{unknown[0]}' (known sections: {_section_names()})")
        values = {}
        for name, section_field in sections.items():
            section_type = _section_type(section_field)
            values[name] = _build_section(section_type, raw.get(name), name, source)
        config = cls(**values)
        config.check(source)
        return config

    def check(self, source: str = "<config>") -> None:
        """Cross-field checks (each field's type is checked when the config is built)."""
        positive = {"model.hidden_size": self.model.hidden_size, "model.num_layers": self.model.num_layers,
                    "model.offset_scale_px": self.model.offset_scale_px, "model.trunk_width": self.model.trunk_width,
                    "model.trunk_features": self.model.trunk_features, "data.cache_size": self.data.cache_size,
                    "data.songs_per_epoch": self.data.songs_per_epoch, "training.epochs": self.training.epochs,
                    "training.batch_songs": self.training.batch_songs, "training.tbptt_steps": self.training.tbptt_steps,
                    "training.lr": self.training.lr}
        optional_positive = {"data.max_steps_per_song": self.data.max_steps_per_song,
                             "data.valid_max_songs": self.data.valid_max_songs,
                             "training.max_minutes": self.training.max_minutes,
                             "training.grad_clip": self.training.grad_clip,
                             "training.patience": self.training.patience,
                             "training.num_threads": self.training.num_threads}
        positive.update({k: v for k, v in optional_positive.items() if v is not None})
        for key, value in positive.items():
            if value <= 0:
                raise ValueError(f"{source}: '{key}' must be positive, got {value}")
        for key, value in {"training.jump_penalty": self.training.jump_penalty,
                           "training.estimate_noise_px": self.training.estimate_noise_px,
                           "training.weight_decay": self.training.weight_decay,
                           "training.max_centre_error_px": self.training.max_centre_error_px}.items():
            if value < 0:
                raise ValueError(f"{source}: '{key}' must not be negative, got {value}")
        if self.model.target == "absolute" and self.data.random_start:
            raise ValueError(f"{source}: 'data.random_start: true' needs 'model.target: relative' (an absolute "
                             "model can only know where it is from the song's beginning); set it to false")
        if not 0.0 <= self.model.dropout < 1.0:
            raise ValueError(f"{source}: 'model.dropout' must be in [0, 1), got {self.model.dropout}")


def load_config(path: str | Path, overrides: list[str] | None = None) -> SupervisedConfig:
    """Read a YAML config file, apply ``section.key=value`` overrides and check everything.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unreadable YAML, an unknown section or key, or a bad value; the message names the file.
    """
    raw = read_yaml_config(path)
    config = SupervisedConfig.from_dict(raw, source=str(path))
    if overrides:
        config = SupervisedConfig.from_dict(apply_overrides(raw, overrides), source=f"{path} with --set")
    return config


def save_config(config: SupervisedConfig, path: str | Path) -> None:
    """Write ``config`` as YAML (atomically)."""
    from sfgym.files import atomic_write_bytes

    atomic_write_bytes(path, yaml.safe_dump(config.to_dict(), sort_keys=False).encode())


def config_differences(a: SupervisedConfig, b: SupervisedConfig) -> list[str]:
    """``section.key: a_value != b_value`` for every key on which two configs differ."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{section}.{key}: {da[section][key]!r} != {db[section][key]!r}"
            for section in da for key in da[section] if da[section][key] != db[section][key]]


# ---------------------------------------------------------------------------- checking helpers
def _section_names() -> list[str]:
    return [f.name for f in dataclasses.fields(SupervisedConfig)]


def _section_type(section_field: dataclasses.Field) -> type:
    hints = typing.get_type_hints(SupervisedConfig)
    return hints[section_field.name]


def _build_section(section_type: type, raw: Any, section: str, source: str):
    if raw is None:
        return section_type()
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: section '{section}' must be a mapping, got {type(raw).__name__}")
    fields = {f.name for f in dataclasses.fields(section_type)}
    hints = typing.get_type_hints(section_type)
    values = {}
    for key, value in raw.items():
        if key not in fields:
            raise ValueError(f"{source}: unknown key '{section}.{key}' "
                             f"(known keys in '{section}': {', '.join(sorted(fields))})")
        values[key] = _checked_value(value, hints[key], f"{section}.{key}", source)
    return section_type(**values)


def _checked_value(value: Any, hint: Any, key: str, source: str) -> Any:
    """``value`` converted to ``hint`` (int → float allowed), or a ValueError naming the key."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise ValueError(f"{source}: '{key}' must not be null")
    for option in allowed:
        if typing.get_origin(option) is Literal:
            if value in typing.get_args(option):
                return value
            raise ValueError(f"{source}: '{key}' must be one of {list(typing.get_args(option))}, got {value!r}")
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
    names = " or ".join("null" if a is type(None) else getattr(a, "__name__", str(a)) for a in allowed)
    raise ValueError(f"{source}: '{key}' must be {names}, got {value!r}")


__all__ = ["CELLS", "DataConfig", "ModelConfig", "SupervisedConfig", "TARGETS", "TrainingConfig",
           "apply_overrides", "config_differences", "load_config", "save_config"]
