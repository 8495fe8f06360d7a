"""The schema of a shipped follower's card (``NAME.json`` beside its model, :mod:`agents.pretrained`).

A card is one JSON object whose keys fall in six parts; :data:`CARD_SCHEMA` lists every key a card may hold,
its part, its JSON types and whether it is required, and :func:`card_problems` checks a card against it.

- **what it is**: ``format``, ``version`` (of the card format), ``name``, ``kind``, ``description``, the model file
  (``model_file``, ``model_sha256``, checked before loading, ``model_bytes``), what it was made of (``source``),
  when (``created``) and with which versions (``versions``);
- **data**: the dataset it was trained and validated on (``data``: name, build config, a hash of each split's
  score names) and those whose train splits it trained on too (``extra_training_data``);
- **commands**: the one command that makes it (``command``), the stage commands that ran (``commands``, with
  their resolved ``configs``), and the commands that measure it (``measure_commands``);
- **selection**: how it was chosen on valid (``seed``, ``selection_on_valid``: the seeds, the criterion, the
  figures each candidate and setting had);
- **settings**: what its loader gets (``follower_settings``, ``stand_in_px_per_second``);
- **figures**: today's evaluations only (``evaluation`` on the valid and test splits of its data,
  ``evaluation_other_data``, ``evaluation_acceptance``); superseded figures are not kept (git keeps them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CardField:
    """One key of a card: the part it belongs to, the Python types of its JSON value, whether it is required."""

    part: str
    types: tuple[type, ...]
    required: bool = True


CARD_PARTS = ("what it is", "data", "commands", "selection", "settings", "figures")

CARD_SCHEMA: dict[str, CardField] = {
    "format": CardField("what it is", (str,)),
    "version": CardField("what it is", (int,)),
    "name": CardField("what it is", (str,)),
    "kind": CardField("what it is", (str,)),
    "description": CardField("what it is", (str,)),
    "model_file": CardField("what it is", (str,)),
    "model_sha256": CardField("what it is", (str,)),
    "model_bytes": CardField("what it is", (int,)),
    "source": CardField("what it is", (str, list)),
    "created": CardField("what it is", (str,)),
    "versions": CardField("what it is", (dict,)),
    "data": CardField("data", (dict,)),
    "extra_training_data": CardField("data", (list,), required=False),
    "command": CardField("commands", (str, type(None))),
    "commands": CardField("commands", (list,)),
    "configs": CardField("commands", (dict,)),
    "measure_commands": CardField("commands", (list,), required=False),
    "seed": CardField("selection", (int, type(None))),
    "selection_on_valid": CardField("selection", (dict,)),
    "follower_settings": CardField("settings", (dict,), required=False),
    "stand_in_px_per_second": CardField("settings", (float, int, type(None)), required=False),
    "evaluation": CardField("figures", (dict,)),
    "evaluation_other_data": CardField("figures", (dict,), required=False),
    "evaluation_acceptance": CardField("figures", (dict,), required=False),
}
"""Every key a card may hold (see the module docstring for what each part says)."""


def card_problems(card: dict[str, Any]) -> list[str]:
    """What is wrong with ``card`` against :data:`CARD_SCHEMA`: missing required keys, unknown keys, values of
    the wrong type (``[]``: none)."""
    problems = [f"missing {key!r}" for key, field in CARD_SCHEMA.items() if field.required and key not in card]
    problems += [f"unknown key {key!r}" for key in card if key not in CARD_SCHEMA]
    for key, value in card.items():
        field = CARD_SCHEMA.get(key)
        # bool is an int in Python, never a card's number
        if field is not None and (not isinstance(value, field.types) or isinstance(value, bool)):
            problems.append(f"{key!r} is a {type(value).__name__}, not {' or '.join(t.__name__ for t in field.types)}")
    return problems


__all__ = ["CARD_PARTS", "CARD_SCHEMA", "CardField", "card_problems"]
