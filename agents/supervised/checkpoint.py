"""Saving and loading regressor checkpoints.

A checkpoint is one ``torch.save`` file holding a plain dict: the format tag, the whole run config
(so a model can be rebuilt from the file alone), the weights and, for a run's ``last.pt``, everything
``--resume`` needs (optimizer, random states, history, epoch counters). Files are written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from agents.supervised.config import SupervisedConfig, config_differences
from agents.supervised.model import PositionRegressor

FORMAT = "sfgym-supervised-regressor"
VERSION = 1

BEST = "best.pt"
"""The run directory's checkpoint of the epoch with the best validation score."""

LAST = "last.pt"
"""The run directory's checkpoint of the last finished epoch (what ``--resume`` continues from)."""


def save_checkpoint(path: str | Path, model: PositionRegressor, config: SupervisedConfig, **extra: Any) -> Path:
    """Write model weights, config and ``extra`` entries to ``path`` atomically."""
    from sfgym.files import atomic_write_bytes

    payload = {"format": FORMAT, "version": VERSION, "config": config.to_dict(),
               "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict of ``path`` (a file, or a run directory: its ``best.pt``, else ``last.pt``).

    Raises:
        FileNotFoundError: nothing there.
        ValueError: not a regressor checkpoint, or one of a format this version cannot read.
    """
    path = resolve_checkpoint(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated / foreign files
        raise ValueError(f"{path}: not a readable checkpoint (truncated or not a torch file?): {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a supervised regressor checkpoint (written by 'sfgym train supervised')")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path}: checkpoint version {payload.get('version')} is not supported (this is {VERSION})")
    payload["config"] = SupervisedConfig.from_dict(payload["config"], source=f"{path} (its config)")
    payload["path"] = str(path)
    return payload


def resolve_checkpoint(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        for name in (BEST, LAST):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path}: run directory holds no checkpoint ({BEST} or {LAST})")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    return path


def load_regressor(path: str | Path, model: PositionRegressor | None = None,
                   device: torch.device | str = "cpu") -> tuple[PositionRegressor, SupervisedConfig]:
    """The model of a checkpoint (built from its config, or loaded into ``model``), and its config.

    Raises:
        ValueError: ``model`` is of another architecture than the checkpoint's (names what differs).
    """
    payload = read_checkpoint(path)
    config: SupervisedConfig = payload["config"]
    if model is None:
        model = PositionRegressor(config.model)
    elif model.config != config.model:
        differences = [d for d in config_differences(SupervisedConfig(model=model.config), SupervisedConfig(model=config.model))
                       if d.startswith("model.")]
        raise ValueError(f"{payload['path']}: the checkpoint holds another model than the one given "
                         f"(this model vs the checkpoint: {'; '.join(differences)})")
    model.load_weights(payload["model_state"], source=payload["path"])
    return model.to(device), config


__all__ = ["BEST", "LAST", "load_regressor", "read_checkpoint", "resolve_checkpoint", "save_checkpoint"]
