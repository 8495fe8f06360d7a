"""Regressor checkpoints: the one checkpoint format of :mod:`agents.runs`, trainer ``supervised``.

A checkpoint holds the whole run config (so a model can be rebuilt from the file alone), the trunk
settings, the weights and, for a run's ``last.pt``, everything ``--resume`` needs (optimizer, random
states, history, epoch counters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agents import runs
from agents.runs import BEST, LAST
from agents.supervised.config import SupervisedConfig, config_differences
from agents.supervised.model import PositionRegressor

TRAINER = "supervised"


def save_checkpoint(path: str | Path, model: PositionRegressor, config: SupervisedConfig, **extra: Any) -> Path:
    """Write model weights, config and ``extra`` entries to ``path`` atomically."""
    return runs.save_checkpoint(path, TRAINER, model, config.to_dict(), config.trunk, **extra)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict of ``path`` (a file, or a run directory: its ``best.pt``, else ``last.pt``),
    its ``config`` a checked :class:`SupervisedConfig` (see :func:`agents.runs.read_checkpoint`)."""
    payload = runs.read_checkpoint(path, trainer=TRAINER)
    payload["config"] = SupervisedConfig.from_dict(payload["config"], source=f"{payload['path']} (its config)")
    return payload


def load_regressor(path: str | Path, model: PositionRegressor | None = None,
                   device: torch.device | str = "cpu") -> tuple[PositionRegressor, SupervisedConfig]:
    """The model of a checkpoint (built from its config, or loaded into ``model``), and its config.

    Raises:
        ValueError: ``model`` is of another architecture than the checkpoint's (names what differs).
    """
    payload = read_checkpoint(path)
    config: SupervisedConfig = payload["config"]
    if model is None:
        model = PositionRegressor(config.model, config.trunk)
    elif model.config != config.model or model.trunk.config != config.trunk:
        mine = SupervisedConfig(model=model.config, trunk=model.trunk.config)
        differences = [d for d in config_differences(mine, SupervisedConfig(model=config.model, trunk=config.trunk))
                       if d.startswith(("model.", "trunk."))]
        raise ValueError(f"{payload['path']}: the checkpoint holds another model than the one given "
                         f"(this model vs the checkpoint: {'; '.join(differences)})")
    model.load_weights(payload["model_state"], source=payload["path"])
    return model.to(device), config


__all__ = ["BEST", "LAST", "load_regressor", "read_checkpoint", "save_checkpoint"]
