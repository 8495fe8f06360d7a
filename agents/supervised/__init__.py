"""Supervised recurrent position regressors: the seed paper's models (SRN / GRU / LSTM), done right.

- :mod:`agents.supervised.config`: the YAML run config, every key checked.
- :mod:`agents.supervised.model`: :class:`PositionRegressor` — shared trunk → recurrent core → linear head.
- :mod:`agents.supervised.data`: songs as padded arrays, episode batches, window slicing (= the env's observations).
- :mod:`agents.supervised.bptt`: the one loop that follows a batch frame by frame and trains it (truncated
  backprop through time); the loss.
- :mod:`agents.supervised.rollout`: that loop on the sheet (the environment's windows, or a frozen trunk's tables).
- :mod:`agents.supervised.notated`: the same models reading a frozen matching trunk in notated time
  (``model.space: notated``): tables, the loop in notated time and :class:`NotatedRegressorFollower`.
- :mod:`agents.supervised.validation`: full validation runs scored with :mod:`sfgym.metrics`.
- :mod:`agents.supervised.train`: ``sfgym train supervised``.
- :mod:`agents.supervised.checkpoint`: checkpoints; :mod:`agents.supervised.follower`: a trained model as a
  :class:`sfgym.followers.Follower` (:func:`load_follower`).

Names are imported on first use, so that importing the package (e.g. to find ``sfgym train``) stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_follower": "agents.supervised.follower",
    "RegressorFollower": "agents.supervised.follower",
    "NotatedRegressorFollower": "agents.supervised.notated",
    "PositionRegressor": "agents.supervised.model",
    "SupervisedConfig": "agents.supervised.config",
    "load_config": "agents.supervised.config",
    "load_regressor": "agents.supervised.checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agents.supervised' has no attribute {name!r}")
