"""Make any follower from a short spec: a baseline's name or a saved model's path.

>>> from agents.registry import make_follower
>>> make_follower("constant_tempo").name
'constant_tempo'

- a baseline name: ``oracle``, ``constant_tempo``, ``online_dtw`` (:data:`agents.baselines.BASELINES`);
- ``*.pt``: a supervised checkpoint, loaded by ``agents.supervised.load_follower(path)``;
- ``*.zip``: a saved Stable-Baselines3 model, loaded by ``agents.rl.load_follower(path)``.

The learning packages are imported only when such a file is asked for.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from sfgym.followers import Follower

CHECKPOINT_LOADERS = {".pt": "agents.supervised", ".zip": "agents.rl"}
"""File suffix → the module whose ``load_follower(path)`` reads it."""


def _baselines() -> dict[str, type[Follower]]:
    from agents.baselines import BASELINES

    return BASELINES


def available_followers() -> dict[str, str]:
    """The baseline followers by name, each with a one-line description (its class docstring's first line).

    The one place the command line asks which followers exist (help texts, ``sfgym agents``).
    """
    return {name: (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            for name, cls in _baselines().items()}


def make_follower(spec: str, **kwargs) -> Follower:
    """The follower named by ``spec`` (see the module docstring); ``kwargs`` go to its constructor/loader.

    Raises:
        FileNotFoundError: ``spec`` looks like a checkpoint path but no such file exists.
        ValueError: ``spec`` is neither a baseline name nor a file of a known type.
    """
    spec = str(spec)
    baselines = _baselines()
    if spec in baselines:
        return baselines[spec](**kwargs)
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in CHECKPOINT_LOADERS:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint file")
        module = importlib.import_module(CHECKPOINT_LOADERS[suffix])
        follower = module.load_follower(path, **kwargs)
        if not isinstance(follower, Follower):
            raise TypeError(f"{module.__name__}.load_follower({path}) returned a {type(follower).__name__}, "
                            "not a sfgym.followers.Follower")
        return follower
    known = ", ".join(sorted(baselines))
    if path.exists():
        raise ValueError(f"{path}: unknown follower file type {path.suffix!r}; expected a supervised checkpoint "
                         f"(.pt) or a saved SB3 model (.zip)")
    raise ValueError(f"unknown follower {spec!r}: not a baseline ({known}) nor a .pt / .zip file")


def default_label(spec: str) -> str:
    """A short name for results tables: the baseline's name, or ``<folder>/<file stem>`` of a checkpoint."""
    spec = str(spec)
    if spec in _baselines():
        return spec
    path = Path(spec)
    return f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem


__all__ = ["CHECKPOINT_LOADERS", "available_followers", "default_label", "make_follower"]
