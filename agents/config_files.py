"""Reading YAML experiment configs and applying ``--set KEY.PATH=VALUE`` overrides (shared by every trainer)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml


def read_yaml_config(path: str | Path, what: str = "config") -> Any:
    """The parsed YAML of ``path``; a missing file or invalid YAML raises an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} file does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from error


def apply_overrides(raw: Any, overrides: list[str]) -> dict:
    """A copy of ``raw`` with each ``KEY.PATH=VALUE`` set (the value parsed as YAML).

    ``training.lr=3e-4``, ``trunk.width=0.5``, ``env.actions=[-2,0,2]``, ``total_timesteps=1e5`` (a
    whole number written with an exponent is taken as an integer: YAML reads ``1e5`` as a string). Unknown
    keys are left for the config's own validation, which names them.
    """
    raw = copy.deepcopy(raw) if isinstance(raw, dict) else {}
    for override in overrides:
        name, sep, text = override.partition("=")
        keys = [key.strip() for key in name.split(".")]
        if not sep or not all(keys):
            raise ValueError(f"--set {override!r}: expected KEY=VALUE or SECTION.KEY=VALUE, e.g. training.lr=3e-4")
        value = yaml.safe_load(text)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer() and "e" in text.lower():
            value = int(value)
        node = raw
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ValueError(f"--set {override!r}: {'.'.join(keys[:depth + 1])} is not a section")
            node = child
        node[keys[-1]] = value
    return raw
