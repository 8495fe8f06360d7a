"""``sfgym train pretrained``: make a follower to ship with the package, and install it with its card.

Two ways:

- **All stages** (``--out RUN_DIR``, the default: ``runs/pretrained``), by default for the tracker
  (``--follower tracker``; with no options at all this makes the follower that ships, :data:`DEFAULT_JOBS`,
  :data:`DEFAULT_TRUNK_SET` and :class:`agents.tracking.FilterSettings`' defaults being its settings): build the training
  data (:data:`TRAINING_DATA`: the default corpus with human timing and sound augmentation, and far-tempo
  performances of it and of the ``piano-v2`` corpus) under ``RUN_DIR/data``, pre-train a matching trunk (config ``trunk_matching``, 20 minutes:
  :data:`DEFAULT_TRUNK_SET`) into ``RUN_DIR/trunk-seedN`` for each of ``--seeds``, follow the valid split of each training dataset
  with the tracker (:mod:`agents.tracking`) on each and on all trunks averaged (``RUN_DIR/ensemble``), and ship
  the one whose tracker tracks best on valid, each dataset counting once (the average on a tie).
  ``--follower ppo`` trains PPO on one matching trunk instead (config ``ppo_matching``, 25 minutes per seed, into
  ``RUN_DIR/trunk`` and ``RUN_DIR/rl-seedN``) and ships the seed whose best model has the highest validation
  TR. A stage whose run is complete is re-used; an interrupted one is resumed (a data build too), so the
  command can simply be run again after a Ctrl-C.
- **From a run** (``--from RUN``): ship an already trained model: an RL run (its ``best_model.zip``), a
  supervised run or a matching trunk's run (its ``best.pt``), or such a file; ``--from RUN1,RUN2,...`` ships
  the matching trunks of several runs as one tracker (:func:`agents.tracking.save_trunk_ensemble`).

Shipping (:func:`ship`) evaluates the model on the valid and test splits of the data it was trained on
(``--evaluate``), then writes ``NAME.zip`` / ``NAME.pt`` and the card ``NAME.json`` (see
:mod:`agents.pretrained`) into the shipped-followers folder (``--into``; default ``agents/pretrained/`` of
the installed package, or ``$SFGYM_SHIPPED_MODELS``), both atomically, the card last. The card records
the commands that made the model, the dataset (name, build config, a SHA-256 of each split's score
names), the seed, the model selection on valid and the evaluation figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import yaml

from agents.config_files import apply_overrides
from agents.pretrained import (CARD_FORMAT, CARD_VERSION, DEFAULT_NAME, FOLLOWER_SETTINGS_KEY, MODEL_SUFFIXES,
                               NOTATED_TEMPO_KINDS, STAND_IN_SPEED_KEY, card_path, check_name, file_sha256, shipped_dir)
from agents.rl.follower import MODEL_FILES, read_metadata
from agents.runs import RunDirectory, is_sb3_model, json_safe, read_checkpoint, resolve_checkpoint, run_as_script
from agents.tracking import FilterSettings, save_trunk_ensemble
import sfgym
from sfgym.data import dataset
from sfgym.data.dataset import BuildConfig, default_dataset_root, read_manifest
from sfgym.data.msmd import find_split_dir, load_split
from sfgym.evaluation import AgentSpec, run_evaluation
from sfgym.files import atomic_write_bytes
from sfgym.ray_support import connect_ray, import_ray
from sfgym.score.timing import median_speed_px_per_s

TRUNK_CONFIG, RL_CONFIG = "trunk_matching", "ppo_matching"
"""The packaged configs of the trunk and PPO stages (and their budgets)."""
FOLLOWERS = ("tracker", "ppo")
"""What all stages can train (``--follower``)."""
SPLITS = ("train", "valid", "test")
EVALUATION_KEYS = ("tr", "tue", "error_mean_px", "error_median_px", "within_1s", "ms_per_frame", "pieces", "runs")
"""The figures of an evaluation the card keeps (see :func:`sfgym.metrics.aggregate`)."""
DEFAULT_OUT = "runs/pretrained"
"""The run directory of all stages when neither ``--out`` nor ``--from`` is given."""
DEFAULT_JOBS = 2
"""Seeds trained at a time: the shipped follower's trunks were trained two at a time, on two cores."""
DEFAULT_TRUNK_SET = ("training.max_minutes=20",)
"""Trunk config overrides made before any ``--trunk-set``: the shipped follower's trunks had 20 minutes each
(``trunk_matching`` alone gives 30). With these defaults ``sfgym train pretrained`` makes what ships; the
tracker's settings are :class:`agents.tracking.FilterSettings`' defaults, the shipped ones."""
LARGE_MODEL_BYTES = 10 * 2**20
"""Above this a model is shipped with a warning: the package should stay small."""


# ---------------------------------------------------------------------------- the data a model was trained on
def dataset_identity(root: str | Path) -> dict[str, Any]:
    """What identifies a dataset: its name (the folder's, e.g. ``default-v1``), its manifest's build config
    and creation time, and per split the numbers of scores and performances and the SHA-256 of its
    sorted score names (one per line)."""
    root = Path(root)
    manifest = read_manifest(root)
    identity: dict[str, Any] = {"name": root.name, "build_config": manifest.get("build_config"),
                                "created": manifest.get("created"), "splits": {}}
    for split in SPLITS:
        score_dir = root / split / "score"
        if not score_dir.is_dir():
            continue
        scores = sorted(path.stem for path in score_dir.glob("*.npz"))
        performances = list((root / split / "performance").glob("*.mid"))
        identity["splits"][split] = {
            "scores": len(scores), "performances": len(performances),
            "score_names_sha256": hashlib.sha256("\n".join(scores).encode()).hexdigest()}
    return identity


def _data_root(directory: str | None) -> Path:
    """The dataset root a run config names (``None``: the default dataset's place, never built here)."""
    if directory is None:
        return default_dataset_root()
    return Path(directory).expanduser()


# ---------------------------------------------------------------------------- what a run holds
@dataclass
class TrainedModel:
    """A trained model to ship and what the card says about how it was made."""

    kind: str                   # "rl", "supervised" or "tracker" (agents.pretrained.MODEL_SUFFIXES)
    model: Path
    data: Path                  # the dataset root it was trained on
    seed: int | None
    description: str
    selection: dict[str, Any]   # the run's own model selection on valid
    commands: list[str] = field(default_factory=list)
    configs: dict[str, Any] = field(default_factory=dict)  # the resolved config of each stage, by run directory
    settings: dict[str, Any] = field(default_factory=dict)  # the follower's settings (--tracker-set), on its card
    extra_data: list[Path] = field(default_factory=list)  # more dataset roots whose train splits it trained on
    sources: list[str] = field(default_factory=list)  # the files an ensemble was made of (else: ``model`` itself)


def _run_config(run: Path) -> dict[str, Any]:
    path = run / "config.yaml"
    if not path.is_file():
        return {}
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: unreadable run config ({error})") from None


def _run_status(run: Path) -> dict[str, Any]:
    """The ``status.json`` of the run in ``run`` (``{}``: none); a corrupt one is an error naming the file."""
    return RunDirectory(run, trainer="").status() or {}


def _trainer_of(run: Path) -> str | None:
    try:
        return _run_status(run).get("trainer")
    except ValueError:  # a corrupt status: its making is simply not recorded
        return None


def _stage_command(run: Path, trainer: str) -> str:
    """A command that reproduces the run in ``run`` (its resolved config, as it was written there)."""
    return f"sfgym train {trainer} --config {shlex.quote(str(run / 'config.yaml'))} --out NEW_RUN_DIR"


def _init_from(config: dict[str, Any]) -> str | None:
    """The ``init_from`` of a run config (top level or in a section), if any."""
    if config.get("init_from"):
        return str(config["init_from"])
    for section in config.values():
        if isinstance(section, dict) and section.get("init_from"):
            return str(section["init_from"])
    return None


def _earlier_stages(config: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The commands and configs of the run a config was initialized from (its trunk), when it is a run."""
    init = _init_from(config)
    if init is None:
        return [], {}
    run = Path(init) if Path(init).is_dir() else Path(init).parent
    trainer, earlier = _trainer_of(run), _run_config(run)
    if trainer is None or not earlier:
        return [f"# initialized from {init} (not a run directory: its making is not recorded)"], {}
    commands, configs = _earlier_stages(earlier)
    return commands + [_stage_command(run, trainer)], {**configs, str(run): earlier}


def trained_model(source: str | Path) -> TrainedModel:
    """The model of an RL run (``best_model.zip``), a supervised run (``best.pt``) or such a file, with
    what its run says about it.

    Raises:
        FileNotFoundError / ValueError: nothing to ship there, or a file of neither kind (named).
    """
    source = Path(source)
    if source.is_dir():
        if any((source / name).is_file() for name in MODEL_FILES):
            model = resolve_checkpoint(source, MODEL_FILES, what="model")
        else:
            model = resolve_checkpoint(source, ("best.pt",), what="model (best_model.zip or best.pt)")
    else:
        model = resolve_checkpoint(source, what="model")
    if model.suffix not in MODEL_SUFFIXES:
        raise ValueError(f"{model}: cannot ship this file; ship an RL model (.zip), a supervised checkpoint or a "
                         "matching trunk's checkpoint (.pt)")
    if model.suffix == ".zip" or is_sb3_model(model):
        return _rl_model(model)
    if read_checkpoint(model)["trainer"] == "trunk":
        return _tracker_model(model)
    return _supervised_model(model)


def _rl_model(model: Path) -> TrainedModel:
    metadata = read_metadata(model)
    run = model.parent
    config = _run_config(run)
    commands, configs = _earlier_stages(config or metadata)
    if config:
        commands.append(_stage_command(run, "rl"))
        configs[str(run)] = config
    try:
        selection = json.loads((run / "best.json").read_text()) if model.name == "best_model.zip" else {}
    except (OSError, json.JSONDecodeError):
        selection = {}
    trunk = metadata.get("trunk") or {}
    description = (f"{metadata['algorithm'].upper()} on a {'frozen ' if metadata.get('frozen_trunk') else ''}"
                   f"{trunk.get('kind', 'figure3')} trunk")
    return TrainedModel(kind="rl", model=model, data=_data_root(config.get("data")), seed=metadata.get("seed"),
                        description=description, selection=selection, commands=commands, configs=configs)


def _supervised_model(model: Path) -> TrainedModel:
    payload = read_checkpoint(model, trainer="supervised")  # names the file when it is not one
    config = payload["config"]
    run = model.parent
    commands, configs = _earlier_stages(config)
    if (run / "config.yaml").is_file():
        commands.append(_stage_command(run, "supervised"))
    configs[str(run)] = config
    model_section, trunk = config.get("model", {}), config.get("trunk", {})
    description = (f"{str(model_section.get('cell', 'lstm')).upper()} position regressor "
                   f"({model_section.get('target', 'relative')} target) on the {trunk.get('kind', 'figure3')} trunk")
    selection = {"epoch": payload.get("epoch"), **(payload.get("metrics") or {})}
    return TrainedModel(kind="supervised", model=model, data=_data_root(config.get("data", {}).get("dir")),
                        seed=config.get("training", {}).get("seed"), description=description,
                        selection=selection, commands=commands, configs=configs)


def _tracker_model(model: Path) -> TrainedModel:
    """A matching trunk's checkpoint (``sfgym train trunk``), shipped to be followed by the tracker."""
    payload = read_checkpoint(model, trainer="trunk")
    if payload["trunk"].kind != "matching":
        raise ValueError(f"{model}: a {payload['trunk'].kind!r} trunk; only a matching trunk can be shipped "
                         "(followed by the tracker, agents.tracking)")
    config = payload["config"]
    run = model.parent
    members = payload.get("member_sources")
    if members:  # an ensemble: its members' runs (those that are still there) say how they were made
        runs = [Path(member).parent for member in members if (Path(member).parent / "config.yaml").is_file()]
        return TrainedModel(kind="tracker", model=model, data=_data_root(config.get("data", {}).get("dir")), seed=None,
                            description=f"{len(members)} matching trunks averaged under a (position, tempo) filter",
                            selection={}, commands=[_stage_command(run, "trunk") for run in runs],
                            configs={str(run): _run_config(run) for run in runs}, extra_data=_extra_data(config),
                            sources=[str(member) for member in members])
    commands = [_stage_command(run, "trunk")] if (run / "config.yaml").is_file() else []
    return TrainedModel(kind="tracker", model=model, data=_data_root(config.get("data", {}).get("dir")),
                        seed=config.get("training", {}).get("seed"),
                        description="matching trunk under a (position, tempo) filter", selection=dict(
                            payload.get("metrics") or {}), commands=commands, configs={str(run): config},
                        extra_data=_extra_data(config))


def _extra_data(config: dict[str, Any]) -> list[Path]:
    """The dataset roots of a trunk config's ``data.extra_train_dirs`` (their train splits were trained on too)."""
    return [Path(directory).expanduser() for directory in (config.get("data", {}).get("extra_train_dirs") or [])]


# ---------------------------------------------------------------------------- evaluating and shipping
def evaluate_model(model: Path, data: Path, splits: list[str], label: str, workers: int | None = None,
                   progress: bool = True, settings: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The model's figures (:data:`EVALUATION_KEYS`) on each of ``splits`` of ``data``, all performances, its
    follower made with ``settings``."""
    figures = {}
    for split in splits:
        pieces = load_split(find_split_dir(data, split), progress=False)
        evaluation = run_evaluation([AgentSpec(label=label, spec=str(model), kwargs=tuple(sorted((settings or {}).items())))],
                                    pieces, workers=workers, progress=progress)
        row = evaluation.summary().iloc[0].to_dict()
        figures[split] = json_safe({key: row[key] for key in EVALUATION_KEYS if key in row})
    return figures


def stand_in_speed_of(data: Path) -> float | None:
    """The median speed (px/s) of ``data``'s train split, a tracker's stand-in tempo on scores without
    notated timing (:data:`~agents.pretrained.STAND_IN_SPEED_KEY`); ``None`` without a train split."""
    try:
        return median_speed_px_per_s(find_split_dir(data, "train"))
    except ValueError:
        return None


def _free_card_path(name: str, into: Path, overwrite: bool) -> Path:
    """The card path of ``name`` in ``into``, checked: a valid name, not shipped there already unless ``overwrite``."""
    check_name(name)
    card_file = card_path(name, into)
    if card_file.exists() and not overwrite:
        raise ValueError(f"{card_file}: a follower named {name!r} is shipped already; pass --overwrite to "
                         "replace it, or choose another --ship NAME")
    return card_file


def ship(trained: TrainedModel, name: str = DEFAULT_NAME, into: str | Path | None = None, *,
         evaluate: list[str] = ("valid", "test"), description: str | None = None, command: str | None = None,
         overwrite: bool = False, workers: int | None = None, progress: bool = True) -> Path:
    """Install ``trained`` as the shipped follower ``name`` in ``into`` (default :func:`shipped_dir`): its model
    file, then its card. Returns the card's path.

    Raises:
        ValueError: a follower of that name is shipped there already and ``overwrite`` is false.
    """
    import torch

    into = Path(into) if into is not None else shipped_dir()
    card_file = _free_card_path(name, into, overwrite)
    figures = evaluate_model(trained.model, trained.data, list(evaluate), name, workers, progress,
                             trained.settings) if evaluate else {}
    data = dataset_identity(trained.data)
    extra = [dataset_identity(root) for root in trained.extra_data]
    trained_on = " + ".join([data["name"], *(entry["name"] for entry in extra)])
    card = {
        "format": CARD_FORMAT, "version": CARD_VERSION, "name": name, "kind": trained.kind,
        "description": description or f"{trained.description}, trained on {trained_on}",
        "model_file": f"{name}{trained.model.suffix}", "model_sha256": file_sha256(trained.model),
        "model_bytes": trained.model.stat().st_size, "source": trained.sources or str(trained.model),
        "command": command, "commands": trained.commands, "seed": trained.seed, "data": data,
        "selection_on_valid": trained.selection, "evaluation": figures, "configs": trained.configs,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {"sfgym": sfgym.__version__, "torch": torch.__version__},
    }
    if extra:  # the train splits of these were trained on too (the first dataset is also where it was validated)
        card["extra_training_data"] = extra
    if trained.kind in NOTATED_TEMPO_KINDS:
        card[STAND_IN_SPEED_KEY] = stand_in_speed_of(trained.data)
    if trained.settings:
        card[FOLLOWER_SETTINGS_KEY] = dict(trained.settings)
    model_file = into / card["model_file"]
    atomic_write_bytes(model_file, trained.model.read_bytes())
    atomic_write_bytes(card_file, (json.dumps(json_safe(card), indent=1) + "\n").encode())
    for suffix in MODEL_SUFFIXES:  # a model of another kind shipped before under this name
        if suffix != trained.model.suffix:
            (into / f"{name}{suffix}").unlink(missing_ok=True)
    return card_file


# ---------------------------------------------------------------------------- all stages
STAGE_MODULES = {"trunk": "agents.pretraining.train", "rl": "agents.rl.train"}
"""The trainer module of each stage."""


def _stage_arguments(arguments: list[str], run: Path) -> list[str] | None:
    """The arguments to (re)start a stage's run in ``run``: ``None`` when the run there is complete (re-used),
    with ``--resume`` when it was started and not finished."""
    status = _run_status(run).get("state")
    if status == "complete":
        print(f"{run}: complete, re-used")
        return None
    return [*arguments, "--resume"] if status is not None else arguments


def _check_complete(run: Path, trainer: str) -> None:
    """After a stage ran: unless its run is complete (a Ctrl-C stops a trainer at a safe point, which saves
    it and returns), stop here, saying how to go on."""
    state = _run_status(run).get("state")
    if state != "complete":
        print(f"{run}: the {trainer} stage is {state or 'not started'}; run the same command again to resume it")
        raise KeyboardInterrupt


def _run_stage(trainer: str, arguments: list[str], run: Path) -> str:
    """Run ``sfgym train TRAINER ARGUMENTS`` in this process, or re-use / resume its run in ``run``;
    returns the command as run."""
    import importlib

    todo = _stage_arguments(arguments, run)
    if todo is not None:
        module = importlib.import_module(STAGE_MODULES[trainer])
        parser = argparse.ArgumentParser(prog=f"sfgym train {trainer}")
        module.add_arguments(parser)
        module.main(parser.parse_args(todo))
        _check_complete(run, trainer)
    return f"sfgym train {trainer} {shlex.join(todo or arguments)}"


def _run_stages(trainer: str, stages: list[tuple[list[str], Path]], jobs: int, ray: bool = False,
                ray_address: str | None = None) -> list[str]:
    """:func:`_run_stage` for each ``(arguments, run)`` of ``stages``: in this process one after the other, or with
    ``jobs`` > 1 that many at a time (:func:`_run_stages_in_parallel`), or with ``ray`` as Ray tasks
    (:func:`_run_stages_on_ray`). Returns the commands as run."""
    if ray:
        return _run_stages_on_ray(trainer, stages, jobs, ray_address)
    if jobs > 1 and len(stages) > 1:
        return _run_stages_in_parallel(trainer, stages, jobs)
    return [_run_stage(trainer, arguments, run) for arguments, run in stages]


def _stage_process(module: str, arguments: list[str]) -> int:
    """``python -m MODULE ARGUMENTS`` (a stage's trainer), to its end; its exit code."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", module, *arguments], check=False).returncode


def _run_stage_in_a_process(trainer: str, arguments: list[str], run: Path,
                            start: Callable[[str, list[str]], int] = _stage_process) -> str:
    """Like :func:`_run_stage`, the trainer in a process of its own that ``start`` runs (here, or as a Ray
    task) and whose exit code it returns. Returns the command as run."""
    todo = _stage_arguments(arguments, run)
    if todo is not None:
        exit_code = start(STAGE_MODULES[trainer], todo)
        if exit_code != 0:
            raise ValueError(f"{run}: 'sfgym train {trainer}' stopped with exit code {exit_code}")
        _check_complete(run, trainer)
    return f"sfgym train {trainer} {shlex.join(todo or arguments)}"


def _run_stages_in_parallel(trainer: str, stages: list[tuple[list[str], Path]], jobs: int) -> list[str]:
    """:func:`_run_stage_in_a_process` for several runs, ``jobs`` at a time (Ctrl-C reaches them all: each
    saves its run, which the next invocation resumes). Returns the commands as run."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda stage: _run_stage_in_a_process(trainer, *stage), stages))


def _run_stages_on_ray(trainer: str, stages: list[tuple[list[str], Path]], jobs: int,
                       address: str | None = None) -> list[str]:
    """:func:`_run_stage_in_a_process` for each stage, its process started by a Ray task (local Ray, or the
    cluster at ``address``) that asks for this machine's share of ``jobs`` (its CPUs / ``jobs``): ``jobs``
    stages at a time here, as with ``--jobs``, and as many as fit on a cluster. The runs are written by the
    task, so on a cluster ``--out`` and the data must be on paths every machine sees. Returns the commands."""
    from concurrent.futures import ThreadPoolExecutor

    ray = import_ray("--ray runs the stages on Ray")
    connect_ray(ray, address)
    task = ray.remote(num_cpus=(os.cpu_count() or 1) / jobs)(_stage_process)

    def start_on_ray(module: str, arguments: list[str]) -> int:
        return ray.get(task.remote(module, arguments))

    with ThreadPoolExecutor(max_workers=len(stages)) as pool:  # threads only wait: Ray places the stages
        return list(pool.map(lambda stage: _run_stage_in_a_process(trainer, *stage, start=start_on_ray), stages))


TRAINING_DATA = {
    "default-human": {"timing": "human", "augment": 2},
    "wide": {"timing": "human", "augment": 1, "tempo_ratios": (0.6, 0.8, 1.0, 1.25, 1.5)},
    "piano-wide": {"timing": "human", "augment": 1, "tempo_ratios": (0.7, 1.0, 1.4), "corpus": "piano-v2"},
}
"""The datasets a tracker's trunk trains on (all stages), by folder name under ``RUN/data``
(:class:`sfgym.data.dataset.BuildConfig` fields). The first, where each trunk run validates itself: the default
corpus with human timing and two sound-augmented takes of every train score (other keyboards of the soundfont,
EQ, room, noise). The others add their train splits (``data.extra_train_dirs``): the same scores and splits at
tempi far from the notated one (``wide``), and the ``piano-v2`` corpus (song accompaniments and keyboard music)
at 0.7-1.4 (``piano-wide``). The follower shipped is chosen on the mean valid TR over all three. With them each trunk tracked the clean valid
splits as well or better (docs/model-card.md) and a far-tempo, unseen-piano dev set of the default valid scores
better (0.978 against 0.965 for three trunks averaged). The song accompaniments alone (``--corpus songs``),
added to the first without the others, made the tracker worse on valid (TR 0.70 against 0.88, one seed each,
before the chroma evidence)."""


def build_training_data(out: Path, workers: int | None = None, progress: bool = True, ray: bool = False,
                        ray_address: str | None = None) -> list[Path]:
    """Build (or complete: a build resumes) each of :data:`TRAINING_DATA` under ``out / "data"`` (with ``ray``,
    on Ray: :func:`sfgym.data.dataset.build_dataset`)."""
    roots = []
    for name, settings in TRAINING_DATA.items():
        root = out / "data" / name
        print(f"training data {name}: {root}")
        # through the module, so that tests can stand in for the builder
        roots.append(dataset.build_dataset(root, config=BuildConfig(**settings), workers=workers, progress=progress,
                                           ray=ray, ray_address=ray_address))
    return roots


def train_tracker_stages(out: Path, seeds: list[int], data: str | None = None, trunk_config: str = TRUNK_CONFIG,
                         trunk_set: list[str] = (), progress: bool = True, jobs: int = 1,
                         workers: int | None = None, settings: dict[str, Any] | None = None, ray: bool = False,
                         ray_address: str | None = None) -> TrainedModel:
    """The training data (:data:`TRAINING_DATA`, unless ``data`` names a dataset root to train on alone), a
    matching trunk per seed (``jobs`` at a time), each followed by the tracker on the valid split of every
    training dataset, and all trunks averaged too; the candidate whose tracker tracks best on valid (mean TR over
    the datasets, then mean TUE; the average wins a tie, then the lowest seed). With ``ray`` the data are built
    and the trunks trained as Ray tasks (:func:`_run_stages_on_ray`)."""
    if data is None:
        on_ray = {"ray": True, "ray_address": ray_address} if ray else {}  # without Ray: the call as before
        main_root, *extra_roots = build_training_data(out, workers, progress, **on_ray)
    else:
        main_root, extra_roots = Path(data), []
    # trunks side by side share the cores: each on its share of threads (torch's default, every core in each
    # process, made two 1-thread-sized trunks train ten times slower); a --trunk-set after this one wins
    threads = [f"--set=training.num_threads={max(1, (os.cpu_count() or 1) // jobs)}"] if jobs > 1 else []
    common = ["--data", str(main_root), *([] if progress else ["--no-progress"]),
              *([f"--set=data.extra_train_dirs={json.dumps([str(root) for root in extra_roots])}"] if extra_roots else []),
              *threads, *[f"--set={item}" for item in trunk_set]]
    stages = [(["--config", trunk_config, "--out", str(out / f"trunk-seed{seed}"), *common,
                f"--set=training.seed={seed}"], out / f"trunk-seed{seed}") for seed in seeds]
    commands = _run_stages("trunk", stages, jobs, ray, ray_address)
    candidates = []
    for seed, (_, run) in zip(seeds, stages):
        tr, tue, valid = _valid_over(run / "best.pt", [main_root, *extra_roots], workers, progress, settings)
        candidates.append((tr, tue, -seed, run, valid))
        print(f"seed {seed}: the tracker on its trunk tracks valid TR {tr:.3f}, TUE {tue:.3f}")
    if len(stages) > 1:
        # all trunks' logits averaged: a candidate too, which wins ties. Valid splits the tracker follows to the
        # end cannot tell the seeds apart, and a single trunk that is no better there is a bet on one seed: on
        # a far-tempo dev set three such tied trunks spread 0.961-0.982 around their average's 0.978 (docs/model-card.md)
        ensemble = ensemble_model([run / "best.pt" for _, run in stages], out / "ensemble" / "best.pt")
        tr, tue, valid = _valid_over(ensemble, [main_root, *extra_roots], workers, progress, settings)
        candidates.append((tr, tue, float("inf"), ensemble.parent, valid))
        print(f"all {len(stages)} trunks averaged: the tracker tracks valid TR {tr:.3f}, TUE {tue:.3f}")
    *_, chosen, chosen_valid = max(candidates, key=lambda candidate: candidate[:3])
    trained = trained_model(chosen / "best.pt")
    trained.commands = commands
    trained.selection = {**chosen_valid, "chosen_from": {str(run): tr for tr, _, _, run, _ in candidates}}
    return trained  # chosen with ``settings``; the caller ships it with them (main: trained.settings)


def _valid_over(model: Path, roots: list[Path], workers: int | None, progress: bool,
                settings: dict[str, Any] | None) -> tuple[float, float, dict[str, Any]]:
    """Mean TR and TUE of the model's tracker over the valid splits of ``roots`` (each dataset counts once,
    whatever its size), and the first root's figures with the others' TR under ``valid_tr_by_data``."""
    figures = [_valid_figures(model, root, workers, progress, settings,
                              "valid.json" if index == 0 else f"valid-{root.name}.json")
               for index, root in enumerate(roots)]
    tr = sum(float(entry["tr"]) for entry in figures) / len(figures)
    tue = sum(float(entry["tue"]) for entry in figures) / len(figures)
    valid = dict(figures[0])
    if len(roots) > 1:
        valid["valid_tr_by_data"] = {root.name: float(entry["tr"]) for root, entry in zip(roots, figures)}
    return tr, tue, valid


def tracker_settings(items: list[str]) -> dict[str, Any]:
    """``--tracker-set KEY=VALUE`` items as settings of :class:`agents.tracking.FilterSettings` (checked)."""
    settings = apply_overrides({}, items)
    try:
        FilterSettings.checked(settings)
    except ValueError as error:
        raise ValueError(f"--tracker-set: {error}") from None
    return settings


def ensemble_model(checkpoints: list[Path], out: Path) -> Path:
    """One checkpoint of the matching trunks of ``checkpoints`` (runs or files;
    :func:`agents.tracking.save_trunk_ensemble`),
    at ``out`` (written again only when its members changed)."""
    checkpoints = [resolve_checkpoint(checkpoint) for checkpoint in checkpoints]
    sources = out.parent / "members.json"
    fingerprint = [file_sha256(checkpoint) for checkpoint in checkpoints]
    try:
        if out.is_file() and json.loads(sources.read_text()) == fingerprint:
            return out
    except (OSError, json.JSONDecodeError):
        pass
    out.parent.mkdir(parents=True, exist_ok=True)
    save_trunk_ensemble(checkpoints, out)
    atomic_write_bytes(sources, (json.dumps(fingerprint) + "\n").encode())
    return out


def _valid_figures(model: Path, data: Path, workers: int | None, progress: bool,
                   settings: dict[str, Any] | None = None, cache_name: str = "valid.json") -> dict[str, Any]:
    """The model's figures on the valid split of ``data`` (its follower made with ``settings``), kept beside it
    (``cache_name``): a re-run re-uses them."""
    cached = model.parent / cache_name
    fingerprint = {"model_sha256": file_sha256(model), "data": str(data), **({"settings": settings} if settings else {})}
    if cached.is_file():
        try:
            saved = json.loads(cached.read_text())
            if saved.get("fingerprint") == fingerprint:
                return saved["figures"]
        except (OSError, json.JSONDecodeError, AttributeError, KeyError):
            pass  # unreadable: evaluate again
    figures = evaluate_model(model, data, ["valid"], model.parent.name, workers, progress, settings)["valid"]
    atomic_write_bytes(cached, (json.dumps({"fingerprint": fingerprint, "figures": figures}, indent=1) + "\n").encode())
    return figures


def train_all_stages(out: Path, seeds: list[int], data: str | None = None, trunk_config: str = TRUNK_CONFIG,
                     rl_config: str = RL_CONFIG, trunk_set: list[str] = (), rl_set: list[str] = (),
                     progress: bool = True, jobs: int = 1, ray: bool = False,
                     ray_address: str | None = None) -> TrainedModel:
    """The matching trunk, then PPO on it (frozen) for each seed (``jobs`` seeds at a time, each in its own
    process when more than one; with ``ray`` every stage a Ray task), into ``out``; the seed best on valid
    (``--follower ppo``)."""
    common = (["--data", data] if data else []) + ([] if progress else ["--no-progress"])
    trunk_run = out / "trunk"
    trunk_stage = (["--config", trunk_config, "--out", str(trunk_run), *common, *[f"--set={item}" for item in trunk_set]],
                   trunk_run)
    commands = (_run_stages("trunk", [trunk_stage], jobs, ray, ray_address) if ray else [_run_stage("trunk", *trunk_stage)])
    stages = [(["--config", rl_config, "--init-from", str(trunk_run), "--out", str(out / f"rl-seed{seed}"),
                "--seed", str(seed), *common, *[f"--set={item}" for item in rl_set]], out / f"rl-seed{seed}")
              for seed in seeds]
    commands += _run_stages("rl", stages, jobs, ray, ray_address)
    candidates = []
    for seed, (_, rl_run) in zip(seeds, stages):
        best = json.loads((rl_run / "best.json").read_text())
        candidates.append((float(best["tr"]), float(best.get("tue") or 0.0), -seed, rl_run))
        print(f"seed {seed}: best valid TR {best['tr']:.3f} at step {best['step']}")
    *_, chosen = max(candidates)
    trained = trained_model(chosen / "best_model.zip")
    trained.commands = commands
    trained.selection = {**trained.selection, "chosen_from": {str(run): tr for tr, _, _, run in candidates}}
    return trained


# ---------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sfgym train pretrained``."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--out", default=DEFAULT_OUT,
                        help="run directory of all stages (RUN/trunk-seedN, RUN/rl-seedN); run again to resume or "
                             f"re-use them (default {DEFAULT_OUT})")
    source.add_argument("--from", dest="source", metavar="RUN",
                        help="ship an already trained model instead: an RL run (best_model.zip), a supervised "
                             "or matching-trunk run (best.pt), or such a file; several matching-trunk runs, "
                             "comma-separated, ship as one tracker averaging their trunks")
    parser.add_argument("--ship", default=DEFAULT_NAME, metavar="NAME",
                        help=f"the follower name to ship it under (default {DEFAULT_NAME!r})")
    parser.add_argument("--into", metavar="DIR", help="the shipped-followers folder (default: agents/pretrained/ "
                        "of the installed package, or $SFGYM_SHIPPED_MODELS)")
    parser.add_argument("--overwrite", action="store_true", help="replace a follower shipped under that name")
    parser.add_argument("--description", help="the card's one-line description (default: made from the model)")
    parser.add_argument("--evaluate", default="valid,test", metavar="SPLITS",
                        help="splits to evaluate the shipped model on, for its card (default valid,test; "
                             "'none' to skip)")
    parser.add_argument("--workers", type=int, help="evaluation worker processes (default: up to 2)")
    parser.add_argument("--follower", choices=FOLLOWERS, default="tracker",
                        help="what to train (all stages): 'tracker' (default: a matching trunk per seed, on human-"
                             "timed, sound-augmented default data and far-tempo data (TRAINING_DATA), followed by the "
                             "tracker) "
                             "or 'ppo' (a matching trunk, then PPO on it per seed)")
    parser.add_argument("--data", help="dataset root to train on (all stages; default: tracker: the data it builds "
                                       "under RUN/data; ppo: the default dataset)")
    parser.add_argument("--seeds", default="0,1,2", help="seeds (all stages: of the trunks, or of PPO), the best on "
                                                         "valid is shipped (default 0,1,2)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, metavar="N",
                        help="seeds trained at a time, each in its own process, each on its share of the cores "
                             f"(all stages; default {DEFAULT_JOBS}; 1: one after the other in this process)")
    parser.add_argument("--ray", action="store_true",
                        help="run the stages (and the training data's build) as Ray tasks, each asking for its --jobs "
                             "share of this machine's CPUs: local Ray, or a cluster with --address (--out and the "
                             "data on paths every machine sees); needs the ray extra: pip install -e \".[ray]\"")
    parser.add_argument("--address", help="a running Ray cluster for the stages ('auto', or HOST:6379; implies --ray)")
    parser.add_argument("--trunk-config", default=TRUNK_CONFIG, help=f"trunk config (default {TRUNK_CONFIG})")
    parser.add_argument("--rl-config", default=RL_CONFIG, help=f"PPO config (default {RL_CONFIG})")
    parser.add_argument("--tracker-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of the shipped tracker (agents.tracking.FilterSettings, e.g. temperature=30; "
                             "its defaults are the shipped follower's): used to choose it on valid, to evaluate it, "
                             "and recorded on its card (repeatable)")
    parser.add_argument("--trunk-set", action="append", default=list(DEFAULT_TRUNK_SET), metavar="KEY=VALUE",
                        help="override a trunk config value (repeatable; after the default "
                             f"{' '.join(DEFAULT_TRUNK_SET)}, which a later one overrides)")
    parser.add_argument("--rl-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a PPO config value (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _command_line(args: argparse.Namespace) -> str:
    """``sfgym train pretrained`` with the options given (those that differ from the defaults)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    words = ["sfgym", "train", "pretrained"]
    for action in parser._actions:  # noqa: SLF001 - argparse offers no public list of its options
        if not action.option_strings or action.dest == "help":
            continue
        value = getattr(args, action.dest)
        if value == action.default or value is None:
            continue
        option = action.option_strings[-1]
        if action.const is True:
            words.append(option)
        else:
            for item in value if isinstance(value, list) else [value]:
                words += [option, str(item)]
    return shlex.join(words)


def _model_to_ship(args: argparse.Namespace, settings: dict[str, Any], staging: Path) -> TrainedModel:
    """The model ``args`` name (``--from``), or the one its stages train; an ensemble of several ``--from``
    runs is written into ``staging``."""
    if args.source is not None and "," in args.source:
        sources = [Path(source.strip()) for source in args.source.split(",") if source.strip()]
        return trained_model(ensemble_model(sources, staging / "best.pt"))
    if args.source is not None:
        return trained_model(args.source)
    try:
        seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    except ValueError:
        raise ValueError(f"--seeds: comma-separated integers, got {args.seeds!r}") from None
    if not seeds:
        raise ValueError("--seeds: give at least one seed")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
    on_ray = {"ray": True, "ray_address": args.address} if args.ray or args.address else {}
    if args.follower == "tracker":
        return train_tracker_stages(Path(args.out), seeds, args.data, args.trunk_config, args.trunk_set,
                                    progress=not args.no_progress, jobs=args.jobs, workers=args.workers,
                                    settings=settings, **on_ray)
    return train_all_stages(Path(args.out), seeds, args.data, args.trunk_config, args.rl_config,
                            args.trunk_set, args.rl_set, progress=not args.no_progress, jobs=args.jobs, **on_ray)


def main(args: argparse.Namespace) -> int:
    """Run ``sfgym train pretrained`` with parsed ``args``."""
    into = Path(args.into) if args.into else shipped_dir()
    _free_card_path(args.ship, into, args.overwrite)  # before hours of training, not after
    splits = [] if args.evaluate.strip().lower() == "none" else [s.strip() for s in args.evaluate.split(",") if s.strip()]
    settings = tracker_settings(args.tracker_set)
    with tempfile.TemporaryDirectory(prefix="sfgym-ship-") as staging:
        trained = _model_to_ship(args, settings, Path(staging))
        if settings:
            if trained.kind != "tracker":
                raise ValueError(f"--tracker-set: the model to ship is of kind {trained.kind!r}, not a tracker")
            trained.settings = settings
        card = ship(trained, args.ship, into, evaluate=splits, description=args.description,
                    command=_command_line(args), overwrite=args.overwrite, workers=args.workers,
                    progress=not args.no_progress)
        size = trained.model.stat().st_size
    shipped = json.loads(card.read_text())
    figures = ", ".join(f"{split} TR {f['tr']:.3f} TUE {f['tue']:.3f}" for split, f in shipped["evaluation"].items())
    print(f"shipped {trained.model} as follower {args.ship!r} ({size / 2**20:.1f} MB): {card}"
          + (f"; {figures}" if figures else ""))
    if size > LARGE_MODEL_BYTES:
        print(f"warning: the model is {size / 2**20:.1f} MB; the package should stay small (a few MB)")
    return 0


if __name__ == "__main__":
    run_as_script("agents.pretrained.train", __doc__, add_arguments, main)
