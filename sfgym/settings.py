"""Settings given by name (``--timing-set``, ``--augment-set``, ``--tracker-set``): one check of the names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields


def reject_unknown_fields(settings_class: type, names: Iterable[str], what: str) -> None:
    """Raise ``ValueError("unknown {what} setting(s) [...]; known: [...]")`` if a name is not a field of the
    dataclass ``settings_class``."""
    known = sorted(field.name for field in fields(settings_class))
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} setting(s) {unknown}; known: {known}")
