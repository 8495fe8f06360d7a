"""The skeleton every trainer shares (supervised, RL, trunk pre-training), so that each ``train.py``
keeps only its loop.

- :class:`RunDirectory`: a run's directory: the config written first (``config.yaml``), its state in
  ``status.json`` (``running``, ``interrupted`` or ``complete``: a run is marked complete only when it
  is), ``history.csv`` and ``curves.png``, JSON summaries, checkpoints; a directory that holds a run
  is never overwritten (``--resume`` continues it).
- Checkpoints: one tagged format (:func:`save_checkpoint`: format, trainer, config, trunk settings,
  weights and whatever ``--resume`` needs) with one reader (:func:`read_checkpoint`), and one resolver
  for every model file, torch checkpoints and stable-baselines3 ``.zip`` models alike
  (:func:`resolve_checkpoint`).
- :func:`setup_torch` (seed, device, threads), :func:`data_root` (the dataset a config names),
  :class:`Budget` (the wall-clock budget, carried over a resume), :class:`StopRequest` (Ctrl-C asks a
  run to stop at its next safe point and save), :class:`BudgetProgress` (a progress bar that shows
  whichever budget ends the run: steps or minutes).

Checkpoints are loaded with ``weights_only=True``: a checkpoint is data, never code to run.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import signal
import sys
import threading
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import yaml

from agents.config_files import shipped_configs
from agents.networks import TrunkConfig
from sfgym.files import atomic_write_bytes

CHECKPOINT_FORMAT = "sfgym-checkpoint"
CHECKPOINT_VERSION = 1
BEST = "best.pt"
"""A run directory's checkpoint of its best evaluation."""
LAST = "last.pt"
"""A run directory's latest checkpoint, with everything ``--resume`` needs."""
CONFIG = "config.yaml"
STATUS = "status.json"
HISTORY = "history.csv"
CURVES = "curves.png"

RUNNING, INTERRUPTED, COMPLETE = "running", "interrupted", "complete"


# ---------------------------------------------------------------------------- run directory
class RunDirectory:
    """The directory of one training run.

    Args:
        path: the directory.
        trainer: ``supervised``, ``rl`` or ``trunk`` (recorded in ``status.json`` and checkpoints).
        finished_markers: files that show a finished run of this trainer even without ``status.json``
            (runs written before it existed).
    """

    def __init__(self, path: str | Path, trainer: str, finished_markers: Iterable[str] = ()):
        self.path = Path(path)
        self.trainer = trainer
        self.finished_markers = tuple(finished_markers)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def status(self) -> dict[str, Any] | None:
        """The contents of ``status.json``, or None for a directory without a run."""
        try:
            return json.loads((self.path / STATUS).read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, OSError) as error:
            raise ValueError(f"{self.path / STATUS}: unreadable run status ({error})") from error

    def start(self, config: dict[str, Any], resume: bool, resume_from: str = LAST) -> None:
        """Check that the directory may take this run, then create it and write ``config.yaml``.

        Raises:
            ValueError: a new run in a directory that holds one (the message says to pass ``--resume``).
            FileNotFoundError: ``resume`` but nothing to resume (no ``resume_from``).
        """
        if resume:
            if not (self.path / resume_from).is_file():
                raise FileNotFoundError(f"{self.path}: nothing to resume (no {resume_from}); "
                                        "start the run without --resume")
        else:
            status = self.status()
            if status is not None:
                raise ValueError(f"{self.path}: already holds a run ({status['state']}"
                                 f"{', stopped: ' + status['stopped'] if status.get('stopped') else ''}); "
                                 "pass --resume to continue it, or choose another --out")
            finished = [name for name in self.finished_markers if (self.path / name).exists()]
            if finished:  # a run written before status.json existed
                resumable = " pass --resume to continue it, or" if (self.path / resume_from).is_file() else ""
                raise ValueError(f"{self.path}: already holds a finished run ({finished[0]});{resumable} "
                                 "choose another --out")
        self.path.mkdir(parents=True, exist_ok=True)
        plain = json.loads(json.dumps(config, default=list))  # tuples → lists: plain YAML
        atomic_write_bytes(self.path / CONFIG, yaml.safe_dump(plain, sort_keys=False).encode())
        self.mark(RUNNING)

    def mark(self, state: str, stopped: str | None = None, **details: Any) -> None:
        """Record the run's state: ``running``, ``interrupted`` (resume it) or ``complete`` (``stopped``:
        which budget ended it)."""
        self.write_json(STATUS, {"trainer": self.trainer, "state": state, "stopped": stopped,
                                 "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"), **details})

    def write_json(self, name: str, data: dict[str, Any]) -> Path:
        """``name`` in the run directory, as indented JSON (NaN and inf as null), atomically."""
        atomic_write_bytes(self.path / name, (json.dumps(json_safe(data), indent=2) + "\n").encode())
        return self.path / name

    def write_history(self, rows: list[dict[str, Any]], columns: Iterable[str]) -> None:
        """``history.csv``: one row per evaluation (epoch, step), in ``columns`` order."""
        import csv

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.path / HISTORY, buffer.getvalue().encode())

    def write_figure(self, figure, name: str = CURVES, dpi: int = 100) -> None:
        """Save a matplotlib figure (``curves.png``) atomically and close it."""
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi)
        plt.close(figure)
        atomic_write_bytes(self.path / name, buffer.getvalue())

    def save_checkpoint(self, name: str, model: torch.nn.Module, config: dict[str, Any], trunk, **extra: Any) -> Path:
        """:func:`save_checkpoint` into this directory, tagged with this run's trainer."""
        return save_checkpoint(self.path / name, self.trainer, model, config, trunk, **extra)


def plot_figure(*args, **kwargs):
    """``matplotlib.pyplot.subplots`` on the headless backend (trainers draw curves without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


# ---------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str | Path, trainer: str, model: torch.nn.Module, config: dict[str, Any], trunk,
                    **extra: Any) -> Path:
    """Write a checkpoint atomically: the format tag, ``trainer``, the whole run ``config`` (a model can be
    rebuilt from the file alone), the ``trunk`` settings (:class:`~agents.networks.TrunkConfig`: what
    ``--init-from`` takes), the weights and ``extra`` entries (tensors, numbers, strings, lists, dicts)."""
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "trainer": trainer, "config": config,
               "trunk": trunk.settings(), "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               **extra}
    return write_checkpoint_payload(path, payload)


def write_checkpoint_payload(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a checkpoint's ``payload`` (as :func:`save_checkpoint` makes it) atomically."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def resolve_checkpoint(path: str | Path, names: Iterable[str] = (BEST, LAST), what: str = "checkpoint") -> Path:
    """A model file, or the first of ``names`` that a run directory holds: the one place a path given to
    ``--init-from``, ``--resume`` or a follower becomes a file (torch checkpoints and SB3 ``.zip`` models)."""
    path, names = Path(path), tuple(names)
    if path.is_dir():
        for name in names:
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path}: run directory holds no {what} ({' or '.join(names)})")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    return path


def is_sb3_model(path: str | Path) -> bool:
    """Whether ``path`` is a stable-baselines3 model ``.zip`` (its ``data`` and ``policy.pth`` entries)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {"data", "policy.pth"} <= set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_checkpoint(path: str | Path, trainer: str | None = None) -> dict[str, Any]:
    """The checkpoint written by :func:`save_checkpoint` at ``path`` (a file, or a run directory: its
    ``best.pt``, else ``last.pt``), with ``trunk`` as a :class:`~agents.networks.TrunkConfig` and
    ``path`` added.

    Raises:
        FileNotFoundError: nothing there.
        ValueError: an SB3 model, a file torch cannot read safely, an untagged or foreign file, another
            version, or (with ``trainer``) another trainer's checkpoint; the message names the file.
    """
    if Path(path).is_dir() and not any((Path(path) / name).is_file() for name in (BEST, LAST)) \
            and any(Path(path).glob("*.zip")):
        raise ValueError(f"{path}: an RL run directory (stable-baselines3 models), not a checkpoint of "
                         "'sfgym train supervised' or 'sfgym train trunk'")
    path = resolve_checkpoint(path)
    if is_sb3_model(path):
        raise ValueError(f"{path}: a stable-baselines3 model (saved by 'sfgym train rl'), not a checkpoint of "
                         "'sfgym train supervised' or 'sfgym train trunk'")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types; its message may advise unsafe loading: never repeat it
        raise ValueError(f"{path}: not a readable checkpoint (truncated, or not written by sfgym: "
                         f"{type(error).__name__})") from None
    if isinstance(payload, dict) and payload.get("format") in LEGACY_FORMATS:
        payload = _upgrade_legacy(payload)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not an sfgym checkpoint (written by 'sfgym train supervised' or "
                         "'sfgym train trunk')")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {payload.get('version')} is not supported "
                         f"(this is {CHECKPOINT_VERSION})")
    if trainer is not None and payload.get("trainer") != trainer:
        raise ValueError(f"{path}: a checkpoint of 'sfgym train {payload.get('trainer')}', "
                         f"not of 'sfgym train {trainer}'")
    payload["trunk"] = TrunkConfig.from_settings(payload["trunk"], source=f"{path} (its trunk)")
    payload["path"] = str(path)
    return payload


def read_trunk(path: str | Path):
    """The trunk of a checkpoint of any trainer (what ``--init-from`` takes): its weights (the model's
    ``trunk.*``, without the prefix) and its :class:`~agents.networks.TrunkConfig`.

    Raises:
        FileNotFoundError / ValueError: as :func:`read_checkpoint`; also a checkpoint without trunk weights.
    """
    return trunk_of(read_checkpoint(path))


def trunk_of(payload: dict[str, Any]):
    """:func:`read_trunk` of a checkpoint already read (:func:`read_checkpoint`'s payload)."""
    state = {key[len("trunk."):]: value for key, value in payload["model_state"].items() if key.startswith("trunk.")}
    if not state:
        raise ValueError(f"{payload['path']}: its 'model_state' has no 'trunk.*' weights")
    return state, payload["trunk"]


LEGACY_FORMATS = {"sfgym-supervised-regressor": "supervised", "sfgym-trunk-pretraining": "trunk"}
"""The tags of the checkpoints written before the one format (by trainer): still read, converted."""

_LEGACY_TRUNK_KEYS = {"trunk_kind": "kind", "trunk_features": "features", "dropout": "dropout",
                      "trunk_width": "width", "match_frames": "match_frames", "match_context": "match_context"}


def _upgrade_legacy(payload: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of an earlier tagged format in the current one: its trunk settings, which the
    config's ``model`` section held (``trunk_width``, ``trunk_features``, ...), become the ``trunk`` section."""
    trainer = LEGACY_FORMATS[payload["format"]]
    config = {key: dict(value) if isinstance(value, dict) else value for key, value in payload.get("config", {}).items()}
    model = config.get("model", {})
    trunk = {new: model.pop(old) for old, new in _LEGACY_TRUNK_KEYS.items() if old in model}
    trunk.setdefault("kind", "figure3")  # the only kind before trunk_kind existed
    if trainer == "trunk":
        config.pop("model", None)  # it held the trunk alone
    config["trunk"] = trunk
    return {**payload, "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "trainer": trainer,
            "config": config, "trunk": trunk}


# ---------------------------------------------------------------------------- seed, device, data
def setup_torch(seed: int | None, device: str = "auto", threads: int | None = None) -> torch.device:
    """Seed torch, set its CPU threads (``None``: torch's default) and resolve ``device`` (``auto``: the
    GPU if present)."""
    if threads:
        # On a small shared CPU, torch's default (one thread per core) oversubscribes it badly.
        torch.set_num_threads(threads)
    if seed is not None:
        torch.manual_seed(seed)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' asked for, but torch sees no GPU (use 'auto' or 'cpu')")
    return torch.device(device)


def data_root(directory: str | Path | None, source: str = "the config") -> Path:
    """The dataset root (or split directory) a config names; the built-in default dataset (built on
    first use) when it names none."""
    if directory is None:  # imported on first use: the dataset builder costs ~0.1 s that most callers never need
        from sfgym.data.dataset import default_dataset_dir

        return default_dataset_dir()
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{source}: data directory {path} does not exist")
    return path


# ---------------------------------------------------------------------------- budgets and stops
class Budget:
    """A wall-clock budget of ``max_minutes`` (``None``: none), of which ``spent_s`` were used before
    (by the run this one resumes)."""

    def __init__(self, max_minutes: float | None, spent_s: float = 0.0, clock: Callable[[], float] = time.monotonic):
        self.seconds = max_minutes * 60.0 if max_minutes else math.inf
        self.clock = clock
        self._started = clock() - spent_s

    @property
    def elapsed_s(self) -> float:
        """Seconds spent, this run and the ones it resumes together."""
        return self.clock() - self._started

    def spent(self) -> bool:
        return self.elapsed_s >= self.seconds

    def fraction(self) -> float:
        """The share of the budget spent (0 without a budget)."""
        return min(1.0, self.elapsed_s / self.seconds) if math.isfinite(self.seconds) else 0.0


class StopRequest:
    """While active (``with StopRequest() as stop``), Ctrl-C (SIGINT) sets ``stop.requested`` instead of
    raising, so that the trainer stops at its next safe point and saves; a second Ctrl-C aborts at once.
    Outside the main thread (where signals cannot be caught) it never fires."""

    def __init__(self, log: Callable[[str], None] | None = None):
        self.requested = False
        self._log = log or (lambda text: print(text, file=sys.stderr))
        self._previous = None

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._log("interrupted: saving the run at the next safe point (Ctrl-C again to abort without saving)")


class BudgetProgress:
    """A progress bar that shows the budget that will end the run: the share of ``max_steps`` done or of
    the time :class:`Budget` spent, whichever is larger, with both in its text (``step 874/100000,
    0.4/30 min``); without a time budget, a plain step bar.

    Args:
        max_steps: the step budget.
        budget: the time budget.
        desc / unit: the bar's label and the name of a step.
        done: steps done before (a resumed run).
        enabled: False: no bar at all.
        file: where to draw (default stderr).
    """

    RESOLUTION = 1000

    def __init__(self, max_steps: int, budget: Budget, desc: str, unit: str = "step", done: int = 0,
                 enabled: bool = True, file=None, mininterval: float = 1.0):
        self.max_steps, self.budget, self.unit = int(max_steps), budget, unit
        self.steps = int(done)
        self.bar = None
        if not enabled:
            return
        from tqdm.auto import tqdm

        if math.isfinite(budget.seconds):
            self.bar = tqdm(total=self.RESOLUTION, desc=desc, file=file, mininterval=mininterval, dynamic_ncols=True,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")
        else:
            self.bar = tqdm(total=self.max_steps, initial=self.steps, desc=desc, unit=unit, file=file,
                            mininterval=mininterval, dynamic_ncols=True)
        self.update(self.steps)

    def fraction(self) -> float:
        """The share of the run done: steps or time, whichever budget is nearer its end."""
        return max(min(1.0, self.steps / max(self.max_steps, 1)), self.budget.fraction())

    def update(self, steps: int, **postfix: Any) -> None:
        """Show ``steps`` done (and ``postfix`` values such as the latest validation error)."""
        self.steps = int(steps)
        if self.bar is None:
            return
        if math.isfinite(self.budget.seconds):
            text = (f"{self.unit} {self.steps}/{self.max_steps}, "
                    f"{self.budget.elapsed_s / 60:.1f}/{self.budget.seconds / 60:g} min")
            self.bar.set_postfix_str(", ".join([text, *(f"{k}={v}" for k, v in postfix.items())]), refresh=False)
            self.bar.update(round(self.fraction() * self.RESOLUTION) - self.bar.n)
        else:
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(self.steps - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------- resuming
def config_differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``key: before != now`` for every top-level key, or ``section.key`` within a section (a dict), on which
    two configs (as dicts) differ."""
    differences = []
    for key in dict.fromkeys([*before, *now]):
        old, new = before.get(key), now.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += [f"{key}.{inner}: {old.get(inner)!r} != {new.get(inner)!r}"
                            for inner in dict.fromkeys([*old, *new]) if old.get(inner) != new.get(inner)]
        elif old != new:
            differences.append(f"{key}: {old!r} != {new!r}")
    return differences


def check_resumable(source: str | Path, before: dict[str, Any], now: dict[str, Any], resumable: Iterable[str]) -> None:
    """Refuse to resume a run started with ``before`` under ``now`` where they differ beyond the ``resumable``
    keys (budgets and where it runs), naming ``source`` (the run's config or checkpoint) and every difference."""
    resumable = tuple(resumable)
    differences = [d for d in config_differences(before, now) if d.split(":")[0] not in resumable]
    if differences:
        raise ValueError(f"{source}: the run was started with another config; a resumed run may change only "
                         f"{', '.join(resumable)}. Differences (run vs now): {'; '.join(differences)}")


# ---------------------------------------------------------------------------- command line
def add_run_arguments(parser, kind: str, out_help: str, resume_help: str, set_example: str) -> None:
    """The options every ``sfgym train KIND`` has: ``--config`` (a shipped config of ``kind`` by name, or a
    file), ``--out``, ``--resume``, ``--data``, ``--set`` and ``--no-progress``."""
    names = ", ".join(path.stem for path in shipped_configs(kind))
    parser.add_argument("--config", help=f"a shipped config by name ({names}) or a YAML file; with --resume "
                                         "optional: the run's own config is used")
    parser.add_argument("--out", help=out_help)
    parser.add_argument("--resume", action="store_true", help=resume_help)
    parser.add_argument("--data", help="dataset root or split directory (overrides the config's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help=f"override a config value (repeatable), e.g. --set {set_example}")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


# ---------------------------------------------------------------------------- sweeps
def selection(run_dir: str | Path, figures: dict[str, float | None], model: str | None,
              data_key: str) -> dict[str, Any]:
    """What ``sfgym sweep`` reads of a finished run (each trainer's ``selection_figures``): its valid
    ``figures``, the path of the model chosen on valid (``model`` in the run directory, None when the
    trainer makes no follower) and the dataset root it trained on (``data_key`` of its ``config.yaml``;
    None: the default dataset), so that sfgym needs no knowledge of the trainers' files."""
    run_dir = Path(run_dir)
    data: Any = yaml.safe_load((run_dir / CONFIG).read_text())
    for part in data_key.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    chosen = run_dir / model if model is not None and (run_dir / model).is_file() else None
    return {**json_safe(figures), "model": str(chosen) if chosen else None, "data": data}


# ---------------------------------------------------------------------------- JSON
def json_safe(value: Any) -> Any:
    """JSON-safe copy: NaN / inf → None, numpy scalars → Python, tuples → lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_as_script(module: str, description: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                  main: Callable[[argparse.Namespace], int]) -> None:
    """``python -m MODULE``: a trainer module's own command line (the same options as ``sfgym train``)."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    raise SystemExit(main(parser.parse_args()))


__all__ = ["add_run_arguments", "BEST", "Budget", "BudgetProgress", "CHECKPOINT_FORMAT", "COMPLETE", "CONFIG", "check_resumable",
           "config_differences", "INTERRUPTED", "LAST",
           "RUNNING", "RunDirectory", "STATUS", "StopRequest", "data_root", "is_sb3_model", "json_safe",
           "plot_figure", "read_checkpoint", "read_trunk", "resolve_checkpoint", "run_as_script", "save_checkpoint", "selection", "setup_torch"]
