"""The configuration of a supervised training run, read from YAML with every key checked.

A config file has four sections, each a dataclass: ``model`` (:class:`ModelConfig`), ``trunk``
(:class:`agents.networks.TrunkConfig`, the same section in every trainer's config), ``data``
(:class:`DataConfig`) and ``training`` (:class:`TrainingConfig`). Keys left out take the defaults
written here; an unknown key, a value of the wrong type or a choice that does not exist raises a
``ValueError`` that names the key and the file (the checks of :mod:`agents.config_files`, shared by
every trainer). ``--set section.key=value`` on the command line overrides single values with the same
checks (see :func:`apply_overrides`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from agents import runs
from agents.config_files import apply_overrides, build_sections, check_ranges, read_yaml_config
from agents.networks import TrunkConfig
from sfgym.envs.geometry import LOSS_THRESHOLD_PX
from sfgym.files import atomic_write_bytes

CELLS = ("srn", "gru", "lstm")
TARGETS = ("absolute", "relative")
SPACES = ("sheet", "notated")


@dataclass(frozen=True)
class ModelConfig:
    """The regressor on top of the shared trunk (the ``trunk`` section): recurrent core → linear head.

    The core reads the trunk's features: the joint 512-d vector of a ``figure3`` trunk, or a ``matching``
    trunk's distribution over the score window's columns (where the sound is written).

    Attributes:
        cell: recurrent core: ``srn`` (Elman RNN, tanh), ``gru`` or ``lstm``.
        hidden_size: units per recurrent layer (1024 in the seed paper).
        num_layers: stacked recurrent layers (2 in the seed paper).
        target: ``absolute`` — the seed's: the normalized position in the piece, x / sheet width;
            ``relative`` — the offset of the true x from the centre of the current score window (the
            model's previous estimate), in units of ``offset_scale_px``.
        offset_scale_px: native sheet pixels per unit of a relative target (256 = half the window).
        space: where the window the core reads lies. ``sheet`` — the seed's: the environment's score window
            (sheet columns around the follower's x). ``notated`` — notated time (a frozen ``matching`` trunk and
            the ``relative`` target only): the trunk's distribution over the notated positions around the
            previous estimate, as :mod:`agents.supervised.notated` describes; its relative target is then in
            units of ``half_window_frames``.
        half_window_frames: notated frames (20 per notated second) on each side of the centre (``notated``).
        predict_centre: centre the next window where the estimate's last move would take it, not on the estimate
            (``notated``): an output of 0 then keeps the pace instead of standing still.
    """

    cell: Literal["srn", "gru", "lstm"] = "lstm"
    hidden_size: int = 1024
    num_layers: int = 2
    target: Literal["absolute", "relative"] = "relative"
    offset_scale_px: float = 256.0
    space: Literal["sheet", "notated"] = "sheet"
    half_window_frames: int = 48
    predict_centre: bool = False


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
        estimate_noise_frames / max_centre_error_frames: the same two in notated frames, for ``model.space:
            notated`` (whose windows lie in notated time).
        loss_on: where a ``notated`` model's error is measured: ``notated`` — in notated frames (units of
            ``model.half_window_frames``); ``sheet`` — at the sheet x of its position, which is what it is scored
            on (units of ``model.offset_scale_px``: a frame's error weighs more where the music moves far on
            the sheet).
        patience: stop after this many epochs without a better validation score (``null`` = never).
        init_from: a checkpoint (a trunk pre-training or supervised run, or its ``.pt``) whose trunk
            initializes the model's (``--init-from``); its trunk settings must be the config's.
        freeze_trunk: keep that trunk's weights fixed (and its dropout off): only the recurrent core and
            head learn. ``false`` fine-tunes it with the rest.
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
    estimate_noise_frames: float = 4.0
    max_centre_error_frames: float = 40.0
    loss_on: Literal["notated", "sheet"] = "notated"
    patience: int | None = 10
    init_from: str | None = None
    freeze_trunk: bool = False
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int | None = None
    tensorboard: bool = False


@dataclass(frozen=True)
class SupervisedConfig:
    """A whole run's configuration (the YAML file's four sections)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    trunk: TrunkConfig = field(default_factory=TrunkConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {**dataclasses.asdict(self), "trunk": self.trunk.settings()}

    @classmethod
    def from_dict(cls, raw: Any, source: str = "<config>") -> "SupervisedConfig":
        """Build and check a config from nested dicts (as read from YAML)."""
        config = cls(**build_sections(cls, raw, source))
        config.check(source)
        return config

    def check(self, source: str = "<config>") -> None:
        """Cross-field checks (each field's type is checked when the config is built)."""
        m, d, t = self.model, self.data, self.training
        check_ranges(source, positive={
            "model.hidden_size": m.hidden_size, "model.num_layers": m.num_layers,
            "model.offset_scale_px": m.offset_scale_px, "model.half_window_frames": m.half_window_frames,
            "data.cache_size": d.cache_size,
            "data.songs_per_epoch": d.songs_per_epoch, "data.max_steps_per_song": d.max_steps_per_song,
            "data.valid_max_songs": d.valid_max_songs, "training.epochs": t.epochs,
            "training.max_minutes": t.max_minutes, "training.batch_songs": t.batch_songs,
            "training.tbptt_steps": t.tbptt_steps, "training.lr": t.lr, "training.grad_clip": t.grad_clip,
            "training.patience": t.patience, "training.num_threads": t.num_threads,
        }, non_negative={
            "training.jump_penalty": t.jump_penalty, "training.estimate_noise_px": t.estimate_noise_px,
            "training.weight_decay": t.weight_decay, "training.max_centre_error_px": t.max_centre_error_px,
            "training.estimate_noise_frames": t.estimate_noise_frames,
            "training.max_centre_error_frames": t.max_centre_error_frames,
        })
        if m.space == "notated":
            needs = {"trunk.kind": (self.trunk.kind, "matching"), "training.freeze_trunk": (t.freeze_trunk, True),
                     "model.target": (m.target, "relative")}
            wrong = [f"{key} is {value!r}" for key, (value, wanted) in needs.items() if value != wanted]
            if wrong:
                raise ValueError(f"{source}: 'model.space: notated' reads a frozen matching trunk's evidence in "
                                 f"notated time with the relative target; {', '.join(wrong)} (needs trunk.kind "
                                 "matching, training.freeze_trunk true, model.target relative)")
        if m.target == "absolute" and d.random_start:
            raise ValueError(f"{source}: 'data.random_start: true' needs 'model.target: relative' (an absolute "
                             "model can only know where it is from the song's beginning); set it to false")


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


def check_init_trunk(config: SupervisedConfig) -> None:
    """Check, as a run starts, that the trunk of ``training.init_from``'s checkpoint fits the config's trunk
    section (a shipped config leaves ``init_from`` to ``--init-from``, so this is not a load-time check).

    Raises:
        FileNotFoundError / ValueError: ``freeze_trunk`` without ``init_from``, no readable checkpoint there,
            or its trunk is of another kind or shape (the message names both settings and the ``--set``
            that would fit it).
    """
    if not config.training.init_from:
        if config.training.freeze_trunk:
            raise ValueError("training.freeze_trunk: true needs a pre-trained trunk to keep: pass --init-from "
                             "CHECKPOINT (a 'sfgym train trunk' run), or --set training.freeze_trunk=false")
        return
    _, trunk = runs.read_trunk(config.training.init_from)
    theirs, ours = trunk.architecture(), config.trunk.architecture()
    if theirs != ours:
        fix = " ".join(f"--set trunk.{key}={value}" for key, value in theirs.items())
        raise ValueError(
            f"{config.training.init_from}: the checkpoint's trunk ({', '.join(f'{k} {v}' for k, v in theirs.items())}) "
            f"is not the config's ({', '.join(f'{k} {v}' for k, v in ours.items())}); pass {fix} or a checkpoint "
            "of the trunk the config describes")


def save_config(config: SupervisedConfig, path: str | Path) -> None:
    """Write ``config`` as YAML (atomically)."""
    atomic_write_bytes(path, yaml.safe_dump(config.to_dict(), sort_keys=False).encode())


def config_differences(a: SupervisedConfig, b: SupervisedConfig) -> list[str]:
    """``section.key: a_value != b_value`` for every key on which two configs differ."""
    return runs.config_differences(a.to_dict(), b.to_dict())


__all__ = ["CELLS", "DataConfig", "ModelConfig", "SPACES", "SupervisedConfig", "TARGETS", "TrainingConfig",
           "apply_overrides", "check_init_trunk", "config_differences", "load_config", "save_config"]
