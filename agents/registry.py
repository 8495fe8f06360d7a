"""agents' followers in sfgym's follower registry (:mod:`sfgym.followers`).

- the baselines by name: ``oracle``, ``constant_tempo``, ``online_dtw``, ``constant_position``
  (:data:`agents.baselines.BASELINES`);
- ``*.pt``: a supervised checkpoint, loaded by ``agents.supervised.load_follower(path)``, or a matching
  trunk's (``sfgym train trunk``), followed by ``agents.tracking.load_follower(path)``;
- ``*.zip``: a saved Stable-Baselines3 model, loaded by ``agents.rl.load_follower(path)``;
- the shipped followers by name: ``pretrained`` and every other card in ``agents/pretrained/``
  (:mod:`agents.pretrained`; a model is loaded when its follower is made).

sfgym finds :func:`register_followers` through the ``sfgym.followers`` entry point declared in
``pyproject.toml`` (sfgym never imports agents). The learning packages are imported only when such a
file is asked for. :func:`make_follower` and :func:`default_label` are sfgym's, with agents' followers
registered:

>>> from agents.registry import make_follower
>>> make_follower("constant_tempo").name
'constant_tempo'
"""

from __future__ import annotations

import importlib
from pathlib import Path

from agents.baselines import BASELINES
from agents.pretrained import register_shipped
from agents.runs import read_checkpoint
from sfgym import followers
from sfgym.followers import Follower

CHECKPOINT_LOADERS = {".pt": ("agents.supervised", "a supervised checkpoint or a trunk checkpoint"),
                      ".zip": ("agents.rl", "a saved SB3 model")}
"""File suffix → the module whose ``load_follower(path)`` reads it, and what such a file is. A ``.pt``
checkpoint of ``sfgym train trunk`` goes to the module :data:`TORCH_CHECKPOINT_FOLLOWERS` names instead."""

TORCH_CHECKPOINT_FOLLOWERS = {"supervised": "agents.supervised", "trunk": "agents.tracking"}
"""The trainer a ``.pt`` checkpoint is tagged with → the module whose ``load_follower(path)`` makes its
follower: a supervised regressor, or a matching trunk followed by :class:`agents.tracking.MatchingTracker`."""


def register_followers() -> None:
    """Register the baselines, the shipped followers and the checkpoint loaders with :mod:`sfgym.followers`
    (idempotent; the shipped followers' cards are read again, so a follower shipped since is found)."""
    for name, factory in BASELINES.items():
        followers.register_follower(name, factory)
    register_shipped(reserved=BASELINES)
    for suffix, (module, description) in CHECKPOINT_LOADERS.items():
        followers.register_follower_file(suffix, CheckpointLoader(module), description)


class CheckpointLoader:
    """Reads a follower file: ``load_follower(path, **kwargs)`` of its module, imported on first use; a
    ``.pt`` file's module follows from the trainer its checkpoint is tagged with."""

    def __init__(self, module: str):
        self.module = module

    def _module_and_checkpoint(self, path: Path) -> tuple[str, dict | None]:
        """The module whose ``load_follower`` reads ``path``, and the checkpoint read to tell (``None`` when
        ``path`` is not a ``.pt`` file, or not a readable checkpoint: the module's loader says what is wrong)."""
        if Path(path).suffix.lower() != ".pt":
            return self.module, None
        try:
            checkpoint = read_checkpoint(path)
        except ValueError:
            return self.module, None
        trainer = checkpoint["trainer"]
        if trainer not in TORCH_CHECKPOINT_FOLLOWERS:
            raise ValueError(f"{path}: a checkpoint of 'sfgym train {trainer}' is not a follower")
        return TORCH_CHECKPOINT_FOLLOWERS[trainer], checkpoint

    def __call__(self, path: Path, **kwargs) -> Follower:
        module, _ = self._module_and_checkpoint(path)
        return importlib.import_module(module).load_follower(path, **kwargs)

    def needs_notated_tempo(self, path: Path) -> bool:
        """Whether the follower of ``path`` moves through the score's notated timing (a tracker does, and a
        regressor in notated time)."""
        try:
            module, checkpoint = self._module_and_checkpoint(path)
            if module == "agents.supervised" and checkpoint is not None:
                return checkpoint["config"].get("model", {}).get("space") == "notated"
            return module == "agents.tracking"
        except (ValueError, FileNotFoundError, AttributeError):
            return False  # making the follower will say what is wrong with the file


def make_follower(spec: str, **kwargs) -> Follower:
    """:func:`sfgym.followers.make_follower` with agents' followers registered."""
    register_followers()
    return followers.make_follower(spec, **kwargs)


def default_label(spec: str) -> str:
    """:func:`sfgym.followers.default_label` with agents' followers registered."""
    register_followers()
    return followers.default_label(spec)


__all__ = ["CHECKPOINT_LOADERS", "CheckpointLoader", "TORCH_CHECKPOINT_FOLLOWERS", "default_label", "make_follower", "register_followers"]
