"""Followers that ship with the package, ready to use without training: ``make_follower("pretrained")``.

Each shipped follower is two files in this folder (:func:`shipped_dir`): its model, ``NAME.zip`` (an
SB3 model saved by ``sfgym train rl``) or ``NAME.pt`` (a checkpoint of ``sfgym train supervised``), read by
the ordinary loaders, and its card ``NAME.json`` (:data:`CARD_FORMAT`; every key it may hold:
:mod:`agents.pretrained.card`): what it is (and the model file's SHA-256, checked before the model is
loaded), the data it was trained on (dataset name, build config, a hash of each split's score names), the
command that makes it and those that measure it, how it was chosen on valid, its settings, and today's figures. ``sfgym train pretrained`` (:mod:`agents.pretrained.train`) writes both.

:func:`register_shipped` registers every card's name, and always :data:`DEFAULT_NAME`, as a named follower;
registering reads the small cards only: a model is loaded (torch, stable-baselines3) when its follower is
made. ``$SFGYM_SHIPPED_MODELS`` names another folder of shipped followers (tests; a user's own set).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from sfgym import followers

DEFAULT_NAME = "pretrained"
"""The follower every install offers: the shipped model of this name."""

SHIPPED_DIR_ENV = "SFGYM_SHIPPED_MODELS"
"""Environment variable naming the folder of shipped followers (default: this package's folder)."""

CARD_FORMAT = "sfgym-shipped-follower"
CARD_VERSION = 1
CARD_SUFFIX = ".json"
MODEL_SUFFIXES = {".zip": ("rl",), ".pt": ("supervised", "tracker")}
"""Model file suffix → the kinds of follower such a file holds (a card's ``kind``): an SB3 model (``rl``), a
supervised regressor's checkpoint, or a matching trunk's checkpoint followed by the tracker
(:mod:`agents.tracking`)."""

KIND_LOADERS = {"rl": "agents.rl", "supervised": "agents.supervised", "tracker": "agents.tracking"}
"""A card's ``kind`` → the module whose ``load_follower(path)`` reads its model. The card says what the file
holds, so the model is read once, by its loader (not first by :class:`agents.registry.CheckpointLoader` to tell
its trainer: the shipped tracker is a 6 MB checkpoint); imported when a follower is made."""

NOTATED_TEMPO_KINDS = ("tracker",)
"""Kinds of shipped follower that move through the score's notated timing (they need a stand-in tempo on
pieces without one, see :attr:`sfgym.followers.Follower.needs_notated_tempo`)."""

FOLLOWER_SETTINGS_KEY = "follower_settings"
"""Card key of the settings the follower was chosen and evaluated with (e.g. a tracker's ``temperature``),
given to its loader unless the caller gives its own."""

STAND_IN_SPEED_KEY = "stand_in_px_per_second"
"""Card key of such a follower's own stand-in speed (sheet px per second: the median of its training data's
train split, :func:`sfgym.score.timing.median_speed_px_per_s`), used on scores without notated timing (a real
MSMD piece, a bare ``.npz``) unless a speed is given; with it the follower needs nothing more than a score."""

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
REQUIRED_CARD_KEYS = ("format", "version", "name", "kind", "model_file", "model_sha256", "description")


def shipped_dir() -> Path:
    """The folder of shipped followers: ``$SFGYM_SHIPPED_MODELS`` if set, else this package's folder."""
    configured = os.environ.get(SHIPPED_DIR_ENV)
    return Path(configured).expanduser() if configured else Path(__file__).resolve().parent


def check_name(name: str) -> str:
    """``name`` if it can name a shipped follower (lower case letters, digits, ``_``), else ValueError."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{name!r} cannot name a shipped follower: use lower-case letters, digits and '_', "
                         "starting with a letter")
    return name


def card_path(name: str, directory: str | Path | None = None) -> Path:
    """Where the card of the shipped follower ``name`` is (whether it exists or not)."""
    return Path(directory or shipped_dir()) / f"{name}{CARD_SUFFIX}"


def shipped_names(directory: str | Path | None = None) -> list[str]:
    """The names of the shipped followers in ``directory``: its cards (``NAME.json``), sorted."""
    directory = Path(directory or shipped_dir())
    if not directory.is_dir():
        return []
    return sorted(path.stem for path in directory.glob(f"*{CARD_SUFFIX}") if NAME_PATTERN.fullmatch(path.stem))


def read_card(path: str | Path) -> dict[str, Any]:
    """The card at ``path``, checked.

    Raises:
        FileNotFoundError: no card there.
        ValueError: not JSON, not a card, another card version, a missing key or a bad model file name;
            the message names the file.
    """
    path = Path(path)
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such shipped-follower card") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable shipped-follower card ({error})") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ValueError(f"{path}: not a shipped-follower card (no \"format\": \"{CARD_FORMAT}\")")
    if card.get("version") != CARD_VERSION:
        raise ValueError(f"{path}: card version {card.get('version')!r} is not supported (this is {CARD_VERSION})")
    missing = [key for key in REQUIRED_CARD_KEYS if key not in card]
    if missing:
        raise ValueError(f"{path}: the card lacks {', '.join(missing)}")
    model_file = str(card["model_file"])
    if Path(model_file).name != model_file or Path(model_file).suffix not in MODEL_SUFFIXES:
        raise ValueError(f"{path}: model_file {model_file!r} must be a file name beside the card ending in "
                         f"{' or '.join(MODEL_SUFFIXES)}")
    if card["kind"] not in MODEL_SUFFIXES[Path(model_file).suffix]:
        raise ValueError(f"{path}: a {Path(model_file).suffix} model cannot be of kind {card['kind']!r} "
                         f"(one of {', '.join(MODEL_SUFFIXES[Path(model_file).suffix])})")
    return card


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shipped_model_path(name: str, directory: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The model file of the shipped follower ``name``, checked against its card, and the card.

    Raises:
        FileNotFoundError: no card of that name (the message says how to make one) or no model file.
        ValueError: a corrupt card, or a model file whose bytes are not those the card records.
    """
    path = card_path(name, directory)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no shipped follower {name!r} is installed (no card); make one with "
            f"'sfgym train pretrained --ship {name}' (see docs/model-card.md) or give a model file instead")
    card = read_card(path)
    model = path.parent / card["model_file"]
    if not model.is_file():
        raise FileNotFoundError(f"{model}: the model file of shipped follower {name!r} is missing (its card: {path})")
    if file_sha256(model) != card["model_sha256"]:
        raise ValueError(f"{model}: the model file of shipped follower {name!r} is corrupt or was replaced "
                         f"(its SHA-256 is not the one recorded in {path}); ship it again")
    return model, card


def load_shipped(name: str, directory: str | Path | None = None, **kwargs: Any):
    """The shipped follower ``name`` (a :class:`sfgym.followers.Follower`), loaded from its model file by the
    loader of the kind its card records (:data:`KIND_LOADERS`: the file is read once, by that loader);
    ``kwargs`` go to it (e.g. ``stochastic`` for an RL model), over the card's :data:`FOLLOWER_SETTINGS_KEY`. A tracker gets its card's
    stand-in speed (:data:`STAND_IN_SPEED_KEY`) as ``px_per_second`` unless one is given."""
    model, card = shipped_model_path(name, directory)
    kwargs = {**(card.get(FOLLOWER_SETTINGS_KEY) or {}), **kwargs}
    if card["kind"] in NOTATED_TEMPO_KINDS and card.get(STAND_IN_SPEED_KEY) and kwargs.get("px_per_second") is None:
        kwargs["px_per_second"] = float(card[STAND_IN_SPEED_KEY])
    try:
        follower = importlib.import_module(KIND_LOADERS[card["kind"]]).load_follower(model, **{"name": name, **kwargs})
    except (ValueError, FileNotFoundError):
        raise
    except Exception as error:  # torch / SB3 raise many types on a file they cannot read
        raise ValueError(f"{model}: the model of shipped follower {name!r} cannot be loaded "
                         f"({type(error).__name__}: {error})") from error
    if not isinstance(follower, followers.Follower):
        raise TypeError(f"the loader of {card['kind']} followers returned a {type(follower).__name__} for {model}, "
                        "not a sfgym.followers.Follower")
    return follower


def card_summary(card: dict[str, Any]) -> str:
    """One line about a shipped follower: its description and, when recorded, its test (else valid) figures
    and the dataset it was trained on."""
    line = str(card.get("description", "")).strip().split("\n")[0]
    evaluation = card.get("evaluation") or {}
    split = next((split for split in ("test", "valid") if "tr" in (evaluation.get(split) or {})), None)
    if split is not None:
        line += f"; {split} TR {evaluation[split]['tr']:.2f}, TUE {evaluation[split]['tue']:.2f}"
    data = (card.get("data") or {}).get("name")
    if data and data not in line:
        line += f"; trained on {data}"
    return line


class ShippedFollowerFactory:
    """Makes the shipped follower of one name (registered under it); its ``__doc__`` is the card's one-line
    summary, which ``sfgym agents`` lists. The card is read here, the model only when called."""

    def __init__(self, name: str, directory: str | Path | None = None):
        self.name = name
        self.directory = directory
        path = card_path(name, directory)
        try:
            self.__doc__ = f"shipped, ready to use: {card_summary(read_card(path))}"
        except FileNotFoundError:
            self.__doc__ = f"shipped, ready to use: none installed yet ({path} is missing)"
        except ValueError as error:
            self.__doc__ = f"shipped, but unusable: {error}"

    @property
    def needs_notated_tempo(self) -> bool:
        """Whether the commands must give this follower a stand-in speed on scores without notated timing:
        a tracker whose card brings none (read now, so that a card shipped since registering counts)."""
        try:
            card = read_card(card_path(self.name, self.directory))
        except (FileNotFoundError, ValueError):
            return False
        return card["kind"] in NOTATED_TEMPO_KINDS and not card.get(STAND_IN_SPEED_KEY)

    def __call__(self, **kwargs: Any):
        return load_shipped(self.name, self.directory, **kwargs)


def register_shipped(reserved: Collection[str] = ()) -> None:
    """Register :data:`DEFAULT_NAME` and every card's name in :func:`shipped_dir` with :mod:`sfgym.followers`,
    except the ``reserved`` names (the baselines': a card never replaces one)."""
    for name in sorted({DEFAULT_NAME, *shipped_names()} - set(reserved)):
        followers.register_follower(name, ShippedFollowerFactory(name))


__all__ = ["CARD_FORMAT", "CARD_VERSION", "DEFAULT_NAME", "FOLLOWER_SETTINGS_KEY", "KIND_LOADERS", "MODEL_SUFFIXES", "NOTATED_TEMPO_KINDS",
           "SHIPPED_DIR_ENV", "STAND_IN_SPEED_KEY", "ShippedFollowerFactory",
           "card_path", "card_summary", "check_name", "file_sha256", "load_shipped", "read_card", "register_shipped",
           "shipped_dir", "shipped_model_path", "shipped_names"]
