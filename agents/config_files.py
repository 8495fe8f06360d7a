"""Experiment configs, the same way for every trainer: finding a config file (a path, or the name of
one shipped in ``agents/configs``), reading its YAML, applying ``--set KEY.PATH=VALUE`` overrides and
checking every section against a frozen dataclass (:func:`build_section`, :func:`check_ranges`), so
that a bad key or value gets the same one-line message whichever trainer reads it.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
"""The configs shipped with the package: ``supervised/``, ``rl/`` and ``trunk/``, one YAML per run."""


def shipped_configs(kind: str | None = None) -> list[Path]:
    """Every shipped config file (of one trainer ``kind``: ``supervised``, ``rl``, ``trunk``), sorted."""
    return sorted((CONFIG_DIR / kind if kind else CONFIG_DIR).rglob("*.yaml"))


def find_config(name_or_path: str | Path, kind: str) -> Path:
    """The config file ``name_or_path`` names: an existing path, else a shipped config of ``kind`` by
    name (``lstm_cpu`` → ``agents/configs/supervised/lstm_cpu.yaml``).

    Raises:
        FileNotFoundError: neither; the message lists the shipped names.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / kind / f"{path.name if path.suffix == '.yaml' else path.name + '.yaml'}"
    if len(path.parts) == 1 and shipped.is_file():
        return shipped
    names = ", ".join(p.stem for p in shipped_configs(kind))
    raise FileNotFoundError(f"{path}: config file does not exist (shipped {kind} configs, usable by name: {names})")


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
    whole number written with an exponent is taken as an integer: YAML reads ``1e5`` as a string); a quoted
    value (``data.dir="2024"``) stays a string. Unknown
    keys are left for the config's own validation, which names them.
    """
    raw = copy.deepcopy(raw) if isinstance(raw, dict) else {}
    for override in overrides:
        name, sep, text = override.partition("=")
        keys = [key.strip() for key in name.split(".")]
        if not sep or not all(keys):
            raise ValueError(f"--set {override!r}: expected KEY=VALUE or SECTION.KEY=VALUE, e.g. training.lr=3e-4")
        value = yaml.safe_load(text)
        if isinstance(value, str) and not text.strip().startswith(("'", '"')):  # a quoted value stays a string
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


# ---------------------------------------------------------------------------- typed checks
def mapping(value: Any, where: str, source: str) -> dict:
    """``value`` as a dict (``None`` → ``{}``), or a ValueError naming ``where`` and the file."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{source}: {where} must be a mapping, got {type(value).__name__} {value!r}")
    return value


def reject_unknown(given: dict, known: typing.Iterable[str], where: str, source: str) -> None:
    """A ValueError naming every key of ``given`` that is not ``known`` (``where``: the section's description)."""
    known = set(known)
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(
            f"{source}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(repr(k) for k in unknown)} "
            f"in {where}; known keys: {', '.join(sorted(known))}"
        )


def build_section(section_type: type, raw: Any, section: str, source: str, keys: typing.Iterable[str] | None = None):
    """An instance of the dataclass ``section_type`` from the mapping ``raw`` (``None``: the defaults),
    every key known (``keys``: the only ones a file may set; default all fields) and of its field's type.

    Raises:
        ValueError: ``{source}: unknown key 'section.key' (known keys in 'section': ...)``, ``'section.key'
            must be int, got 'abc'`` and the like; or the dataclass's own check (prefixed with the file).
    """
    raw = mapping(raw, f"section '{section}'", source)
    known = set(keys) if keys is not None else {f.name for f in dataclasses.fields(section_type)}
    hints = typing.get_type_hints(section_type)
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise ValueError(f"{source}: unknown key '{section}.{key}' ('{key}' is none of the known keys in "
                             f"'{section}': {', '.join(sorted(known))})")
        values[key] = checked_value(value, hints[key], f"{section}.{key}", source)
    try:
        return section_type(**values)
    except ValueError as error:  # the dataclass's own checks
        raise ValueError(f"{source}: {error}") from None


def checked_value(value: Any, hint: Any, key: str, source: str) -> Any:
    """``value`` converted to ``hint`` (int → float allowed), or a ValueError naming the key."""
    allowed = (typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
               else (hint,))
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
        if option is Any or typing.get_origin(option) in (dict, list) and isinstance(value, typing.get_origin(option)):
            return value
    names = " or ".join("null" if a is type(None) else getattr(a, "__name__", str(a)) for a in allowed)
    raise ValueError(f"{source}: '{key}' must be {names}, got {value!r}")


def check_ranges(source: str, *, positive: dict[str, Any] = (), non_negative: dict[str, Any] = (),
                 unit_interval: dict[str, Any] = ()) -> None:
    """Range checks with the messages every trainer shares; ``None`` values (unset options) pass.

    ``positive``: > 0; ``non_negative``: >= 0; ``unit_interval``: within 0..1.
    """
    for key, value in dict(positive).items():
        if value is not None and value <= 0:
            raise ValueError(f"{source}: '{key}' must be positive, got {value!r}")
    for key, value in dict(non_negative).items():
        if value is not None and value < 0:
            raise ValueError(f"{source}: '{key}' must not be negative, got {value!r}")
    for key, value in dict(unit_interval).items():
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"{source}: '{key}' must be within 0..1, got {value!r}")


def build_sections(config_type: type, raw: Any, source: str) -> dict[str, Any]:
    """The sections of a config dataclass whose fields are all section dataclasses, each built with
    :func:`build_section`; an unknown section is an error naming the known ones."""
    sections = {f.name: typing.get_type_hints(config_type)[f.name] for f in dataclasses.fields(config_type)}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: a config must be a mapping with sections {list(sections)}, "
                         f"got {type(raw).__name__}")
    unknown = [key for key in raw if key not in sections]
    if unknown:
        raise ValueError(f"{source}: unknown section '{unknown[0]}' (known sections: {list(sections)})")
    return {name: build_section(section_type, raw.get(name), name, source,
                                getattr(section_type, "YAML_KEYS", None))
            for name, section_type in sections.items()}


def load_yaml_with_overrides(path: str | Path, overrides: list[str] | None, what: str = "config") -> tuple[Any, str]:
    """The YAML of ``path`` with ``--set`` overrides applied, and the source name errors use."""
    raw = read_yaml_config(path, what)
    if overrides:
        return apply_overrides(mapping(raw, "the config", str(path)), overrides), f"{path} with --set"
    return raw, str(path)


__all__ = ["CONFIG_DIR", "apply_overrides", "build_section", "build_sections", "check_ranges", "checked_value",
           "find_config", "load_yaml_with_overrides", "mapping", "read_yaml_config", "reject_unknown", "shipped_configs"]
