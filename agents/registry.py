"""agents' followers in sfgym's follower registry (:mod:`sfgym.followers`).

- the baselines by name: ``oracle``, ``constant_tempo``, ``online_dtw``, ``constant_position``
  (:data:`agents.baselines.BASELINES`);
- ``*.pt``: a supervised checkpoint, loaded by ``agents.supervised.load_follower(path)``;
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
from functools import partial
from pathlib import Path

from sfgym import followers
from sfgym.followers import Follower

CHECKPOINT_LOADERS = {".pt": ("agents.supervised", "a supervised checkpoint"),
                      ".zip": ("agents.rl", "a saved SB3 model")}
"""File suffix → the module whose ``load_follower(path)`` reads it, and what such a file is."""


def register_followers() -> None:
    """Register the baselines, the shipped followers and the checkpoint loaders with :mod:`sfgym.followers`
    (idempotent; the shipped followers' cards are read again, so a follower shipped since is found)."""
    from agents.baselines import BASELINES
    from agents.pretrained import register_shipped

    for name, factory in BASELINES.items():
        followers.register_follower(name, factory)
    register_shipped(reserved=BASELINES)
    for suffix, (module, description) in CHECKPOINT_LOADERS.items():
        followers.register_follower_file(suffix, partial(_load_checkpoint, module), description)


def _load_checkpoint(module: str, path: Path, **kwargs) -> Follower:
    """``load_follower(path, **kwargs)`` of ``module``, imported on first use."""
    return importlib.import_module(module).load_follower(path, **kwargs)


def make_follower(spec: str, **kwargs) -> Follower:
    """:func:`sfgym.followers.make_follower` with agents' followers registered."""
    register_followers()
    return followers.make_follower(spec, **kwargs)


def default_label(spec: str) -> str:
    """:func:`sfgym.followers.default_label` with agents' followers registered."""
    register_followers()
    return followers.default_label(spec)


__all__ = ["CHECKPOINT_LOADERS", "default_label", "make_follower", "register_followers"]
