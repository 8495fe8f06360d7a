"""The one interface every score follower implements, and the registry that makes followers from specs.

Baselines, supervised regressors and RL agents all look alike to the evaluation and the renderer:
``reset(piece)`` at the start of a piece, then ``act(observation, info)`` once per frame, returning an
action for :class:`sfgym.envs.MSMDFollowEnv` with the follower's ``action_type``.

Followers are made from a short spec (:func:`make_follower`): a registered name (the baselines) or a file
of a registered type (a supervised checkpoint ``.pt``, an SB3 model ``.zip``). sfgym itself registers
none: packages register theirs through the ``sfgym.followers`` entry-point group (a function called with
no arguments that calls :func:`register_follower` / :func:`register_follower_file`), loaded on first use.
sfgym's own distribution declares one for its ``agents`` package in ``pyproject.toml``; this way
``sfgym`` never imports ``agents``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from sfgym.data.piece import Piece


class Follower(ABC):
    """A score follower.

    Attributes:
        name: shown in tables, legends and file names.
        action_type: the environment ``action_type`` the follower drives: ``"discrete"`` (index into
            the velocity-change set), ``"continuous"`` (velocity change in px/frame) or ``"position"``
            (normalized score position in [0, 1]).
        stochastic: whether repeated runs with other seeds differ (evaluation then runs several seeds).
        env_kwargs: environment arguments the follower was trained with (e.g. ``difference_channels``,
            ``actions``); evaluation and rendering build its environment with them.
        needs_notated_tempo: the follower moves by the score's notated timing (``Piece.score_notes``).
            Pieces without it (real MSMD has no score MIDI) need a stand-in speed in sheet px per second,
            which the commands pass to its constructor as the keyword ``px_per_second``
            (:func:`sfgym.score.timing.stand_in_tempo`).
    """

    name: str = "follower"
    action_type: str = "discrete"
    stochastic: bool = False
    env_kwargs: Mapping[str, Any] = MappingProxyType({})
    needs_notated_tempo: bool = False

    def reset(self, piece: Piece, seed: int | None = None) -> None:
        """Start following ``piece``.

        A fair follower uses only the score side of the piece (``sheet``, ``coords``, ``coord2onset``,
        ``score_notes``), never the performance (``notes``, ``spectrogram`` beyond what observations
        show, ``true_x``); the ``oracle`` baseline is the documented exception.
        """

    @abstractmethod
    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> Any:
        """The action for the current frame, given the environment's observation and info."""


# ---------------------------------------------------------------------------- the registry
ENTRY_POINT_GROUP = "sfgym.followers"
"""Entry-point group of the functions that register followers (see the module docstring)."""

FollowerFactory = Callable[..., Follower]
"""Makes a follower from keyword arguments (a :class:`Follower` subclass is one)."""

FollowerLoader = Callable[..., Follower]
"""Makes a follower from a file: ``loader(path, **kwargs)``."""

_NAMED: dict[str, FollowerFactory] = {}
_FILE_TYPES: dict[str, tuple[FollowerLoader, str]] = {}  # suffix -> (loader, what such a file is)
_plugins_loaded = False


def register_follower(name: str, factory: FollowerFactory) -> None:
    """Make ``name`` a follower spec: ``make_follower(name, **kwargs)`` returns ``factory(**kwargs)``.

    A factory with a true ``needs_notated_tempo`` attribute (a :class:`Follower` subclass that sets it)
    is given a stand-in tempo by the commands on pieces without notated timing.
    """
    _NAMED[str(name)] = factory


def register_follower_file(suffix: str, loader: FollowerLoader, description: str) -> None:
    """Make files ending in ``suffix`` (e.g. ``".pt"``) follower specs, read by ``loader(path, **kwargs)``;
    ``description`` says what such a file is (e.g. "a supervised checkpoint"), for error messages. A loader
    with a method ``needs_notated_tempo(path)`` says whether the follower of a file needs a stand-in tempo
    (see :func:`needs_notated_tempo`)."""
    _FILE_TYPES[suffix.lower()] = (loader, description)


def load_follower_plugins() -> None:
    """Call the ``sfgym.followers`` entry points once (every lookup below does this first)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register = entry_point.load()
        except ImportError as error:
            raise ImportError(f"follower plugin {entry_point.name!r} ({entry_point.value}) could not be "
                              f"imported: {error}") from error
        register()


def registered_followers() -> dict[str, FollowerFactory]:
    """The registered follower names and their factories, by name."""
    load_follower_plugins()
    return dict(sorted(_NAMED.items()))


def follower_descriptions() -> dict[str, str]:
    """The registered follower names, each with a one-line description (its factory's docstring's first line).

    The one place the command line asks which followers exist (help texts, ``sfgym agents``).
    """
    return {name: (factory.__doc__ or "").strip().split("\n")[0] for name, factory in registered_followers().items()}


def registered_file_types() -> dict[str, str]:
    """The registered follower file suffixes and what such a file is."""
    load_follower_plugins()
    return {suffix: description for suffix, (_, description) in sorted(_FILE_TYPES.items())}


def needs_notated_tempo(spec: str) -> bool:
    """Whether the follower ``spec`` names moves by the score's notated timing (see
    :attr:`Follower.needs_notated_tempo`): a named factory's attribute of that name; for a file, its
    loader's method ``needs_notated_tempo(path)`` if the loader has one (a trained model may or may not)."""
    factory = registered_followers().get(str(spec))
    if factory is not None:
        return bool(getattr(factory, "needs_notated_tempo", False))
    path = Path(str(spec))
    loader, _ = _FILE_TYPES.get(path.suffix.lower(), (None, None))
    check = getattr(loader, "needs_notated_tempo", None)
    return bool(check(path)) if callable(check) and path.is_file() else False


def make_follower(spec: str, **kwargs) -> Follower:
    """The follower named by ``spec``: a registered name, or a file of a registered type; ``kwargs`` go to
    its factory or loader.

    Raises:
        FileNotFoundError: ``spec`` looks like a file of a registered type but no such file exists.
        ValueError: ``spec`` is neither a registered name nor a file of a registered type.
    """
    spec = str(spec)
    named = registered_followers()
    if spec in named:
        return named[spec](**kwargs)
    path = Path(spec)
    suffix = path.suffix.lower()
    file_types = registered_file_types()
    if suffix in file_types:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint file")
        loader, _ = _FILE_TYPES[suffix]
        follower = loader(path, **kwargs)
        if not isinstance(follower, Follower):
            raise TypeError(f"the loader of {suffix} files returned a {type(follower).__name__} for {path}, "
                            "not a sfgym.followers.Follower")
        return follower
    expected = " or ".join(f"{description} ({suffix})" for suffix, description in file_types.items())
    if not named and not file_types:
        raise ValueError(f"unknown follower {spec!r}: no followers are registered; is sfgym installed "
                         f"(pip install -e .) so that its {ENTRY_POINT_GROUP!r} entry points exist?")
    if path.exists():
        raise ValueError(f"{path}: unknown follower file type {path.suffix!r}; expected {expected}")
    raise ValueError(f"unknown follower {spec!r}: not a baseline ({', '.join(named)}) nor a "
                     f"{' / '.join(file_types)} file")


def default_label(spec: str) -> str:
    """A short name for results tables: the registered name, or ``<folder>/<file stem>`` of a file."""
    spec = str(spec)
    if spec in registered_followers():
        return spec
    path = Path(spec)
    return f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem


__all__ = ["ENTRY_POINT_GROUP", "Follower", "FollowerFactory", "FollowerLoader", "default_label", "follower_descriptions",
           "load_follower_plugins", "make_follower", "needs_notated_tempo", "register_follower",
           "register_follower_file", "registered_file_types", "registered_followers"]
